// Router: softmax over each token's expert logits, top-k (lowest index first on ties; non-finite logits: see
// router_ranks_above), optional renormalisation; then the per-expert token lists (the activation-sparse format)
// built on the GPU in a fixed order: each expert's tokens ascending, so results never depend on thread scheduling.
// CPU twin: TopKSoftmaxRouter.route + HostExpertRouting.fromChoices.
#include "common.cuh"

// (p, e) ranks above (best, bestE): larger probability, the lower expert on ties, and NaN above any number (as
// TopKSoftmaxRouter.larger). A row with a NaN or +inf logit, or all -inf, has NaN probabilities everywhere (its
// sum is NaN), so it goes to experts 0..k-1 with NaN gates, never to no expert at all. Finite rows rank as before.
__device__ __forceinline__ bool router_ranks_above(float p, int e, float best, int bestE) {
    bool pNan = isnan(p), bestNan = isnan(best);
    if (pNan || bestNan) return pNan && (!bestNan || e < bestE);
    return p > best || (p == best && e < bestE);
}

// One warp per token. chosen/weights: [T, k].
extern "C" __global__ void router_topk_softmax(const float* __restrict__ logits, int T, int E, int k, int renormalize,
                                               int* __restrict__ chosen, float* __restrict__ weights) {
    int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    const float* z = logits + (size_t)t * E;
    float m = -INFINITY;
    for (int e = lane; e < E; e += 32) m = fmaxf(m, z[e]);
    m = warp_max(m);
    float s = 0.f;
    for (int e = lane; e < E; e += 32) s += __expf(z[e] - m);
    s = warp_sum(s);
    float kept = 0.f;
    int taken[ROUTER_MAX_K];
    float probs[ROUTER_MAX_K];
    for (int j = 0; j < k; j++) {
        float best = -1.f;
        int bestE = 0x7fffffff;
        for (int e = lane; e < E; e += 32) {
            bool used = false;
            for (int i = 0; i < j; i++) used |= taken[i] == e;
            float p = __expf(z[e] - m) / s;
            if (!used && router_ranks_above(p, e, best, bestE)) {
                best = p;
                bestE = e;
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oe = __shfl_xor_sync(0xffffffffu, bestE, o);
            if (router_ranks_above(ob, oe, best, bestE)) {
                best = ob;
                bestE = oe;
            }
        }
        taken[j] = bestE;
        probs[j] = best;
        kept += best;
    }
    if (lane == 0) {
        for (int j = 0; j < k; j++) {
            chosen[(size_t)t * k + j] = taken[j];
            weights[(size_t)t * k + j] = renormalize ? probs[j] / kept : probs[j];
        }
    }
}

// Block-wide exclusive scan of one int per thread (blockDim.x <= 1024); returns the block total.
__device__ int block_exclusive_scan(int v, int* out, int* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int x = v;
    for (int o = 1; o < 32; o <<= 1) {
        int y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) scratch[warp] = x;
    __syncthreads();
    if (warp == 0) {
        int w = lane < (blockDim.x >> 5) ? scratch[lane] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            int y = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += y;
        }
        scratch[lane] = w;  // inclusive per warp
    }
    __syncthreads();
    int before = (warp > 0 ? scratch[warp - 1] : 0) + x - v;
    int total = scratch[(blockDim.x >> 5) - 1];
    __syncthreads();
    *out = before;
    return total;
}

// One block per expert: counts[e] = tokens routed to e.
extern "C" __global__ void route_count(const int* __restrict__ chosen, int T, int k, int* __restrict__ counts) {
    __shared__ int scratch[32];
    int e = blockIdx.x, n = 0;
    for (int t = threadIdx.x; t < T; t += blockDim.x)
        for (int j = 0; j < k; j++) n += chosen[(size_t)t * k + j] == e;
    for (int o = 16; o > 0; o >>= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = n;
    __syncthreads();
    if (threadIdx.x == 0) {
        int s = 0;
        for (int w = 0; w < (blockDim.x >> 5); w++) s += scratch[w];
        counts[e] = s;
    }
}

// Single block: offsets[0..E] = exclusive prefix of counts.
extern "C" __global__ void route_offsets(const int* __restrict__ counts, int E, int* __restrict__ offsets) {
    if (threadIdx.x == 0) {
        int s = 0;
        for (int e = 0; e < E; e++) {
            offsets[e] = s;
            s += counts[e];
        }
        offsets[E] = s;
    }
}

// One block per expert: writes the expert's tokens (ascending) and gate weights at offsets[e].
extern "C" __global__ void route_fill(const int* __restrict__ chosen, const float* __restrict__ weights, int T, int k,
                                      const int* __restrict__ offsets, int* __restrict__ tokens, float* __restrict__ gates) {
    __shared__ int scratch[32];
    int e = blockIdx.x;
    int base = offsets[e];
    for (int t0 = 0; t0 < T; t0 += blockDim.x) {
        int t = t0 + threadIdx.x;
        int slot = -1;
        if (t < T)
            for (int j = 0; j < k; j++)
                if (chosen[(size_t)t * k + j] == e) slot = j;
        int pos;
        int total = block_exclusive_scan(slot >= 0, &pos, scratch);
        if (slot >= 0) {
            tokens[base + pos] = t;
            gates[base + pos] = weights[(size_t)t * k + slot];
        }
        base += total;
    }
}

// Identity routing for a dense feed-forward block run through the expert kernels: every token, gate 1.
extern "C" __global__ void route_identity(int T, int* __restrict__ tokens, float* __restrict__ gates) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < T) {
        tokens[t] = t;
        gates[t] = 1.f;
    }
}

// The grouped expert launches' work list on the device, so that no host round trip sits between routing and the
// experts: items (expert, first local row) of `rows` entries each, experts in order, then (-1, 0) up to
// maxItems, the worst case ceil(entries / rows) + E the host sizes the grids by (blocks of an item past the
// list return at once). One block; experts a blockDim at a time, each one's item count scanned.
extern "C" __global__ void route_work(const int* __restrict__ offsets, int E, int rows, int maxItems,
                                      int* __restrict__ work) {
    __shared__ int scratch[32];
    int base = 0;
    for (int e0 = 0; e0 < E; e0 += blockDim.x) {
        int e = e0 + threadIdx.x;
        int count = e < E ? offsets[e + 1] - offsets[e] : 0;
        int items = (count + rows - 1) / rows;
        int first;
        int total = block_exclusive_scan(items, &first, scratch);
        for (int i = 0; i < items; i++) {
            work[2 * (base + first + i)] = e;
            work[2 * (base + first + i) + 1] = i * rows;
        }
        base += total;
    }
    for (int i = base + threadIdx.x; i < maxItems; i += blockDim.x) {
        work[2 * i] = -1;
        work[2 * i + 1] = 0;
    }
}
