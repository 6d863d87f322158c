// Hopper (sm_90a) expert kernels for Samoyeds' vector-wise format, pattern 128:2:8 (75% sparse): per 128-wide
// slice of the input dimension, of each pair of output rows (2p, 2p+1) one row is kept, and it is 2:4 sparse
// there. Stored as the condensed 2:4 matrix [R/2, K] (row p, slice s = row 2p + keep[p][s]) and the keep bytes;
// io.moescore.sparse.VectorSparse packs it. CPU twin: CpuBackend.experts on VectorSparse.decompress.
//
// The kernels are sparse24_sm90.cu's wgmma.sp kernels on the condensed matrix (half the tensor-core work of
// 2:4 per output row) plus one idea from Samoyeds' kernel: a condensed row adds into a different output row from
// slice to slice, so each thread keeps two accumulator sets per row, `acc` (what wgmma adds into) and `other`,
// and swaps a row's two sets in registers where the next slice keeps the other row of its pair. One slice is one
// pipeline stage (128 k), and the loop waits for each stage's wgmma batch anyway, so the swap needs no extra
// wait. Two sets of 64 registers leave room for one m64 slab per warpgroup: a block is 128 condensed rows
// (256 output rows, the 2:4 kernel's tile) x 128 tokens, half the tensor-core work of the 2:4 block.
//
// Without the row choice (VECTOR false) the same loop is a second tile size for the 2:4 experts: 128 rows x 128
// tokens (experts_NAME_*_sp24_sm90_n128), one m64 slab per warpgroup, reading each 128-row half of the 2:4
// kernels' pre-tiled stages. The autotuner picks between it and the 256-row kernel per shape (how they compare:
// bench/NOTES.md).

//
// Stage layout (shared memory; the pre-tiled global block is its weight part): the token tile first (two
// 128-byte column blocks of 128 rows, as sparse24_sm90.cu), then the weights: values of 128 condensed rows
// (128-byte rows, swizzled, 16 KB), their metadata (sp_meta_words), their keep bytes [128]. Tokens come first
// so both operands start 1024-byte aligned, as the 128-byte swizzle needs.
// VN_ROWS, VN_STAGES, VN_W_BYTES, VN_STAGE_BYTES and VN_SHARED_BYTES: constants.cuh.

// Pre-tiles one condensed weight [E][R][K] (values [R][K/2], meta [R][K/32], keep [R][K/128]) into
// [E][tiles][stages] blocks of VN_W_BYTES (tile_sparse_row's 128-row block, then the keep bytes); rows past R
// keep row 2p of zeros. Grid (stages, E * tiles), 128 threads: one row each.
extern "C" __global__ void tile_vnm_sm90(const uint16_t* __restrict__ values, const unsigned* __restrict__ meta,
                                         const unsigned char* __restrict__ keep, unsigned char* __restrict__ tiled,
                                         int R, int K, int tiles) {
    int stage = blockIdx.x, stages = gridDim.x;
    int e = blockIdx.y / tiles, tile = blockIdx.y % tiles;
    int r = threadIdx.x, row = tile * VN_ROWS + r;
    unsigned char* block = tiled + ((size_t)blockIdx.y * stages + stage) * VN_W_BYTES;
    tile_sparse_row(values, meta, (size_t)e * R + row, row < R, K, stage, block, r);
    block[VN_ROWS * 128 + VN_ROWS * 16 + r] = row < R ? keep[((size_t)e * R + row) * stages + stage] : 0;
}

#ifdef MOESCORE_WGMMA_SP
// Per thread, the two condensed rows it holds accumulators for (mma layout: lane/4 and lane/4 + 8 of its warp's
// 16 rows) and, per row, which row of its pair `acc` holds (0: 2p, 1: 2p+1); `other` holds the other one.
struct VnAccumulators {
    float acc[64], other[64];
    int heldLo, heldHi;
};

// Where the next slice keeps the other row of a pair, the row's two sets trade places. acc[i] belongs to the
// thread's upper row when i % 4 >= 2. The swap is spelled in PTX, in place: written as C++ selects, the compiler
// renamed the accumulators next to the down kernel's last wgmma of a stage and ptxas had to insert a wait there
// (advisories C7517/C7519).
__device__ __forceinline__ void vn_select_rows(VnAccumulators& a, int keepLo, int keepHi) {
    unsigned swapLo = keepLo != a.heldLo, swapHi = keepHi != a.heldHi;
#pragma unroll
    for (int i = 0; i < 64; i++) {
        asm volatile("{\n .reg .pred p;\n .reg .f32 t;\n setp.ne.u32 p, %2, 0;\n mov.f32 t, %0;\n"
                     " @p mov.f32 %0, %1;\n @p mov.f32 %1, t;\n}\n"
                     : "+f"(a.acc[i]), "+f"(a.other[i]) : "r"((i & 2) ? swapHi : swapLo));
    }
    a.heldLo = keepLo;
    a.heldHi = keepHi;
}

