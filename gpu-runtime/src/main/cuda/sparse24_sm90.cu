// Hopper (sm_90a) dual-sparse expert kernels: the 2:4 weights on wgmma.sp, whose ceiling on a Hopper is above
// mma.sp's and dense wgmma's (bench/NOTES.md); the mma.sp kernels of sparse24.cu stay for sm_80-89. Same tiles
// (256 weight rows x 128 tokens) and epilogues as those. CPU twin: CpuBackend.experts on the decompressed weights.
//
// Block: 2 warpgroups, each 128 weight rows (two m64 slabs) x all 128 tokens of the tile: m64n128k32 steps,
// sparse weights as A, gathered token rows as B, both from shared memory in the 128-byte swizzle (16-byte chunk
// c of row r at chunk c ^ (r % 8), 8-row groups 1024 bytes apart). A stage covers 128 k: weight rows hold 64
// kept values (128 bytes), token rows 128 values, stored as two 128-byte column blocks. Metadata reaches wgmma.sp
// through registers, in mma.sp's per-warp layout (selector 0), pre-composed per thread (sp_meta_words).
//
// The weight side of a stage (256 rows x 64 kept values + metadata, 36 KB) arrives as one bulk copy
// (cp.async.bulk, completing on an mbarrier) issued by one thread, instead of 3072 cp.async from every thread:
// that needs no tensor map (JCuda 12.6.0 cannot encode one) because the weights are stored pre-tiled, each
// (expert, 128-k stage, 256-row tile) block laid out exactly as the stage sits in shared memory
// (tile_sparse24_sm90 builds it from the Sparse24 layout once, at upload; sp24_tile). The gathered token rows stay
// on cp.async, each thread keeping its rows' addresses for the whole tile (SpTokenGather). What this layout
// gained and the variants tried against it: bench/NOTES.md.
//
// Stage layout (shared memory and the pre-tiled global block alike): for warpgroup half h = 0, 1 at h * 18432:
// values of rows 128h .. 128h+127 (128-byte rows, swizzled, 16 KB), then their metadata (2 KB);
// then at 36864 the token tile (two 128-byte column blocks of 128 rows).
// SP9_K, SP9_STAGES, SP9_B_BYTES, SP9_HALF_ROWS, SP9_HALF_BYTES, SP9_W_BYTES, SP9_STAGE_BYTES and
// SPARSE_SM90_SHARED_BYTES: constants.cuh.

// The metadata of a pre-tiled 128-row block (after its values) is stored as the wgmma.sp threads take it, so
// that each thread loads its four words (one per k32 step) of a slab with one 16-byte load: per group g of 16 rows
// (slab g / 4, warp g % 4), quad q (lane / 4) and lane parity p, words whose low halves come from row 16g + q and
// high halves from row 16g + q + 8, the first 16 bits of each row's word where p = 0, the second where p = 1
// (mma.sp's per-warp layout, selector 0).
__device__ __forceinline__ uint4 sp_meta_words(const unsigned char* block, int g) {
    int lane = threadIdx.x & 31;
    return *reinterpret_cast<const uint4*>(block + 128 * 128 + ((g * 8 + (lane >> 2)) * 2 + (lane & 1)) * 16);
}

// One weight row's part of a pre-tiled stage, in a block of 128 rows: its 64 kept values (8 chunks, swizzled by
// the row's place r in the block) and its share of the block's metadata (sp_meta_words). A row past the weight
// (`inside` false) or k past K becomes zero values with metadata 0x44444444 (positions 0 and 1).
__device__ __forceinline__ void tile_sparse_row(const uint16_t* values, const unsigned* meta, size_t row, bool inside,
                                                int K, int stage, unsigned char* block, int r) {
    const uint4* src = reinterpret_cast<const uint4*>(values + row * (K / 2));
    for (int c = 0; c < 8; c++) {
        int kc = stage * (SP9_K / 2) + c * 8;  // first kept value of the chunk
        uint4 v = make_uint4(0, 0, 0, 0);
        if (inside && kc < K / 2) v = src[kc / 8];
        *reinterpret_cast<uint4*>(block + swizzled(r, c)) = v;
    }
    uint16_t* halves = reinterpret_cast<uint16_t*>(block + 128 * 128);
    int g = r >> 4, q = r & 7, high = (r >> 3) & 1;
    for (int s = 0; s < 4; s++) {
        int word = stage * (SP9_K / 32) + s;
        unsigned m = inside && word < K / 32 ? meta[row * (K / 32) + word] : 0x44444444u;
        for (int p = 0; p < 2; p++) halves[(((g * 8 + q) * 2 + p) * 4 + s) * 2 + high] = p ? m >> 16 : m & 0xffffu;
    }
}

