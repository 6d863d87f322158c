// Dual-sparse expert kernels (after Samoyeds, EuroSys'25): expert weights in 2:4 structured sparsity on the
// Sparse Tensor Cores (mma.sp, A operand), and sparse activations: each expert reads only the tokens routed to
// it, by index, straight from the hidden states (B operand) - no gathered copy exists.
// CPU twin: CpuBackend.experts on the decompressed weights (Sparse24.decompress).
//
// Weight format (io.moescore.sparse.Sparse24 packs it offline): for a weight W [R, K] (K the input dim),
// in every group of 4 consecutive k two values are kept.
//   values [R, K/2] bf16 or fp16 (the backend's precision): the kept values of each row in k order
//   meta   [R, K/32] uint32: per row and per 32 k, 8 nibbles (group j at bits 4j..4j+3) each holding the two
//          kept positions i0 < i1 within the group as i0 | i1 << 2. mma.sp wants, per quad of threads, the
//          halves of the words of rows g and g+8 combined (see sp_mainloop): two shifts per k32 step.
//
// Block: 256 weight rows x 128 tokens, 8 warps (4 along rows x 2 along tokens, 64 x 64 each), K advancing 64
// (two m16n8k32 steps) through a three-stage cp.async pipeline. gate_up weights are interleaved in blocks of 8
// rows (8 gate rows, then the 8 up rows of the same columns), so one m16 tile holds gate (rows g) and up
// (rows g+8) of the same 8 columns and the thread owning both applies SwiGLU in registers.
#include "common.cuh"

// constants.cuh: SP_ROWS weight rows x SP_TOKENS tokens per block, SP_K original k per stage, SP_LDV compressed
// values and SP_LDX token values per shared row, SP_THREADS, SP_STAGES, and SPARSE_SHARED_BYTES = sizeof(SpShared).