// This warpgroup's m64 slab of the block's 128 (condensed) rows x 128 tokens, K streamed through VN_STAGES stages
// (sp9_mainloop's pipeline: the weight part of each stage, wBytes every wStride bytes from wTile, one bulk copy;
// the token part gathered with cp.async, or with tokenTile given, bulk-copied too). VECTOR: the stages carry keep
// bytes and the accumulators follow them; else a.other stays unused.
template <bool VECTOR, typename T>
__device__ __forceinline__ void vn_mainloop(const SpTile<T>& t, const unsigned char* wTile, size_t wStride,
                                            unsigned wBytes, const unsigned char* tokenTile, VnAccumulators& a) {
    extern __shared__ __align__(16) unsigned char sp_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)sp_smem + 1023) & ~(uintptr_t)1023);
    uint64_t* weightsLanded = reinterpret_cast<uint64_t*>(base + VN_STAGES * VN_STAGE_BYTES);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    int rowLo = group * 64 + warp * 16 + (lane >> 2);  // block-local condensed row
    bool issuer = threadIdx.x == 0;
    SpTokenGather<T> gather(t);
#pragma unroll
    for (int i = 0; i < 64; i++) a.acc[i] = a.other[i] = 0.f;  // other: dead code where !VECTOR
    a.heldLo = a.heldHi = 0;
    if (issuer) {
        for (int s = 0; s < VN_STAGES; s++) mbar_init(&weightsLanded[s], 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    int kTiles = (t.K + SP9_K - 1) / SP9_K;
    auto load_stage = [&](int kt) {
        unsigned char* stage = base + (kt % VN_STAGES) * VN_STAGE_BYTES;
        if (issuer) {
            uint64_t* landed = &weightsLanded[kt % VN_STAGES];
            mbar_expect_tx(landed, wBytes + (tokenTile ? SP9_B_BYTES : 0));
            bulk_copy(stage + SP9_B_BYTES, wTile + (size_t)kt * wStride, wBytes, landed);
            if (tokenTile) bulk_copy(stage, tokenTile + (size_t)kt * SP9_B_BYTES, SP9_B_BYTES, landed);
        }
        if (!tokenTile) gather.load(t.K, kt * SP9_K, stage);
    };
#pragma unroll
    for (int s = 0; s < VN_STAGES - 1; s++) {
        if (s < kTiles) load_stage(s);
        asm volatile("cp.async.commit_group;\n" ::);
    }
    for (int kt = 0; kt < kTiles; kt++) {
        unsigned char* stage = base + (kt % VN_STAGES) * VN_STAGE_BYTES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(VN_STAGES - 2));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();  // tokens of stage kt visible to the tensor cores; every wgmma of stage kt-1 has completed
        mbar_wait(&weightsLanded[kt % VN_STAGES], (kt / VN_STAGES) & 1);
        const unsigned char* w = stage + SP9_B_BYTES;
        const unsigned char* sKeep = w + VN_ROWS * 128 + VN_ROWS * 16;
        uint4 m = sp_meta_words(w, group * 4 + warp);
        unsigned meta[4] = {m.x, m.y, m.z, m.w};
        if (VECTOR) vn_select_rows(a, sKeep[rowLo], sKeep[rowLo + 8]);
        uint64_t descA0 = smem_desc(w + group * 64 * 128), descB0 = smem_desc(stage);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int s = 0; s < 4; s++) {  // k32 steps: A +32 bytes each; B +64 bytes, the second block from s = 2
            uint64_t descB = descB0 + (uint64_t)(((s >> 1) * SP_TOKENS * 128 + (s & 1) * 64) >> 4);
            wgmma_sp_m64n128k32<T>(a.acc, descA0 + 2 * s, descB, meta[s]);
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        if (kt + VN_STAGES - 1 < kTiles) load_stage(kt + VN_STAGES - 1);
        asm volatile("cp.async.commit_group;\n" ::);
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// The thread's value of output row 2p + which (which = 0, 1) for accumulator element i.
__device__ __forceinline__ float vn_output(const VnAccumulators& a, int i, int which) {
    int held = (i & 2) ? a.heldHi : a.heldLo;
    return held == which ? a.acc[i] : a.other[i];
}

// gate_up's condensed rows are interleaved in blocks of 8 (rows 16b.. = condensed gate rows 8b.., rows 16b+8.. =
// the condensed up rows of the same pairs), so the thread holding condensed gate row q holds up row q too: it
// computes f = 2q and 2q+1 and writes them as one pair into the intermediate tiled for the down kernel (the
// layout sp9_epi_swiglu_tiled writes).
template <typename T>
__device__ __forceinline__ void vn_epi_swiglu_tiled(const VnAccumulators& a, const Work& w,
                                                    unsigned char* interTiled, int F) {
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    int row = w.tile * VN_ROWS + group * 64 + warp * 16 + (lane >> 2);
    int f = 2 * ((row >> 4) * 8 + (lane >> 2));
    if (f >= F) return;
    int fStages = (F + SP9_K - 1) / SP9_K;
    unsigned char* column = interTiled + ((size_t)w.item * fStages + f / SP9_K) * SP9_B_BYTES +
                            ((f % SP9_K) >> 6) * (SP_TOKENS * 128) + (f & 7) * 2;
    int chunk = (f & 63) >> 3;
#pragma unroll
    for (int ni = 0; ni < 16; ni++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int r = ni * 8 + 2 * (lane & 3) + e;
            if (w.m0 + r >= w.count) continue;
            int gate = ni * 4 + e, up = gate + 2;
            float f0 = silu(vn_output(a, gate, 0)) * vn_output(a, up, 0);
            float f1 = silu(vn_output(a, gate, 1)) * vn_output(a, up, 1);
            *reinterpret_cast<unsigned*>(column + swizzled(r, chunk)) = pack_half2<T>(f0, f1);
        }
}

// out[token, h] += gate * value for h = 2p, 2p+1 (atomics: a token gets one add per expert it chose), or,
// batch-invariant, perEntry[entry, h] = gate * value (sp_epi_combine's contract).
__device__ __forceinline__ void vn_epi_combine(const VnAccumulators& a, const Work& w, const int* tokens,
                                               const float* gates, float* out, float* perEntry, int H) {
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    int rowLo = w.tile * VN_ROWS + group * 64 + warp * 16 + (lane >> 2);
#pragma unroll
    for (int ni = 0; ni < 16; ni++)
#pragma unroll
        for (int e1 = 0; e1 < 2; e1++) {
            int tok = w.m0 + ni * 8 + 2 * (lane & 3) + e1;
            if (tok >= w.count) continue;
            int entry = w.begin + tok;
            float g = gates[entry];
#pragma unroll
            for (int upper = 0; upper < 2; upper++) {
                int h = 2 * (rowLo + 8 * upper);
                if (h >= H) continue;
                int i = ni * 4 + 2 * upper + e1;
                float2 v = make_float2(g * vn_output(a, i, 0), g * vn_output(a, i, 1));
                if (perEntry) *reinterpret_cast<float2*>(&perEntry[(size_t)entry * H + h]) = v;
                else atomicAdd(reinterpret_cast<float2*>(&out[(size_t)tokens[entry] * H + h]), v);
            }
        }
}
#endif

// Grid (work items, tiles of 128 condensed rows); `tiled`: tile_vnm_sm90's blocks of the expert weight.
template <typename T>
__device__ __forceinline__ void vn_gate_up_body(const T* x, const int* tokens, const int* offsets, const int* work,
                                                const unsigned char* tiled, unsigned char* inter, int F, int H) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    int kTiles = (H + SP9_K - 1) / SP9_K;
    const unsigned char* wTile = tiled + ((size_t)w.expert * gridDim.y + w.tile) * kTiles * VN_W_BYTES;
    SpTile<T> t{nullptr, nullptr, F, H, w.tile * VN_ROWS, x, tokens, w.begin, w.count, w.m0};
    VnAccumulators a;
    vn_mainloop<true>(t, wTile, VN_W_BYTES, VN_W_BYTES, nullptr, a);
    vn_epi_swiglu_tiled<T>(a, w, inter, F);
#endif
}

template <typename T>
__device__ __forceinline__ void vn_down_body(const unsigned char* inter, const int* tokens, const float* gates,
                                             const int* offsets, const int* work, const unsigned char* tiled,
                                             float* out, float* perEntry, int H, int F) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    int kTiles = (F + SP9_K - 1) / SP9_K;
    const unsigned char* wTile = tiled + ((size_t)w.expert * gridDim.y + w.tile) * kTiles * VN_W_BYTES;
    SpTile<T> t{nullptr, nullptr, H / 2, F, w.tile * VN_ROWS, nullptr, nullptr, w.begin, w.count, w.m0};
    VnAccumulators a;
    vn_mainloop<true>(t, wTile, VN_W_BYTES, VN_W_BYTES, inter + (size_t)w.item * kTiles * SP9_B_BYTES, a);
    vn_epi_combine(a, w, tokens, gates, out, perEntry, H);
#endif
}

