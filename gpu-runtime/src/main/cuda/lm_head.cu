// The last step: log-softmax of the lm_head logits at each token's target, over vocabulary chunks so the
// T x V logits never exist at once. The GEMM (linear_f32a) writes one chunk's logits [T, C]; this kernel
// folds the chunk into each row's running max and sum of exponentials and picks up the target's logit; rows
// that need top-k copy their chunk out. CPU twin: CpuBackend.logProbs.
#include "common.cuh"

// One block per row. state: [T, 3] = running max, running sum of exp(logit - max), target logit.
extern "C" __global__ void logsoftmax_chunk(const float* __restrict__ logits, int T, int C, int v0,
                                            const int* __restrict__ targets, float* __restrict__ state,
                                            const int* __restrict__ topSlot, float* __restrict__ topLogits, int V) {
    __shared__ float scratch[32];
    int t = blockIdx.x;
    if (t >= T) return;
    const float* row = logits + (size_t)t * C;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < C; i += blockDim.x) m = fmaxf(m, row[i]);
    __shared__ float sm;
    float wm = warp_max(m);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = wm;
    __syncthreads();
    if (threadIdx.x == 0) {
        float x = -INFINITY;
        for (int w = 0; w < (blockDim.x >> 5); w++) x = fmaxf(x, scratch[w]);
        sm = x;
    }
    __syncthreads();
    float chunkMax = sm;
    float s = 0.f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) s += __expf(row[i] - chunkMax);
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) {
        float* st = state + (size_t)t * 3;
        float oldMax = v0 == 0 ? -INFINITY : st[0];
        float oldSum = v0 == 0 ? 0.f : st[1];
        float newMax = fmaxf(oldMax, chunkMax);
        st[0] = newMax;
        st[1] = oldSum * __expf(oldMax - newMax) + s * __expf(chunkMax - newMax);
        int target = targets[t];
        if (target >= v0 && target < v0 + C) st[2] = row[target - v0];
    }
    int slot = topSlot[t];
    if (slot >= 0)
        for (int i = threadIdx.x; i < C; i += blockDim.x) topLogits[(size_t)slot * V + v0 + i] = row[i];
}

// lp[t] = target logit - log-sum-exp, NaN where the row has no target.
extern "C" __global__ void logsoftmax_finish(const float* __restrict__ state, const int* __restrict__ targets,
                                             int T, float* __restrict__ lp) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float* st = state + (size_t)t * 3;
    lp[t] = targets[t] < 0 ? __int_as_float(0x7fc00000) : st[2] - (st[0] + logf(st[1]));
}