__device__ __forceinline__ void sp_cp_async16(void* smem, const void* gmem, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void sp_cp_async4(void* smem, const void* gmem, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void sp_ldmatrix_x4(unsigned* r, const void* smem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
// bf16 and fp16 share the 2:4 metadata layout, so one packed format serves both. ::ordered_metadata: each group's
// two positions are stored in increasing order (i0 < i1), which this form requires and plain .sp does not (ptxas
// advises the ordered form for future architectures).
#define MMA_SP_M16N8K32(TYPE)                                                                                  \
    asm volatile("mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32." TYPE "." TYPE ".f32 "             \
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"                    \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(meta))
template <typename T>
__device__ __forceinline__ void mma_sp_m16n8k32(float* c, const unsigned* a, const unsigned* b, unsigned meta) {
    if constexpr (is_bf16<T>) MMA_SP_M16N8K32("bf16");
    else MMA_SP_M16N8K32("f16");
}
#undef MMA_SP_M16N8K32

template <typename T>
struct SpTile {
    const T* values;       // [R, K/2]
    const unsigned* meta;  // [R, K/32]
    int R, K;
    int r0;                // first weight row of the block
    const T* x;            // token rows [*, K]
    const int* rows;       // token row of local token t: rows[begin + t] (null: begin + t)
    int begin, count;      // the expert's entries
    int t0;                // first local token of the block
};

// SP_STAGES x ((256 rows x 32 compressed) values + (256 x 2) meta words + (128 tokens x 64) token values)
template <typename T>
struct SpShared {
    T v[SP_STAGES][SP_ROWS * SP_LDV];
    unsigned m[SP_STAGES][SP_ROWS * 2];
    T x[SP_STAGES][SP_TOKENS * SP_LDX];
};
static_assert(sizeof(SpShared<bf16>) == SPARSE_SHARED_BYTES && sizeof(SpShared<f16>) == SPARSE_SHARED_BYTES,
              "SPARSE_SHARED_BYTES (constants.cuh), the shared memory the host gives these kernels, is SpShared's size");

template <typename T>
__device__ __forceinline__ void sp_load_stage(const SpTile<T>& t, int k0, SpShared<T>& sh, int stage) {
    int tid = threadIdx.x;
    // values: 256 rows x 32 kept = 256 x 4 chunks of 16 bytes
#pragma unroll
    for (int i = 0; i < SP_ROWS * 4 / SP_THREADS; i++) {
        int chunk = tid + i * SP_THREADS;
        int r = chunk >> 2, c = (chunk & 3) * 8;  // c: compressed column
        int row = t.r0 + r, kc = k0 / 2 + c;
        bool valid = row < t.R && kc < t.K / 2;
        sp_cp_async16(&sh.v[stage][r * SP_LDV + c], t.values + (size_t)(valid ? row : 0) * (t.K / 2) + (valid ? kc : 0),
                      valid);
    }
    // metadata: 256 rows x 2 words
#pragma unroll
    for (int i = 0; i < SP_ROWS * 2 / SP_THREADS; i++) {
        int r = (tid + i * SP_THREADS) >> 1, w = tid & 1;
        int row = t.r0 + r, word = k0 / 32 + w;
        bool valid = row < t.R && word < (t.K + 31) / 32;
        if (valid) sp_cp_async4(&sh.m[stage][r * 2 + w], t.meta + (size_t)row * ((t.K + 31) / 32) + word, true);
        else sh.m[stage][r * 2 + w] = 0x44444444u;  // positions 0 and 1 of zero values: contributes nothing
    }
    // tokens: 128 rows x 64 values = 128 x 8 chunks
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int chunk = tid + i * SP_THREADS;
        int r = chunk >> 3, c = (chunk & 7) * 8;
        int tok = t.t0 + r, k = k0 + c;
        bool valid = tok < t.count && k < t.K;
        int row = valid ? (t.rows ? t.rows[t.begin + tok] : t.begin + tok) : 0;
        sp_cp_async16(&sh.x[stage][r * SP_LDX + c], t.x + (size_t)row * t.K + (valid ? k : 0), valid);
    }
}

// acc[mi][ni][4]: weight rows wr + mi*16 + g (+8 for e >= 2), tokens wt + ni*8 + 2c (+1 for odd e).
template <typename T>
__device__ __forceinline__ void sp_mainloop(const SpTile<T>& t, float acc[4][8][4]) {
    extern __shared__ __align__(16) unsigned char sp_smem[];
    SpShared<T>& sh = *reinterpret_cast<SpShared<T>*>(sp_smem);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int wr = (warp >> 1) * 64, wt = (warp & 1) * 64;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;
    int kTiles = (t.K + SP_K - 1) / SP_K;
#pragma unroll
    for (int s = 0; s < SP_STAGES - 1; s++) {
        if (s < kTiles) sp_load_stage(t, s * SP_K, sh, s);
        asm volatile("cp.async.commit_group;\n" ::);
    }
    for (int kt = 0; kt < kTiles; kt++) {
        int cur = kt % SP_STAGES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(SP_STAGES - 2));
        __syncthreads();  // stage kt landed for everyone; stage kt-1 is free to refill
        if (kt + SP_STAGES - 1 < kTiles) {
            sp_load_stage(t, (kt + SP_STAGES - 1) * SP_K, sh, (kt + SP_STAGES - 1) % SP_STAGES);
        }
        asm volatile("cp.async.commit_group;\n" ::);
#pragma unroll
        for (int ks = 0; ks < 2; ks++) {  // two k32 steps per stage
            unsigned a[4][4], b[8][4], meta[4];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                int row = wr + mi * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
                int col = ks * 16 + 8 * (lane >> 4);
                sp_ldmatrix_x4(a[mi], &sh.v[cur][row * SP_LDV + col]);
                // Sparsity selector 0: in each quad, thread 0 hands mma.sp the nibbles of k 0..15 (groups 0-3) of
                // rows g (low half) and g+8 (high half), thread 1 those of k 16..31 (groups 4-7).
                int metaRow = wr + mi * 16 + (lane >> 2);
                unsigned lo = sh.m[cur][metaRow * 2 + ks], hi = sh.m[cur][(metaRow + 8) * 2 + ks];
                meta[mi] = (lane & 1) ? (lo >> 16) | (hi & 0xffff0000u) : (lo & 0xffffu) | (hi << 16);
            }
#pragma unroll
            for (int ni = 0; ni < 8; ni++) {
                int tok = wt + ni * 8 + (lane & 7);
                int col = ks * 32 + 8 * (lane >> 3);
                sp_ldmatrix_x4(b[ni], &sh.x[cur][tok * SP_LDX + col]);
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 8; ni++) mma_sp_m16n8k32<T>(acc[mi][ni], a[mi], b[ni], meta[mi]);
        }
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// Epilogues, shared with the wgmma.sp kernels (sparse24_sm90.cu). acc is a warp's [MI][NI][4] accumulators:
// element e of tile (mi, ni) is weight row wr + mi * mStride + lane/4 (+8 for e >= 2), local token
// wt + ni*8 + 2*(lane%4) (+1 for odd e).
#define SP_ACC(mi, ni, e) acc[((mi) * NI + (ni)) * 4 + (e)]

// Rows 16b..16b+7 of an m16 tile are gate rows, 16b+8.. the up rows of the same f: SwiGLU in registers.
template <int MI, int NI, typename T>
__device__ __forceinline__ void sp_epi_swiglu(const float* acc, int wr, int mStride, int wt, const SpTile<T>& t,
                                              const Work& w, T* inter, int F) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int mi = 0; mi < MI; mi++) {
        int f = (t.r0 + wr + mi * mStride) / 2 + (lane >> 2);
        if (f >= F) continue;
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int tok = w.m0 + wt + ni * 8 + 2 * (lane & 3) + e;
                if (tok < w.count)
                    inter[(size_t)(w.begin + tok) * F + f] = to_half<T>(silu(SP_ACC(mi, ni, e)) * SP_ACC(mi, ni, 2 + e));
            }
    }
}