// The 2:4 experts in 128-row tiles (grid: work items x 128-row tiles), on the 2:4 kernels' pre-tiled weights
// (sp24_tile: one half per tile).
template <typename T>
__device__ __forceinline__ void sp24n128_gate_up_body(const T* x, const int* tokens, const int* offsets,
                                                      const int* work, const unsigned char* tiled,
                                                      unsigned char* inter, int F, int H) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    SpTile<T> t{nullptr, nullptr, 2 * F, H, w.tile * VN_ROWS, x, tokens, w.begin, w.count, w.m0};
    VnAccumulators a;
    size_t wStride;
    vn_mainloop<false>(t, sp24_tile(tiled, w.expert, w.tile, 1, 2 * F, H, wStride), wStride, SP9_HALF_BYTES, nullptr,
                       a);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp9_epi_swiglu_tiled<1>(reinterpret_cast<const float(&)[1][64]>(a.acc), group * 64 + warp * 16, t, w, inter, F);
#endif
}

template <typename T>
__device__ __forceinline__ void sp24n128_down_body(const unsigned char* inter, const int* tokens, const float* gates,
                                                   const int* offsets, const int* work, const unsigned char* tiled,
                                                   float* out, float* perEntry, int H, int F) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    int kTiles = (F + SP9_K - 1) / SP9_K;
    SpTile<T> t{nullptr, nullptr, H, F, w.tile * VN_ROWS, nullptr, nullptr, w.begin, w.count, w.m0};
    VnAccumulators a;
    size_t wStride;
    vn_mainloop<false>(t, sp24_tile(tiled, w.expert, w.tile, 1, H, F, wStride), wStride, SP9_HALF_BYTES,
                       inter + (size_t)w.item * kTiles * SP9_B_BYTES, a);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp_epi_combine<1, 16>(a.acc, group * 64 + warp * 16, 64, 0, t, w, tokens, gates, out, perEntry, H);
