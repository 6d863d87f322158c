// Tensor-core GEMMs: out = A W^T with 16-bit W [N, K] (row-major, K contiguous), fp32 accumulation. Every
// kernel exists for bf16 and for fp16 operands (common.cuh: T, to_half), named after the type: linear_bf16 and
// linear_f16, experts_bf16_gate_up and experts_f16_gate_up, ...
// CPU twins: CpuBackend.linear (dense), CpuBackend.experts and ffn (grouped, SwiGLU, combine).
//
// One block computes a 128 x 256 tile of out with 8 warps (2 along M x 4 along N, 64 x 64 each) using
// mma.sync m16n8k16; K advances 32 at a time through a three-stage cp.async shared-memory pipeline.
// Activations stay fp32 between kernels; to_bf16_parts (to_f16_parts) rounds a GEMM's input once before it runs.
//
// Precision. A product of bf16 numbers keeps 8 significant bits of each input. For near-fp32 results
// (split-bf16 precision) a value is also stored as hi + lo, two bf16 numbers, and the inner dimension grows
// instead of the kernel: an activation row holds aParts copies of K values, a weight row wParts copies, and
// the main loop wraps the weight row (column k reads weight column k mod Kw):
//   aParts 1 [x_hi]               wParts 1 [w_hi]         x_hi w_hi                 (bf16)
//   aParts 2 [x_hi, x_lo]         wParts 1 [w_hi]         x_hi w + x_lo w           (bf16 weights are exact)
//   aParts 3 [x_hi, x_hi, x_lo]   wParts 2 [w_hi, w_lo]   x_hi w_hi + x_hi w_lo + x_lo w_hi
// CPU twin of the splitting: CudaBackendTest's split-precision checks against CpuBackend in fp32.
// fp16 precision runs the same kernels on fp16 operands, one part each: 11 significant bits per input.
//
// The same block code serves three launches:
//   linear_T           dense: out fp32 [M, N] (+ bias)
// Small fp32 weights (routers: tens of experts) take linear_small_f32 instead where their input is fp32 only
// (split-bf16: routing as close to the fp32 reference as the hidden states allow); at bf16 / fp16 they read the
// norm's 16-bit copy through linear_T / cuBLASLt like every other product (CudaBackend.linear).
//   experts_T_gate_up  grouped over (expert, row tile): A rows gathered by token index straight from the
//                      hidden states (no gathered copy), W = that expert's gate and up rows interleaved in
//                      blocks of 8 so a thread holds gate and up of the same output column; the epilogue
//                      writes silu(gate) * up as T, one row per routing entry.
//   experts_T_down     grouped: A = those rows, W = the expert's down projection; the epilogue scales
//                      by the entry's gate weight and adds into the token's output row (atomicAdd, or a
//                      plain store per entry in deterministic mode, summed later in expert order).
// Requirements checked on the host: K % 8 == 0 (16-byte chunks), and for gate_up the ffn width % 8 == 0.
#include "common.cuh"

// BM, BN, BK, LDS, GEMM_THREADS, GEMM_STAGES, GEMM_SHARED_BYTES: constants.cuh
#define WN 8   // n8 tiles per warp: a warp computes 64 x 64

enum { EPI_STORE_F32 = 0, EPI_SWIGLU_BF16 = 1, EPI_COMBINE_ATOMIC = 2, EPI_STORE_SCALED_F32 = 3 };

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    int bytes = valid ? 16 : 0;  // 0: zero-fill, nothing read
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void ldmatrix_x4(unsigned* r, const void* smem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}

// c += a b: one m16n8k16 tensor-core product of T (bf16 or f16) fragments, fp32 accumulators.
#define MMA_M16N8K16(TYPE)                                                                                      \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." TYPE "." TYPE ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "   \
                 "{%8,%9}, {%0,%1,%2,%3};\n"                                                                    \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                               \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]))
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float* c, const unsigned* a, const unsigned* b) {
    if constexpr (is_bf16<T>) MMA_M16N8K16("bf16");
    else MMA_M16N8K16("f16");
}
#undef MMA_M16N8K16

