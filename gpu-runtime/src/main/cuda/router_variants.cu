// The --routing variants beyond top-k and top-p (router.cu): MiSTer's threshold gates, sparsemax, batch-level
// gating over blocks of rows, and removed experts. Each writes a token's experts as one row of chosen/weights
// [T, width] for router.cu's list kernels (route_count, route_fill), with its count in perToken[t] where the count
// varies, so the experts plan their work on the device as for top-k. Each is tested against its CPU twin in
// io.moescore.routing (CudaRouterVariantsTest); the arithmetic follows the twin's order where a decision hangs on
// it (sparsemax's scan, batch sums): sums in the twin's order, products and sums rounded one at a time (no FMA).
#include "common.cuh"

// What the softmax-based gates take the softmax of: z, z^2 or cos^2(z).
__device__ __forceinline__ float gate_input(int gate, float z) {
    if (gate == GATE_QUADRATIC) return __fmul_rn(z, z);
    if (gate == GATE_PIONEER) {
        float c = cosf(z);
        return __fmul_rn(c, c);
    }
    return z;
}

// max(x, 0) as Java's Math.max: NaN stays NaN (fmaxf would return 0).
__device__ __forceinline__ float max0(float x) { return isnan(x) ? x : fmaxf(x, 0.f); }

// Appends, in ascending expert order, every expert e of the 32 this warp holds (one per lane, e = e0 + lane) with
// use set to row t's list at *count (the same on every lane, advanced here).
__device__ __forceinline__ void threshold_append(bool use, int e, float p, int t, int width, int lane, int* count,
                                                 int* __restrict__ chosen, float* __restrict__ weights) {
    unsigned ballot = __ballot_sync(0xffffffffu, use);
    if (use) {
        int slot = *count + __popc(ballot & ((1u << lane) - 1u));
        chosen[(size_t)t * width + slot] = e;
        weights[(size_t)t * width + slot] = p;
    }
    *count += __popc(ballot);
}

// MiSTer's sigmoid, softmax, quadratic and pioneer gates, one warp per token: every expert whose probability p_e
// exceeds `threshold` (or is NaN), in ascending order, with gate p_e, raw. A softmax that is undefined (a NaN or
// infinite input, or all -inf) makes the whole row NaN, so it takes every expert, as on the CPU.
// chosen/weights: [T, E]; perToken[t]: the count, 0 included. CPU twin: ThresholdRouter.
extern "C" __global__ void router_threshold(const float* __restrict__ logits, int T, int E, int gate, float threshold,
                                            int* __restrict__ chosen, float* __restrict__ weights,
                                            int* __restrict__ perToken) {
    int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    const float* z = logits + (size_t)t * E;
    float m = -INFINITY, s = 0.f;
    if (gate != GATE_SIGMOID) {
        for (int e = lane; e < E; e += 32) m = fmaxf(m, gate_input(gate, z[e]));
        m = warp_max(m);
        for (int e = lane; e < E; e += 32) s += expf(__fsub_rn(gate_input(gate, z[e]), m));
        s = warp_sum(s);
    }
    int count = 0;
    for (int e0 = 0; e0 < E; e0 += 32) {
        int e = e0 + lane;
        float p = 0.f;
        if (e < E) {
            if (gate == GATE_SIGMOID) p = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-z[e])));
            else p = isnan(s) ? NAN : __fdiv_rn(expf(__fsub_rn(gate_input(gate, z[e]), m)), s);
        }
        threshold_append(e < E && (p > threshold || isnan(p)), e, p, t, E, lane, &count, chosen, weights);
    }
    if (lane == 0) perToken[t] = count;
}