// The pre-tiled layout: [E][128-k stages][halves] blocks of 128 rows x 128 k (SP9_HALF_BYTES), halves = R / 128
// rounded up to even, so that a block of 128 or 256 rows finds each of its stages as one contiguous run.
__device__ __forceinline__ int sp24_halves(int R) { return 2 * ceil_div(R, 256); }
// Where weight tile `tile` of `halvesPerTile` halves of `expert` starts, and the bytes from one stage to the next.
__device__ __forceinline__ const unsigned char* sp24_tile(const unsigned char* tiled, int expert, int tile,
                                                          int halvesPerTile, int R, int K, size_t& stageStride) {
    stageStride = (size_t)sp24_halves(R) * SP9_HALF_BYTES;
    return tiled + (size_t)expert * ceil_div(K, SP9_K) * stageStride + (size_t)tile * halvesPerTile * SP9_HALF_BYTES;
}

// Pre-tiles one weight [E][R][K] (values [R][K/2] bf16 or fp16: bits are copied; meta [R][K/32]) into the layout
// above. Grid (stages, E * halves), 128 threads: one row each.
extern "C" __global__ void tile_sparse24_sm90(const uint16_t* __restrict__ values, const unsigned* __restrict__ meta,
                                              unsigned char* __restrict__ tiled, int R, int K, int halves) {
    int stage = blockIdx.x, stages = gridDim.x;
    int e = blockIdx.y / halves, half = blockIdx.y % halves;
    int r = threadIdx.x, row = half * SP9_HALF_ROWS + r;
    unsigned char* block = tiled + (((size_t)e * stages + stage) * halves + half) * SP9_HALF_BYTES;
    tile_sparse_row(values, meta, (size_t)e * R + row, row < R, K, stage, block, r);
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MOESCORE_WGMMA_SP 1

// smem_desc, swizzled, WGMMA_D64 / WGMMA_REGS64, the mbarrier and bulk-copy helpers: gemm_sm90.cu.

// d[64 weight rows x 128 tokens of this warpgroup] += A[64 x 32, 2:4] . B[128 x 32]^T
#define WGMMA_SP_M64N128K32_ASM(TYPE) \
    asm volatile( \
        "{\n" \
        "wgmma.mma_async.sp.sync.aligned.m64n128k32.f32." TYPE "." TYPE " " WGMMA_REGS64 ", %64, %65, %66, 0, 1, 1, 1, 0, 0;\n" \
        "}\n" \
        : WGMMA_D64(d, 0) \
        : "l"(descA), "l"(descB), "r"(meta))
template <typename T>
__device__ __forceinline__ void wgmma_sp_m64n128k32(float (&d)[64], uint64_t descA, uint64_t descB, unsigned meta) {
    if constexpr (is_bf16<T>) WGMMA_SP_M64N128K32_ASM("bf16");
    else WGMMA_SP_M64N128K32_ASM("f16");
}
#undef WGMMA_SP_M64N128K32_ASM

// The token part of a stage (128 rows x 16 chunks of 16 bytes, in two 128-byte column blocks) as each thread
// gathers it: rows r = tid / 16 + 16 i (i < 8) at chunk c = tid % 16, the same in every stage, so the routed
// rows are looked up once per tile and each stage costs a thread 8 cp.async from 8 kept pointers (looking them up
// and recomputing the addresses per stage made the gate+up kernel issue-bound: bench/NOTES.md).
template <typename T>
struct SpTokenGather {
    static constexpr int ROWS = SP_TOKENS * 16 / SP_THREADS;
    const T* src[ROWS];  // row i's chunk c at k = 0
    unsigned routed;     // bit i: row i is a routed entry of the tile
    int dst;             // byte offset of row 0's chunk in a stage (row i: + i * 16 rows)
    int k;               // the chunk's first k within a stage

    __device__ __forceinline__ explicit SpTokenGather(const SpTile<T>& t) {
        int r0 = threadIdx.x >> 4, c = threadIdx.x & 15;
        k = c * 8;
        dst = (c >> 3) * (SP_TOKENS * 128) + swizzled(r0, c & 7);  // rows 16 apart keep r0's swizzle
        routed = 0;
#pragma unroll
        for (int i = 0; i < ROWS; i++) {
            int tok = t.t0 + r0 + 16 * i;
            bool ok = tok < t.count;
            int row = ok ? (t.rows ? t.rows[t.begin + tok] : t.begin + tok) : 0;
            src[i] = t.x + (size_t)row * t.K + k;
            routed |= (unsigned)ok << i;
        }
    }

    __device__ __forceinline__ void load(int K, int k0, unsigned char* sB) const {
        bool inK = k0 + k < K;
#pragma unroll
        for (int i = 0; i < ROWS; i++)
            sp_cp_async16(sB + dst + i * 16 * 128, src[i] + (inK ? k0 : 0), inK && ((routed >> i) & 1));
    }
};

// acc[mb][64]: this warpgroup's slab mb (weight rows 128 * group + 64 * mb ..), mma-style per-warp layout.
// wTile: this block's weight tile, SP9_W_BYTES per stage, stages wStride bytes apart (sp24_tile). tokenTile:
// null to gather the token rows (t.rows) with cp.async; else their stages already in the shared-memory layout (the
// tiled intermediate the gate+up kernel wrote), one SP9_B_BYTES block each, copied with the weights.
template <typename T>
__device__ __forceinline__ void sp9_mainloop(const SpTile<T>& t, const unsigned char* wTile, size_t wStride,
                                             const unsigned char* tokenTile, float (&acc)[2][64]) {
    extern __shared__ __align__(16) unsigned char sp_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)sp_smem + 1023) & ~(uintptr_t)1023);
    uint64_t* weightsLanded = reinterpret_cast<uint64_t*>(base + SP9_STAGES * SP9_STAGE_BYTES);  // per slot
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    bool issuer = threadIdx.x == 0;
    SpTokenGather<T> gather(t);