template <typename T>
struct TileArgs {
    const T* A;           // rows of K
    const int* aRows;     // gather: local row m reads A row aRows[rowBegin + m]; null: rowBegin + m
    int rowBegin, rowCount;
    const T* W;           // [N, Kw]: column k of the product reads weight column k mod Kw
    int N, K, Kw;
    int m0, n0;           // tile origin: local row, output column
};

// One stage: A tile (rows m0.., cols k0..) and W tile (rows n0.., cols k0..), 16-byte cp.async each,
// zero-filled outside the matrices.
template <typename T>
__device__ __forceinline__ void load_stage(const TileArgs<T>& t, int k0, T* sA, T* sW) {
#pragma unroll
    for (int i = 0; i < BM * 4 / GEMM_THREADS; i++) {
        int chunk = threadIdx.x + i * GEMM_THREADS;
        int r = chunk >> 2, c = (chunk & 3) * 8;
        int m = t.m0 + r, k = k0 + c;
        bool valid = m < t.rowCount && k < t.K;
        int row = valid ? (t.aRows ? t.aRows[t.rowBegin + m] : t.rowBegin + m) : 0;
        cp_async16(sA + r * LDS + c, t.A + (size_t)row * t.K + (valid ? k : 0), valid);
    }
#pragma unroll
    for (int i = 0; i < BN * 4 / GEMM_THREADS; i++) {
        int chunk = threadIdx.x + i * GEMM_THREADS;
        int r = chunk >> 2, c = (chunk & 3) * 8;
        int n = t.n0 + r, k = k0 + c;
        bool wValid = n < t.N && k < t.K;
        int kw = k < t.Kw ? k : k % t.Kw;  // 16-byte chunks never straddle a copy: K % 8 == 0
        cp_async16(sW + r * LDS + c, t.W + (size_t)(wValid ? n : 0) * t.Kw + (wValid ? kw : 0), wValid);
    }
}

// The main loop: acc[mi][ni][4] for the warp's 4 x WN (m16, n8) tiles; GEMM_STAGES-deep cp.async pipeline.
template <typename T>
__device__ __forceinline__ void gemm_mainloop(const TileArgs<T>& t, float acc[4][WN][4]) {
    extern __shared__ __align__(16) unsigned char gemm_smem[];
    T* sA = reinterpret_cast<T*>(gemm_smem);
    T* sW = sA + GEMM_STAGES * BM * LDS;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int wm = (warp >> 2) * 64, wn = (warp & 3) * (WN * 8);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < WN; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    int kTiles = (t.K + BK - 1) / BK;
#pragma unroll
    for (int s = 0; s < GEMM_STAGES - 1; s++) {
        if (s < kTiles) load_stage(t, s * BK, sA + s * BM * LDS, sW + s * BN * LDS);
        cp_async_commit();
    }
    for (int kt = 0; kt < kTiles; kt++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(GEMM_STAGES - 2));
        __syncthreads();  // stage kt landed for everyone; stage kt-1 is free to refill
        int pre = kt + GEMM_STAGES - 1;
        if (pre < kTiles) {
            int ps = pre % GEMM_STAGES;
            load_stage(t, pre * BK, sA + ps * BM * LDS, sW + ps * BN * LDS);
        }
        cp_async_commit();
        const T* a_s = sA + (kt % GEMM_STAGES) * BM * LDS;
        const T* w_s = sW + (kt % GEMM_STAGES) * BN * LDS;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            unsigned a[4][4], b[WN / 2][4];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                int row = wm + mi * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
                int col = kk + 8 * (lane >> 4);
                ldmatrix_x4(a[mi], &a_s[row * LDS + col]);
            }
#pragma unroll
            for (int nj = 0; nj < WN / 2; nj++) {
                int row = wn + nj * 16 + (lane & 7) + 8 * (lane >> 4);
                int col = kk + 8 * ((lane >> 3) & 1);
                ldmatrix_x4(b[nj], &w_s[row * LDS + col]);
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < WN; ni++) mma_m16n8k16<T>(acc[mi][ni], a[mi], &b[ni >> 1][(ni & 1) * 2]);
        }
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// Epilogues, shared with the wgmma main loop (gemm_sm90.cu). acc is a warp's [MI][NI][4] accumulators: element e
// of tile (mi, ni) sits at local row wm + mi*16 + lane/4 (+8 for e >= 2) and column wn + ni*8 + 2*(lane%4)
// (+1 for odd e).
#define ACC(mi, ni, e) acc[((mi) * NI + (ni)) * 4 + (e)]