#endif
}

// experts_NAME_{gate_up,down}_vnm_sm90 and experts_NAME_{gate_up,down}_sp24_sm90_n128 for element type T.
#define VNM_SM90_KERNELS(T, NAME)                                                                               \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_gate_up_vnm_sm90(const T* __restrict__ x, const int* __restrict__ tokens,                   \
                                      const int* __restrict__ offsets, const int* __restrict__ work,            \
                                      const unsigned char* __restrict__ tiled, unsigned char* __restrict__ inter, \
                                      int F, int H) {                                                            \
        vn_gate_up_body(x, tokens, offsets, work, tiled, inter, F, H);                                           \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_down_vnm_sm90(const unsigned char* __restrict__ inter, const int* __restrict__ tokens,       \
                                   const float* __restrict__ gates, const int* __restrict__ offsets,            \
                                   const int* __restrict__ work, const unsigned char* __restrict__ tiled,       \
                                   float* __restrict__ out, float* __restrict__ perEntry, int H, int F) {       \
        vn_down_body<T>(inter, tokens, gates, offsets, work, tiled, out, perEntry, H, F);                        \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_gate_up_sp24_sm90_n128(const T* __restrict__ x, const int* __restrict__ tokens,             \
                                            const int* __restrict__ offsets, const int* __restrict__ work,      \
                                            const unsigned char* __restrict__ tiled,                            \
                                            unsigned char* __restrict__ inter, int F, int H) {                  \
        sp24n128_gate_up_body(x, tokens, offsets, work, tiled, inter, F, H);                                     \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_down_sp24_sm90_n128(const unsigned char* __restrict__ inter, const int* __restrict__ tokens, \
                                         const float* __restrict__ gates, const int* __restrict__ offsets,      \
                                         const int* __restrict__ work, const unsigned char* __restrict__ tiled, \
                                         float* __restrict__ out, float* __restrict__ perEntry, int H, int F) { \
        sp24n128_down_body<T>(inter, tokens, gates, offsets, work, tiled, out, perEntry, H, F);                  \
    }
VNM_SM90_KERNELS(bf16, bf16)
VNM_SM90_KERNELS(f16, f16)
