// Router: softmax over each token's expert logits, top-k (lowest index first on ties; non-finite logits: see
// router_ranks_above), optional renormalisation, or top-p over the same ranking; then the per-expert token lists
// (the activation-sparse format) built on the GPU in a fixed order: each expert's tokens ascending, so results
// never depend on thread scheduling. Every router writes each token's experts as one row of chosen/weights
// [T, width]; routers whose count varies (top-p, router_variants.cu) also write it per token (perToken), and the
// list kernels read only that many of the row. CPU twins: TopKSoftmaxRouter.route, TopPRouter.route,
// HostExpertRouting.fromChoices.
#include "common.cuh"

// (p, e) ranks above (best, bestE): larger probability, the lower expert on ties, and NaN above any number (as
// TopKSoftmaxRouter.larger). A row with a NaN or +inf logit, or all -inf, has NaN probabilities everywhere (its
// sum is NaN), so it goes to experts 0..k-1 with NaN gates, never to no expert at all. Finite rows rank as before.
__device__ __forceinline__ bool router_ranks_above(float p, int e, float best, int bestE) {
    bool pNan = isnan(p), bestNan = isnan(best);
    if (pNan || bestNan) return pNan && (!bestNan || e < bestE);
    return p > best || (p == best && e < bestE);
}