template <int MI, int NI, typename T>
__device__ __forceinline__ void epi_store(const float* acc, int wm, int wn, const TileArgs<T>& t, const float* bias,
                                          float* out, int M, int N) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int m = t.m0 + wm + mi * 16 + (lane >> 2) + (e >> 1) * 8;
                int n = t.n0 + wn + ni * 8 + 2 * (lane & 3) + (e & 1);
                if (m < M && n < N) out[(size_t)m * N + n] = ACC(mi, ni, e) + (bias ? bias[n] : 0.f);
            }
}

// Grouped launches: Work and work_item (common.cuh) give each block its (expert, 128 entries, column tile).

// Stores v as the GEMM input value k of a row of aParts copies of K values (see Precision above).
template <typename T>
__device__ __forceinline__ void store_parts(T* row, int K, int k, float v, int aParts) {
    T hi = to_half<T>(v);
    row[k] = hi;
    if (aParts == 1) return;
    T lo = to_half<T>(v - half_to_float(hi));
    if (aParts == 2) {
        row[K + k] = lo;
    } else {
        row[K + k] = hi;
        row[2 * K + k] = lo;
    }
}

// Tile ni (even) holds gate columns, ni+1 the up columns of the same f: inter[entry, f] = silu(gate) * up.
template <int MI, int NI, typename T>
__device__ __forceinline__ void epi_swiglu(const float* acc, int wm, int wn, const TileArgs<T>& t, const Work& w,
                                           T* inter, int F, int aParts) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni += 2)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int m = w.m0 + wm + mi * 16 + (lane >> 2) + (e >> 1) * 8;
                int nInterleaved = t.n0 + wn + ni * 8;  // a multiple of 16: start of a gate block
                int f = nInterleaved / 2 + 2 * (lane & 3) + (e & 1);
                if (m < w.count && f < F) {
                    float v = silu(ACC(mi, ni, e)) * ACC(mi, ni + 1, e);
                    store_parts(inter + (size_t)(w.begin + m) * F * aParts, F, f, v, aParts);
                }
            }
}

// out[token] += gate * acc (atomicAdd: a token receives one add per chosen expert; on sm_90 a float2 add per
// adjacent column pair), or perEntry[entry] = ...
template <int MI, int NI, typename T>
__device__ __forceinline__ void epi_combine(const float* acc, int wm, int wn, const TileArgs<T>& t, const Work& w,
                                            const int* tokens, const float* gates, float* out, float* perEntry,
                                            int H) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int e2 = 0; e2 < 2; e2++) {
            int m = w.m0 + wm + mi * 16 + (lane >> 2) + e2 * 8;
            if (m >= w.count) continue;
            int entry = w.begin + m;
            float g = gates[entry];
            int token = tokens[entry];
#pragma unroll
            for (int ni = 0; ni < NI; ni++) {
                int h0 = t.n0 + wn + ni * 8 + 2 * (lane & 3);  // even: the thread's two adjacent columns
#if __CUDA_ARCH__ >= 900
                if ((H & 1) == 0 && h0 + 1 < H) {  // one 8-byte add (or store) for the pair, half the atomics
                    float2 v = make_float2(g * ACC(mi, ni, e2 * 2), g * ACC(mi, ni, e2 * 2 + 1));
                    if (perEntry) *reinterpret_cast<float2*>(&perEntry[(size_t)entry * H + h0]) = v;
                    else atomicAdd(reinterpret_cast<float2*>(&out[(size_t)token * H + h0]), v);
                    continue;
                }
#endif
#pragma unroll
                for (int e1 = 0; e1 < 2; e1++) {
                    int h = h0 + e1;
                    if (h >= H) continue;
                    float v = g * ACC(mi, ni, e2 * 2 + e1);
                    if (perEntry) perEntry[(size_t)entry * H + h] = v;
                    else atomicAdd(&out[(size_t)token * H + h], v);
                }
            }
        }
}
#undef ACC