#pragma unroll
    for (int mb = 0; mb < 2; mb++)
#pragma unroll
        for (int i = 0; i < 64; i++) acc[mb][i] = 0.f;
    if (issuer) {
        for (int s = 0; s < SP9_STAGES; s++) mbar_init(&weightsLanded[s], 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    int kTiles = (t.K + SP9_K - 1) / SP9_K;
    // Stage kt: thread 0 starts the weight copy, every thread its share of the token rows.
    auto load_stage = [&](int kt) {
        unsigned char* stage = base + (kt % SP9_STAGES) * SP9_STAGE_BYTES;
        if (issuer) {
            uint64_t* landed = &weightsLanded[kt % SP9_STAGES];
            mbar_expect_tx(landed, tokenTile ? SP9_STAGE_BYTES : SP9_W_BYTES);
            bulk_copy(stage, wTile + (size_t)kt * wStride, SP9_W_BYTES, landed);
            if (tokenTile)
                bulk_copy(stage + SP9_W_BYTES, tokenTile + (size_t)kt * SP9_B_BYTES, SP9_B_BYTES, landed);
        }
        if (!tokenTile) gather.load(t.K, kt * SP9_K, stage + SP9_W_BYTES);
    };
#pragma unroll
    for (int s = 0; s < SP9_STAGES - 1; s++) {
        if (s < kTiles) load_stage(s);
        asm volatile("cp.async.commit_group;\n" ::);
    }
    for (int kt = 0; kt < kTiles; kt++) {
        unsigned char* stage = base + (kt % SP9_STAGES) * SP9_STAGE_BYTES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(SP9_STAGES - 2));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();  // tokens of stage kt visible to the tensor cores; every wgmma of stage kt-1 has completed
        mbar_wait(&weightsLanded[kt % SP9_STAGES], (kt / SP9_STAGES) & 1);  // and the token stage, if copied
        const unsigned char* half = stage + group * SP9_HALF_BYTES;
        // metadata registers first (ordinary loads), then the wgmma batch
        uint4 m0 = sp_meta_words(half, warp), m1 = sp_meta_words(half, 4 + warp);
        unsigned meta[2][4] = {{m0.x, m0.y, m0.z, m0.w}, {m1.x, m1.y, m1.z, m1.w}};
        uint64_t descB0 = smem_desc(stage + SP9_W_BYTES);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int s = 0; s < 4; s++) {  // k32 steps: A +32 bytes each; B +64 bytes, the second block from s = 2
            uint64_t descB = descB0 + (uint64_t)(((s >> 1) * SP_TOKENS * 128 + (s & 1) * 64) >> 4);
#pragma unroll
            for (int mb = 0; mb < 2; mb++) {
                uint64_t descA = smem_desc(half + mb * 64 * 128) + 2 * s;
                wgmma_sp_m64n128k32<T>(acc[mb], descA, descB, meta[mb][s]);
            }
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        // The next loads are issued while this batch runs (wgmma is asynchronous): their slot held stage kt-1,
        // which every warpgroup finished before the barrier above.
        if (kt + SP9_STAGES - 1 < kTiles) load_stage(kt + SP9_STAGES - 1);
        asm volatile("cp.async.commit_group;\n" ::);
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// The gate+up epilogue (sp_epi_swiglu's math) writing the intermediate tiled for the down kernel: per work item
// and 128 columns one SP9_B_BYTES block laid out as the down kernel's token stage (two 128-byte column blocks of
// 128 rows, swizzled), so that stage arrives by bulk copy. Columns past F are never written: the caller zeroes
// the buffer when F % 128 != 0 (zero weights times stale bytes could be NaN).
// acc: the thread's MB m64 slabs, 64 rows apart from wr.
template <int MB, typename T>
__device__ __forceinline__ void sp9_epi_swiglu_tiled(const float (&acc)[MB][64], int wr, const SpTile<T>& t,
                                                     const Work& w, unsigned char* interTiled, int F) {
    int lane = threadIdx.x & 31;
    int fStages = (F + SP9_K - 1) / SP9_K;
    unsigned char* item = interTiled + (size_t)w.item * fStages * SP9_B_BYTES;
#pragma unroll
    for (int mb = 0; mb < MB; mb++) {
        int f = (t.r0 + wr + mb * 64) / 2 + (lane >> 2);
        if (f >= F) continue;
        unsigned char* column = item + (size_t)(f / SP9_K) * SP9_B_BYTES + ((f % SP9_K) >> 6) * (SP_TOKENS * 128) +
                                (f & 7) * 2;
        int chunk = (f & 63) >> 3;
#pragma unroll
        for (int ni = 0; ni < 16; ni++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int r = ni * 8 + 2 * (lane & 3) + e;  // local token of the tile
                if (w.m0 + r < w.count)
                    *reinterpret_cast<T*>(column + swizzled(r, chunk)) =
                        to_half<T>(silu(acc[mb][ni * 4 + e]) * acc[mb][ni * 4 + 2 + e]);
            }
    }
}
#endif

// Grid (work items, weight tiles) as the other expert kernels; `tiled`: the expert weight pre-tiled (sp24_tile);
// `inter`: the intermediate, tiled per work item (sp9_epi_swiglu_tiled).
template <typename T>
__device__ __forceinline__ void sp9_gate_up_body(const T* x, const int* tokens, const int* offsets, const int* work,
                                                 const unsigned char* tiled, unsigned char* inter, int F, int H) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    size_t wStride;
    const unsigned char* wTile = sp24_tile(tiled, w.expert, w.tile, 2, 2 * F, H, wStride);
    SpTile<T> t{nullptr, nullptr, 2 * F, H, w.tile * SP_ROWS, x, tokens, w.begin, w.count, w.m0};
    float acc[2][64];
    sp9_mainloop(t, wTile, wStride, nullptr, acc);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp9_epi_swiglu_tiled(acc, group * 128 + warp * 16, t, w, inter, F);
#endif
}

template <typename T>
__device__ __forceinline__ void sp9_down_body(const unsigned char* inter, const int* tokens, const float* gates,
                                              const int* offsets, const int* work, const unsigned char* tiled,
                                              float* out, float* perEntry, int H, int F) {
#ifdef MOESCORE_WGMMA_SP
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    int kTiles = (F + SP9_K - 1) / SP9_K;
    size_t wStride;
    const unsigned char* wTile = sp24_tile(tiled, w.expert, w.tile, 2, H, F, wStride);
    SpTile<T> t{nullptr, nullptr, H, F, w.tile * SP_ROWS, nullptr, nullptr, w.begin, w.count, w.m0};
    const unsigned char* tokenTile = inter + (size_t)w.item * kTiles * SP9_B_BYTES;
    float acc[2][64];
    sp9_mainloop(t, wTile, wStride, tokenTile, acc);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp_epi_combine<2, 16>(&acc[0][0], group * 128 + warp * 16, 64, 0, t, w, tokens, gates, out, perEntry, H);
#endif
}

// experts_NAME_gate_up_sp24_sm90 and experts_NAME_down_sp24_sm90 for element type T.
#define SPARSE24_SM90_KERNELS(T, NAME)                                                                          \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_gate_up_sp24_sm90(const T* __restrict__ x, const int* __restrict__ tokens,                  \
                                       const int* __restrict__ offsets, const int* __restrict__ work,           \
                                       const unsigned char* __restrict__ tiled, unsigned char* __restrict__ inter, \
                                       int F, int H) {                                                           \
        sp9_gate_up_body(x, tokens, offsets, work, tiled, inter, F, H);                                          \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)                                                  \
    experts_##NAME##_down_sp24_sm90(const unsigned char* __restrict__ inter, const int* __restrict__ tokens,      \
                                    const float* __restrict__ gates, const int* __restrict__ offsets,           \
                                    const int* __restrict__ work, const unsigned char* __restrict__ tiled,      \
                                    float* __restrict__ out, float* __restrict__ perEntry, int H, int F) {      \
        sp9_down_body<T>(inter, tokens, gates, offsets, work, tiled, out, perEntry, H, F);                       \
    }
SPARSE24_SM90_KERNELS(bf16, bf16)
SPARSE24_SM90_KERNELS(f16, f16)
