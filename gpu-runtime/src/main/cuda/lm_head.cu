// The last step: log-softmax of the lm_head logits at each token's target, over vocabulary chunks so the
// T x V logits never exist at once. The GEMM (linear_f32a) writes one chunk's logits [T, C]; this kernel
// folds the chunk into each row's running max and sum of exponentials and picks up the target's logit; rows
// that need top-k copy their chunk out. CPU twin: CpuBackend.logProbs.
#include "common.cuh"

// One block per row. state: [T, 3] = running max, running sum of exp(logit - max), target logit.
// Each logit is first multiplied by `scale` (1 / Granite's logits_scaling, else 1).
extern "C" __global__ void logsoftmax_chunk(const float* __restrict__ logits, int T, int C, int v0,
                                            const int* __restrict__ targets, float* __restrict__ state,
                                            const int* __restrict__ topSlot, float* __restrict__ topLogits, int V,
                                            float scale) {
    __shared__ float scratch[32];
    int t = blockIdx.x;
    if (t >= T) return;
    const float* row = logits + (size_t)t * C;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < C; i += blockDim.x) m = fmaxf(m, row[i] * scale);
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
    for (int i = threadIdx.x; i < C; i += blockDim.x) s += __expf(row[i] * scale - chunkMax);
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) {
        float* st = state + (size_t)t * 3;
        float oldMax = v0 == 0 ? -INFINITY : st[0];
        float oldSum = v0 == 0 ? 0.f : st[1];
        float newMax = fmaxf(oldMax, chunkMax);
        st[0] = newMax;
        st[1] = oldSum * __expf(oldMax - newMax) + s * __expf(chunkMax - newMax);
        int target = targets[t];
        if (target >= v0 && target < v0 + C) st[2] = row[target - v0] * scale;
    }
    int slot = topSlot[t];
    if (slot >= 0)
        for (int i = threadIdx.x; i < C; i += blockDim.x) topLogits[(size_t)slot * V + v0 + i] = row[i] * scale;
}

// lp[t] = target logit - log-sum-exp, NaN where the row has no target.
extern "C" __global__ void logsoftmax_finish(const float* __restrict__ state, const int* __restrict__ targets,
                                             int T, float* __restrict__ lp) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float* st = state + (size_t)t * 3;
    lp[t] = targets[t] < 0 ? __int_as_float(0x7fc00000) : st[2] - (st[0] + logf(st[1]));
}

// The fused path's finish (gemm_sm90.cu, lm_head_logsoftmax_T_sm90t*): one warp per row folds the row's `tiles`
// (max, sum of exp(logit - max)) pairs into the log-sum-exp, in one order for every row and batch;
// lp[t] = target logit - log-sum-exp, NaN where the row has no target.
extern "C" __global__ void logsoftmax_combine(const float2* __restrict__ partial, int tiles,
                                              const float* __restrict__ targetLogit,
                                              const int* __restrict__ targets, int T, float* __restrict__ lp) {
    int lane = threadIdx.x & 31;
    int t = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (t >= T) return;
    const float2* p = partial + (size_t)t * tiles;
    float m = -INFINITY;
    for (int i = lane; i < tiles; i += 32) m = fmaxf(m, p[i].x);
    m = warp_max(m);
    float s = 0.f;
    for (int i = lane; i < tiles; i += 32) s += p[i].y * __expf(p[i].x - m);
    s = warp_sum(s);
    if (lane == 0) lp[t] = targets[t] < 0 ? __int_as_float(0x7fc00000) : targetLogit[t] - (m + logf(s));
}

// The k largest logits of each top-k row (the rows logsoftmax_chunk copied out, vocab apart), largest first, lower
// index first on ties, NaN below every number: TopK.indices' order on finite logits, picked on the device so only
// rows x k indices come to the host (not rows x vocab logits: an is_greedy continuation asks for every position).
// One block per row, k passes over the row, each taking the largest (value, -index) below the previous pick.
// out: [rows, k] (k <= vocab).
__device__ __forceinline__ bool top_before(float a, int ia, float b, int ib) {  // a ranks before b
    bool an = isnan(a), bn = isnan(b);
    if (an != bn) return bn;
    if (!an && a != b) return a > b;
    return ia < ib;
}
extern "C" __global__ void top_rows_k(const float* __restrict__ top, int vocab, int k, int* __restrict__ out) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const float* row = top + (size_t)blockIdx.x * vocab;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float prevV = 0.f;
    int prevI = -1;  // -1: no pick yet
    for (int j = 0; j < k; j++) {
        float bv = 0.f;
        int bi = -1;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
            float v = row[i];
            if (prevI >= 0 && !top_before(prevV, prevI, v, i)) continue;  // at or before the last pick
            if (bi < 0 || top_before(v, i, bv, bi)) bv = v, bi = i;
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_down_sync(0xffffffffu, bv, o);
            int oi = __shfl_down_sync(0xffffffffu, bi, o);
            if (oi >= 0 && (bi < 0 || top_before(ov, oi, bv, bi))) bv = ov, bi = oi;
        }
        if (lane == 0) sv[warp] = bv, si[warp] = bi;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < warps; w++)
                if (si[w] >= 0 && (si[0] < 0 || top_before(sv[w], si[w], sv[0], si[0]))) sv[0] = sv[w], si[0] = si[w];
            out[(size_t)blockIdx.x * k + j] = si[0];
        }
        __syncthreads();
        prevV = sv[0];
        prevI = si[0];
        __syncthreads();
    }
}