template <typename T>
__device__ __forceinline__ void linear_body(const T* A, const T* W, const float* bias, float* out, int M, int N, int K,
                                            int Kw) {
    TileArgs<T> t{A, nullptr, 0, M, W, N, K, Kw, (int)blockIdx.x * BM, (int)blockIdx.y * BN};
    float acc[4][WN][4];
    gemm_mainloop(t, acc);
    int warp = threadIdx.x >> 5;
    epi_store<4, WN>(&acc[0][0][0], (warp >> 2) * 64, (warp & 3) * (WN * 8), t, bias, out, M, N);
}

// y[r] = the aParts copies of x[r] (fp32, K columns) as GEMM input.
template <typename T>
__device__ __forceinline__ void to_parts_body(const float* x, T* y, long long rows, int K, int aParts) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * K) return;
    long long r = i / K;
    store_parts(y + r * K * aParts, K, (int)(i - r * K), x[i], aParts);
}

// inter[entry, f] = silu(x[token] . gate_f) * (x[token] . up_f) for entries of every expert.
// wGateUp is [E, 2F, H * wParts]: per expert, rows interleaved in blocks of 8 (8 gate rows, then the 8 up rows
// of the same columns). x rows hold H * aParts values, inter rows F * aParts. wDown below is [E, H, F * wParts].
template <typename T>
__device__ __forceinline__ void gate_up_body(const T* x, const int* tokens, const int* offsets, const int* work,
                                             const T* wGateUp, T* inter, int F, int H, int aParts, int wParts) {
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    const T* W = wGateUp + (size_t)w.expert * 2 * F * H * wParts;
    TileArgs<T> t{x, tokens, w.begin, w.count, W, 2 * F, H * aParts, H * wParts, w.m0, w.tile * BN};
    float acc[4][WN][4];
    gemm_mainloop(t, acc);
    int warp = threadIdx.x >> 5;
    epi_swiglu<4, WN>(&acc[0][0][0], (warp >> 2) * 64, (warp & 3) * (WN * 8), t, w, inter, F, aParts);
}

// out[token] += gate * (inter[entry] . down_h) for entries of every expert (atomicAdd: tokens receive one
// add per chosen expert), or, deterministic, perEntry[entry, h] = gate * (...) for a fixed-order sum later.
template <typename T>
__device__ __forceinline__ void down_body(const T* inter, const int* tokens, const float* gates, const int* offsets,
                                          const int* work, const T* wDown, float* out, float* perEntry, int H, int F,
                                          int aParts, int wParts) {
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    const T* W = wDown + (size_t)w.expert * H * F * wParts;
    TileArgs<T> t{inter, nullptr, w.begin, w.count, W, H, F * aParts, F * wParts, w.m0, w.tile * BN};
    float acc[4][WN][4];
    gemm_mainloop(t, acc);
    int warp = threadIdx.x >> 5;
    epi_combine<4, WN>(&acc[0][0][0], (warp >> 2) * 64, (warp & 3) * (WN * 8), t, w, tokens, gates, out, perEntry, H);
}

// The mma.sync launches of one element type T, named linear_NAME, to_NAME_parts, experts_NAME_gate_up and
// experts_NAME_down.
#define GEMM_KERNELS(T, NAME)                                                                                   \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    linear_##NAME(const T* __restrict__ A, const T* __restrict__ W, const float* __restrict__ bias,              \
                  float* __restrict__ out, int M, int N, int K, int Kw) {                                       \
        linear_body(A, W, bias, out, M, N, K, Kw);                                                               \
    }                                                                                                            \
    extern "C" __global__ void to_##NAME##_parts(const float* __restrict__ x, T* __restrict__ y, long long rows, \
                                                 int K, int aParts) {                                           \
        to_parts_body(x, y, rows, K, aParts);                                                                    \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    experts_##NAME##_gate_up(const T* __restrict__ x, const int* __restrict__ tokens,                            \
                             const int* __restrict__ offsets, const int* __restrict__ work,                     \
                             const T* __restrict__ wGateUp, T* __restrict__ inter, int F, int H, int aParts,    \
                             int wParts) {                                                                       \
        gate_up_body(x, tokens, offsets, work, wGateUp, inter, F, H, aParts, wParts);                            \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    experts_##NAME##_down(const T* __restrict__ inter, const int* __restrict__ tokens,                           \
                          const float* __restrict__ gates, const int* __restrict__ offsets,                     \
                          const int* __restrict__ work, const T* __restrict__ wDown, float* __restrict__ out,   \
                          float* __restrict__ perEntry, int H, int F, int aParts, int wParts) {                 \
        down_body(inter, tokens, gates, offsets, work, wDown, out, perEntry, H, F, aParts, wParts);              \
    }