// sparsemax, one warp per token, E floats of dynamic shared memory per warp: the finite logits sorted descending
// (each placed by its rank: larger ones, then equal ones of lower index, before it), then lane 0 scans them in
// ThresholdRouter.sparsemax's order for the support m and tau = (z_(1) + ... + z_(m) - 1) / m; every expert with
// max(z_e - tau, 0) > 0 is used with that gate. A NaN or +inf logit, or none finite: the row is NaN, every expert
// used. chosen/weights: [T, E]; perToken[t]: the count. CPU twin: ThresholdRouter (SPARSEMAX).
extern "C" __global__ void router_sparsemax(const float* __restrict__ logits, int T, int E, int* __restrict__ chosen,
                                            float* __restrict__ weights, int* __restrict__ perToken) {
    extern __shared__ float sparsemax_sorted[];
    int warp = threadIdx.x >> 5;
    int t = blockIdx.x * (blockDim.x / 32) + warp;
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    const float* z = logits + (size_t)t * E;
    float* sorted = sparsemax_sorted + (size_t)warp * E;
    bool undefined = false;
    int finite = 0;
    for (int e = lane; e < E; e += 32) {
        undefined |= isnan(z[e]) || z[e] == INFINITY;
        finite += z[e] != -INFINITY && !isnan(z[e]);
    }
    undefined = __any_sync(0xffffffffu, undefined);
    for (int o = 16; o > 0; o >>= 1) finite += __shfl_xor_sync(0xffffffffu, finite, o);
    float tau = 0.f;
    if (!undefined && finite > 0) {
        for (int i = lane; i < E; i += 32) {
            float zi = z[i];
            if (zi == -INFINITY) continue;
            int rank = 0;
            for (int j = 0; j < E; j++) {
                float zj = z[j];
                rank += zj > zi || (zj == zi && j < i);
            }
            sorted[rank] = zi;
        }
        __syncwarp();
        if (lane == 0) {
            float cumulative = 0.f, supportSum = 0.f;
            int support = 0;
            for (int j = 1; j <= finite; j++) {
                float zj = sorted[j - 1];
                cumulative = __fadd_rn(cumulative, zj);
                if (__fadd_rn(1.f, __fmul_rn((float)j, zj)) > cumulative) {
                    support = j;
                    supportSum = cumulative;
                }
            }
            tau = __fdiv_rn(__fsub_rn(supportSum, 1.f), (float)support);
        }
        tau = __shfl_sync(0xffffffffu, tau, 0);
    }
    bool nanRow = undefined || finite == 0;
    int count = 0;
    for (int e0 = 0; e0 < E; e0 += 32) {
        int e = e0 + lane;
        float p = 0.f;
        if (e < E) p = nanRow ? NAN : max0(__fsub_rn(z[e], tau));
        threshold_append(e < E && (p > 0.f || isnan(p)), e, p, t, E, lane, &count, chosen, weights);
    }
    if (lane == 0) perToken[t] = count;
}

// Batch-level gating, step 1, one warp per block of rows (rows blockStarts[b] .. blockStarts[b + 1] - 1): the k
// experts with the largest s_e = z_{first,e} + ... + z_{last,e} (summed in row order, as the CPU does), ranked as
// router.cu ranks probabilities (NaN largest, the lower expert on ties), into blockExperts[b * k ..]. E floats of
// dynamic shared memory per warp. CPU twin: BatchTopKRouter.routeBlock.
extern "C" __global__ void router_block_experts(const float* __restrict__ logits, int E, const int* __restrict__ blockStarts,
                                                int blocks, int k, int* __restrict__ blockExperts) {
    extern __shared__ float block_sums[];
    int warp = threadIdx.x >> 5;
    int b = blockIdx.x * (blockDim.x / 32) + warp;
    int lane = threadIdx.x & 31;
    if (b >= blocks) return;
    float* sums = block_sums + (size_t)warp * E;
    int from = blockStarts[b], to = blockStarts[b + 1];
    for (int e = lane; e < E; e += 32) {
        float s = 0.f;
        for (int r = from; r < to; r++) s = __fadd_rn(s, logits[(size_t)r * E + e]);
        sums[e] = s;
    }
    __syncwarp();
    int taken[ROUTER_MAX_K];
    for (int j = 0; j < k; j++) {
        float best = -INFINITY;  // -inf sums still rank (the lower expert first)
        int bestE;
        router_warp_select(E, lane, taken, j, [&](int e) { return sums[e]; }, best, bestE);
        taken[j] = bestE;
        if (lane == 0) blockExperts[(size_t)b * k + j] = bestE;
    }
}

// Batch-level gating, step 2, one warp per token: its block's k experts (found by binary search in blockStarts)
// with gates from the token's own softmax, renormalised where asked, as router.cu computes top-k's.
// chosen/weights: [T, k]. CPU twin: BatchTopKRouter.routeBlock.
extern "C" __global__ void router_block_gates(const float* __restrict__ logits, int T, int E,
                                              const int* __restrict__ blockStarts, int blocks, int k,
                                              const int* __restrict__ blockExperts, int renormalize,
                                              int* __restrict__ chosen, float* __restrict__ weights) {
    int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    int lo = 0, hi = blocks - 1;  // the last block starting at or before t
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (blockStarts[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    const float* z = logits + (size_t)t * E;
    float m, s;
    router_softmax_sum(z, E, lane, &m, &s);
    if (lane == 0) {
        int taken[ROUTER_MAX_K];
        float probs[ROUTER_MAX_K];
        for (int j = 0; j < k; j++) {
            taken[j] = blockExperts[(size_t)lo * k + j];
            probs[j] = __expf(z[taken[j]] - m) / s;
        }
        router_write(t, k, k, taken, probs, renormalize, chosen, weights, nullptr);
    }
}

// Removed experts, a bit per expert (expert e: bit e % 64 of word e / 64), passed by value with the launch.
struct DropMask {
    unsigned long long words[ROUTER_DROP_WORDS];
};

// Removed experts: out = logits with the columns of the experts set in `dropped` at -inf (the model's router then
// routes out). CPU twin: DropExpertsRouter.
extern "C" __global__ void router_drop_experts(const float* __restrict__ logits, long long n, int E, DropMask dropped,
                                               float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int e = (int)(i % E);
    out[i] = (dropped.words[e >> 6] >> (e & 63)) & 1ull ? -INFINITY : logits[i];
}