// The (value(e), e) ranking first by router_ranks_above among the experts not in taken[0..j), over the warp's lanes
// (expert e on lane e % 32); best comes in below every value, and every lane leaves with the winner.
// Only experts with allowed(e) compete (router_warp_select: all of them); a lane with none keeps best and 0x7fffffff.
template <typename Value, typename Allowed>
__device__ __forceinline__ void router_warp_select_if(int E, int lane, const int* taken, int j, Value value,
                                                      Allowed allowed, float& best, int& bestE) {
    bestE = 0x7fffffff;
    for (int e = lane; e < E; e += 32) {
        bool used = false;
        for (int i = 0; i < j; i++) used |= taken[i] == e;
        if (used || !allowed(e)) continue;
        float v = value(e);
        if (router_ranks_above(v, e, best, bestE)) {
            best = v;
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
}
template <typename Value>
__device__ __forceinline__ void router_warp_select(int E, int lane, const int* taken, int j, Value value, float& best,
                                                   int& bestE) {
    router_warp_select_if(E, lane, taken, j, value, [](int) { return true; }, best, bestE);
}

// A row's softmax over the warp: m = its largest logit, s = the sum of __expf(z - m) (NaN where a logit is NaN or
// +inf, or all are -inf); probability e is __expf(z[e] - m) / s. Every router that weighs by the softmax uses this,
// so that the same logits give the same gates whichever router chose the experts.
__device__ __forceinline__ void router_softmax_sum(const float* __restrict__ z, int E, int lane, float* m, float* s) {
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, z[e]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int e = lane; e < E; e += 32) sum += __expf(z[e] - mx);
    *m = mx;
    *s = warp_sum(sum);
}

// The row's softmax probabilities ranked, one warp per row: the largest first (router_ranks_above), up to `k` of
// them, stopping after the first m whose cumulative probability reaches topP (INFINITY: never, plain top-k; a NaN
// row never reaches it). Every lane returns m and the same taken[0..m) and probs[0..m). Shared by top-k and top-p,
// which rank and weigh alike (top-p:1:K is top-k:K but where the first experts' float sum already reaches 1).
__device__ __forceinline__ int router_softmax_ranked(const float* __restrict__ z, int E, int k, float topP, int lane,
                                                     int* taken, float* probs) {
    float m, s;
    router_softmax_sum(z, E, lane, &m, &s);
    float cumulative = 0.f;
    for (int j = 0; j < k; j++) {
        float best = -1.f;  // below every probability
        int bestE;
        router_warp_select(E, lane, taken, j, [&](int e) { return __expf(z[e] - m) / s; }, best, bestE);
        taken[j] = bestE;
        probs[j] = best;
        cumulative += best;
        if (cumulative >= topP) return j + 1;
    }
    return k;
}

// Writes a token's m chosen experts and gates (renormalised: divided by the sum of the m, in rank order) at row t
// of chosen/weights [T, width]; its count into perToken[t] where the router's count varies (perToken not null).
__device__ __forceinline__ void router_write(int t, int m, int width, const int* taken, const float* probs,
                                            int renormalize, int* __restrict__ chosen, float* __restrict__ weights,
                                            int* __restrict__ perToken) {
    float kept = 0.f;
    for (int j = 0; j < m; j++) kept += probs[j];
    for (int j = 0; j < m; j++) {
        chosen[(size_t)t * width + j] = taken[j];
        weights[(size_t)t * width + j] = renormalize ? probs[j] / kept : probs[j];
    }
    if (perToken) perToken[t] = m;
}

// One warp per token. chosen/weights: [T, k]. CPU twin: TopKSoftmaxRouter.
extern "C" __global__ void router_topk_softmax(const float* __restrict__ logits, int T, int E, int k, int renormalize,
                                               int* __restrict__ chosen, float* __restrict__ weights) {
    int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    int taken[ROUTER_MAX_K];
    float probs[ROUTER_MAX_K];
    router_softmax_ranked(logits + (size_t)t * E, E, k, INFINITY, lane, taken, probs);
    if (lane == 0) router_write(t, k, k, taken, probs, renormalize, chosen, weights, nullptr);
}

// Nucleus routing, one warp per token: the fewest m <= maxK largest probabilities reaching topP.
// chosen/weights: [T, maxK], the first perToken[t] of each row used. CPU twin: TopPRouter.
extern "C" __global__ void router_top_p(const float* __restrict__ logits, int T, int E, int maxK, float topP,
                                        int renormalize, int* __restrict__ chosen, float* __restrict__ weights,
                                        int* __restrict__ perToken) {
    int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (t >= T) return;
    int taken[ROUTER_MAX_K];
    float probs[ROUTER_MAX_K];
    int m = router_softmax_ranked(logits + (size_t)t * E, E, maxK, topP, lane, taken, probs);
    if (lane == 0) router_write(t, m, maxK, taken, probs, renormalize, chosen, weights, perToken);
}

// DeepSeek-V3's and GLM-4.5's router (topk_method noaux_tc), one warp per token, 2 x E floats of dynamic shared
// memory per warp: s_e = sigmoid(z_e), c_e = s_e + bias_e (the correction steers the choice only); a group's score is
// the sum of its two largest c; the topkGroups best groups are eligible; the k eligible experts of largest c are
// chosen (router_ranks_above: ties to the lower index, NaN above every number); gate = s, divided by (the chosen s'
// sum + 1e-20) where renormalize, times `scaling`. Groups of E / groups consecutive experts (at least 2), groups <=
// 64, topkGroups and k <= ROUTER_MAX_K (RouterKernel.GroupSigmoid checks). chosen/weights: [T, k].
// CPU twin: GroupLimitedSigmoidRouter (the same steps, each rounded once; expf may differ from its exp by an ulp,
// which moves a choice only at a near tie).
extern "C" __global__ void router_group_sigmoid(const float* __restrict__ logits, int T, int E, int groups,
                                                int topkGroups, int k, const float* __restrict__ bias,
                                                int renormalize, float scaling, int* __restrict__ chosen,
                                                float* __restrict__ weights) {
    extern __shared__ float router_smem[];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int t = blockIdx.x * (blockDim.x / 32) + warp;
    if (t >= T) return;
    float* s = router_smem + (size_t)warp * 2 * E;
    float* c = s + E;
    const float* z = logits + (size_t)t * E;
    for (int e = lane; e < E; e += 32) {
        float p = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-z[e])));
        s[e] = p;
        c[e] = __fadd_rn(p, bias[e]);
    }
    __syncwarp();
    int perGroup = E / groups;
    float groupScore[2];  // groups lane and lane + 32
    for (int i = 0; i < 2; i++) {
        int g = lane + 32 * i;
        float first = -INFINITY, second = -INFINITY;
        int firstE = 0x7fffffff, secondE = 0x7fffffff;
        for (int e = g * perGroup; g < groups && e < (g + 1) * perGroup; e++) {
            if (router_ranks_above(c[e], e, first, firstE)) {
                second = first;
                secondE = firstE;
                first = c[e];
                firstE = e;
            } else if (router_ranks_above(c[e], e, second, secondE)) {
                second = c[e];
                secondE = e;
            }
        }
        groupScore[i] = __fadd_rn(first, second);
    }
    int takenGroups[ROUTER_MAX_K];
    unsigned long long eligible = 0;
    for (int j = 0; j < topkGroups; j++) {
        float best = -INFINITY;
        int bestG;
        router_warp_select(groups, lane, takenGroups, j, [&](int g) { return groupScore[g >> 5]; }, best, bestG);
        takenGroups[j] = bestG;
        eligible |= 1ull << bestG;
    }
    int taken[ROUTER_MAX_K];
    float probs[ROUTER_MAX_K];
    float sum = 0.f;
    for (int j = 0; j < k; j++) {
        float best = -INFINITY;
        int bestE;
        router_warp_select_if(E, lane, taken, j, [&](int e) { return c[e]; },
                              [&](int e) { return ((eligible >> (e / perGroup)) & 1ull) != 0; }, best, bestE);
        taken[j] = bestE;
        probs[j] = s[bestE];
        sum = __fadd_rn(sum, probs[j]);
    }
    if (lane == 0) {
        float denominator = __fadd_rn(sum, 1e-20f);
        for (int j = 0; j < k; j++) {
            float w = renormalize ? __fdiv_rn(probs[j], denominator) : probs[j];
            chosen[(size_t)t * k + j] = taken[j];
            weights[(size_t)t * k + j] = __fmul_rn(w, scaling);
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

// A token's expert count: perToken[t] where the router's count varies, else the fixed k (the rows' width).
__device__ __forceinline__ int route_token_count(const int* __restrict__ perToken, int t, int k) {
    return perToken ? perToken[t] : k;
}

// The per-expert lists are built in chunks of ROUTE_CHUNK tokens, so that a layer's lists take one short pass of
// C = ceil(T / ROUTE_CHUNK) x E blocks instead of E blocks each walking all T tokens: chunk counts, their prefix in
// (expert, chunk) order, then each block fills its expert's entries of its chunk. Expert e's tokens stay ascending.

// Block (e, c): chunks[e * C + c] = the tokens of chunk c (tokens c*ROUTE_CHUNK ..) routed to expert e.
// chosen: [T, k], row t's first route_token_count used.
extern "C" __global__ void route_count(const int* __restrict__ chosen, const int* __restrict__ perToken, int T, int k,
                                       int* __restrict__ chunks) {
    __shared__ int scratch[32];
    int e = blockIdx.x, c = blockIdx.y, n = 0;
    int end = min(T, (c + 1) * ROUTE_CHUNK);
    for (int t = c * ROUTE_CHUNK + threadIdx.x; t < end; t += blockDim.x)
        for (int j = 0, m = route_token_count(perToken, t, k); j < m; j++) n += chosen[(size_t)t * k + j] == e;
    for (int o = 16; o > 0; o >>= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = n;
    __syncthreads();
    if (threadIdx.x == 0) {
        int s = 0;
        for (int w = 0; w < (blockDim.x >> 5); w++) s += scratch[w];
        chunks[(size_t)e * gridDim.y + c] = s;
    }
}

// One block: the E x C chunk counts become their exclusive prefix in place (expert-major: where block (e, c) of
// route_fill writes), offsets[0..E] the experts' starts and the total, counts[e] each expert's tokens.
extern "C" __global__ void route_offsets(int* __restrict__ chunks, int E, int C, int* __restrict__ offsets,
                                         int* __restrict__ counts) {
    __shared__ int scratch[32];
    int n = E * C, base = 0;
    for (int i0 = 0; i0 < n; i0 += blockDim.x) {
        int i = i0 + threadIdx.x;
        int v = i < n ? chunks[i] : 0;
        int before;
        int total = block_exclusive_scan(v, &before, scratch);
        if (i < n) {
            chunks[i] = base + before;
            if (i % C == 0) offsets[i / C] = base + before;
        }
        base += total;
    }
    if (threadIdx.x == 0) offsets[E] = base;
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) counts[e] = offsets[e + 1] - offsets[e];
}

// Block (e, c): writes expert e's tokens of chunk c (ascending) and their gate weights from chunks[e * C + c] on.
extern "C" __global__ void route_fill(const int* __restrict__ chosen, const float* __restrict__ weights,
                                      const int* __restrict__ perToken, int T, int k, const int* __restrict__ chunks,
                                      int* __restrict__ tokens, float* __restrict__ gates) {
    __shared__ int scratch[32];
    int e = blockIdx.x, c = blockIdx.y;
    int base = chunks[(size_t)e * gridDim.y + c];
    int end = min(T, (c + 1) * ROUTE_CHUNK);
    for (int t0 = c * ROUTE_CHUNK; t0 < end; t0 += blockDim.x) {
        int t = t0 + threadIdx.x;
        int slot = -1;
        if (t < end)
            for (int j = 0, m = route_token_count(perToken, t, k); j < m; j++)
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