GEMM_KERNELS(bf16, bf16)
GEMM_KERNELS(f16, f16)

// Deterministic combine (batch-invariant mode): out[t] = the sum, over t's chosen experts in ascending order,
// of perEntry[entry] (already gate-weighted by the down projection's epilogue), instead of atomicAdds whose
// order, with three or more experts per token, changes the rounding from run to run and batch to batch. A
// token's entry for expert e is found by binary search in e's ascending token list (router.cu). chosen: [T, k],
// row t's first perToken[t] used where the router's count varies (perToken null: all k); a token with none gets
// zeros. One block per token, k ints of dynamic shared memory. CPU twin: CpuBackend.experts (same expert order).
extern "C" __global__ void combine_expert_outputs(const float* __restrict__ perEntry, const int* __restrict__ chosen,
                                                  const int* __restrict__ perToken, const int* __restrict__ offsets,
                                                  const int* __restrict__ tokens, float* __restrict__ out, int T, int k,
                                                  int H) {
    extern __shared__ int combine_entries[];
    __shared__ int count;
    int t = blockIdx.x;
    if (threadIdx.x == 0) {
        int n = perToken ? perToken[t] : k;
        for (int j = 0; j < n; j++) {  // insertion sort into ascending expert order
            int e = chosen[(size_t)t * k + j], i = j;
            for (; i > 0 && combine_entries[i - 1] > e; i--) combine_entries[i] = combine_entries[i - 1];
            combine_entries[i] = e;
        }
        for (int j = 0; j < n; j++) {
            int e = combine_entries[j];
            int lo = offsets[e], hi = offsets[e + 1] - 1;
            while (lo < hi) {
                int mid = (lo + hi) >> 1;
                if (tokens[mid] < t) lo = mid + 1;
                else hi = mid;
            }
            combine_entries[j] = lo;
        }
        count = n;
    }
    __syncthreads();
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        float s = 0.f;
        for (int j = 0; j < count; j++) s += perEntry[(size_t)combine_entries[j] * H + h];
        out[(size_t)t * H + h] = s;
    }
}

// out[t, n] = x[t] . w[n] (+ bias) in fp32 for small N (router logits, shared-expert gate): register-tiled on the
// CUDA cores. A block of SMALL_THREADS computes SMALL_TILE rows x SMALL_TILE outputs, each thread 4 x 4, over
// K slices of SMALL_K staged in shared memory (x transposed, one column of padding against bank conflicts). Each
// output is one thread's sum in k order from its row and weight alone: batch-invariant, as deterministic mode
// needs. (It was one warp per output reading both rows from L2: 16 KB of traffic per logit at K = 2048.)
extern "C" __global__ void __launch_bounds__(SMALL_THREADS)
linear_small_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                 float* __restrict__ out, int M, int N, int K) {
    __shared__ float xs[SMALL_K][SMALL_TILE + 1];
    __shared__ float ws[SMALL_K][SMALL_TILE + 1];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int m0 = blockIdx.x * SMALL_TILE, n0 = blockIdx.y * SMALL_TILE;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += SMALL_K) {
        for (int i = threadIdx.x; i < SMALL_TILE * SMALL_K; i += SMALL_THREADS) {
            int r = i / SMALL_K, k = i % SMALL_K;  // consecutive threads read consecutive k of a row
            bool kIn = k0 + k < K;
            xs[k][r] = m0 + r < M && kIn ? x[(size_t)(m0 + r) * K + k0 + k] : 0.f;
            ws[k][r] = n0 + r < N && kIn ? w[(size_t)(n0 + r) * K + k0 + k] : 0.f;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < SMALL_K; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[k][ty * 4 + i];
                b[i] = ws[k][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty * 4 + i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int n = n0 + tx * 4 + j;
            if (n < N) out[(size_t)m * N + n] = acc[i][j] + (bias ? bias[n] : 0.f);
        }
    }
}

#include "gemm_sm90.cu"