// out[token, h] += gate * acc (atomicAdd: each token gets one add per expert it chose), or, batch-invariant,
// perEntry[entry, h] = gate * acc for combine_expert_outputs (gemm.cu).
template <int MI, int NI, typename T>
__device__ __forceinline__ void sp_epi_combine(const float* acc, int wr, int mStride, int wt, const SpTile<T>& t,
                                               const Work& w, const int* tokens, const float* gates, float* out,
                                               float* perEntry, int H) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int e1 = 0; e1 < 2; e1++) {
            int tok = w.m0 + wt + ni * 8 + 2 * (lane & 3) + e1;
            if (tok >= w.count) continue;
            int entry = w.begin + tok;
            float g = gates[entry];
            int token = tokens[entry];
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int e2 = 0; e2 < 2; e2++) {
                    int h = t.r0 + wr + mi * mStride + (lane >> 2) + e2 * 8;
                    if (h >= H) continue;
                    float v = g * SP_ACC(mi, ni, e2 * 2 + e1);
                    if (perEntry) perEntry[(size_t)entry * H + h] = v;
                    else atomicAdd(&out[(size_t)token * H + h], v);
                }
        }
}
#undef SP_ACC

// inter[entry, f] = silu(gate_f . x[token]) * (up_f . x[token]); Work.tile: tile of 128 interleaved rows.
template <typename T>
__device__ __forceinline__ void sp_gate_up_body(const T* x, const int* tokens, const int* offsets, const int* work,
                                                const T* values, const unsigned* meta, T* inter, int F, int H) {
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    size_t R = 2 * (size_t)F;
    SpTile<T> t{values + w.expert * R * (H / 2), meta + w.expert * R * ((H + 31) / 32), 2 * F, H,
                w.tile * SP_ROWS, x, tokens, w.begin, w.count, w.m0};
    float acc[4][8][4];
    sp_mainloop(t, acc);
    int warp = threadIdx.x >> 5;
    sp_epi_swiglu<4, 8>(&acc[0][0][0], (warp >> 1) * 64, 16, (warp & 1) * 64, t, w, inter, F);
}

// out[token, h] += gate * (down_h . inter[entry]) (atomicAdd: each token gets one add per expert it chose), or
// perEntry[entry, h] = gate * (...) where perEntry is given (batch-invariant mode).
template <typename T>
__device__ __forceinline__ void sp_down_body(const T* inter, const int* tokens, const float* gates, const int* offsets,
                                             const int* work, const T* values, const unsigned* meta, float* out,
                                             float* perEntry, int H, int F) {
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    SpTile<T> t{values + w.expert * (size_t)H * (F / 2), meta + w.expert * (size_t)H * ((F + 31) / 32), H, F,
                w.tile * SP_ROWS, inter, nullptr, w.begin, w.count, w.m0};
    float acc[4][8][4];
    sp_mainloop(t, acc);
    int warp = threadIdx.x >> 5;
    sp_epi_combine<4, 8>(&acc[0][0][0], (warp >> 1) * 64, 16, (warp & 1) * 64, t, w, tokens, gates, out, perEntry, H);
}

// experts_NAME_gate_up_sp24 and experts_NAME_down_sp24 for element type T.
#define SPARSE24_KERNELS(T, NAME)                                                                               \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_gate_up_sp24(const T* __restrict__ x, const int* __restrict__ tokens,                       \
                                  const int* __restrict__ offsets, const int* __restrict__ work,                \
                                  const T* __restrict__ values, const unsigned* __restrict__ meta,              \
                                  T* __restrict__ inter, int F, int H) {                                        \
        sp_gate_up_body(x, tokens, offsets, work, values, meta, inter, F, H);                                    \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_down_sp24(const T* __restrict__ inter, const int* __restrict__ tokens,                      \
                               const float* __restrict__ gates, const int* __restrict__ offsets,                \
                               const int* __restrict__ work, const T* __restrict__ values,                      \
                               const unsigned* __restrict__ meta, float* __restrict__ out,                      \
                               float* __restrict__ perEntry, int H, int F) {                                    \
        sp_down_body(inter, tokens, gates, offsets, work, values, meta, out, perEntry, H, F);                    \
    }
SPARSE24_KERNELS(bf16, bf16)
SPARSE24_KERNELS(f16, f16)

#include "sparse24_sm90.cu"
#include "vnm_sm90.cu"
