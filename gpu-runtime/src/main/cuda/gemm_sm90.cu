// Hopper (sm_90a) main loop for the dense GEMMs of gemm.cu: wgmma (warpgroup MMA, operands read straight from
// shared memory) instead of mma.sync, which cannot reach a Hopper's tensor-core peak (bench/NOTES.md).
// Tiles of 128 activation rows x BNT weight rows (256 like gemm.cu's, or 128: twice the blocks, for narrow
// outputs; the autotuner (KernelTuner) picks per shape), 256 threads = 2 warpgroups of 64 rows each; same
// TileArgs (gathered rows, wrapped weight columns), same epilogues. The mma.sync loop stays for sm_80-89 and
// for the PTX other GPUs compile. CPU twins: those of gemm.cu.
//
// Shared memory: 4 stages of 64-wide K slices, each row 128 bytes in the 128-byte swizzle wgmma reads (16-byte
// chunk c of row r lands at chunk c ^ (r % 8)), filled by cp.async from every thread (gathered rows rule out
// the copy engine's tile loads). cp.async writes through the generic proxy and wgmma reads through the async
// one, hence fence.proxy.async before the barrier that publishes a stage.
// S90_BK, S90_STAGES, S90_A_BYTES, GEMM_SM90_SHARED_BYTES(BNT) and, for the pre-tiled weights, S90_W_BLOCK_ROWS,
// S90_W_BLOCK_BYTES and GEMM_SM90_TILED_SHARED_BYTES(BNT): constants.cuh.
// Pre-tiled weights (tile_dense_sm90): [E][N / 128][K / 64] blocks of 128 rows x 64 k, each laid out as shared
// memory holds it (128-byte rows, swizzled); the kernels that read them keep their mbarriers after the stages.

// Registers per thread of the warp-specialized kernels' warpgroups after setmaxnreg (_sm90w): what the block's
// allocation at entry (65536 / GEMM_WS_THREADS, rounded down to 8) holds.
#define GEMM_WS_PRODUCER_REGS 56
#define GEMM_WS_CONSUMER_REGS 224
static_assert(GEMM_WS_PRODUCER_REGS * 128 + 2 * GEMM_WS_CONSUMER_REGS * 128 <=
                  65536 / GEMM_WS_THREADS / 8 * 8 * GEMM_WS_THREADS,
              "the warpgroups' registers after setmaxnreg fit the block's allocation at entry");

// Byte offset of 16-byte chunk `chunk` of row `row` in 128-byte rows under the 128-byte swizzle wgmma reads.
__device__ __forceinline__ int swizzled(int row, int chunk) { return row * 128 + ((chunk ^ (row & 7)) << 4); }

// Pre-tiles a weight [E][R][K] of 16-bit values (bf16 or fp16: bits are copied; K % 8 == 0) into [E][tiles][stages]
// blocks of S90_W_BLOCK_BYTES, rows past R and k past K zero. Grid (stages, E * tiles), 128 threads: one row each.
extern "C" __global__ void tile_dense_sm90(const uint16_t* __restrict__ src, unsigned char* __restrict__ tiled, int R,
                                           int K, int tiles) {
    int stage = blockIdx.x, stages = gridDim.x;
    int e = blockIdx.y / tiles, r = threadIdx.x, row = (blockIdx.y % tiles) * S90_W_BLOCK_ROWS + r;
    unsigned char* block = tiled + ((size_t)blockIdx.y * stages + stage) * S90_W_BLOCK_BYTES;
    const uint16_t* rowStart = src + ((size_t)e * R + row) * K;
    for (int c = 0; c < 8; c++) {
        int k = stage * S90_BK + c * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (row < R && k < K) v = *reinterpret_cast<const uint4*>(rowStart + k);
        *reinterpret_cast<uint4*>(block + swizzled(r, c)) = v;
    }
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MOESCORE_WGMMA 1

// Shared-memory matrix descriptor: K-major rows of 128 bytes, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t smem_desc(const void* p) {
    uint64_t addr = (unsigned)__cvta_generic_to_shared(p);
    return ((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

// wgmma's 64 accumulators of one m64n128 tile as asm operands: the "+f" constraints of d[o] .. d[o + 63], and
// the register list naming them (operands %0 .. %63).
#define WGMMA_D64(d, o) \
    "+f"(d[o + 0]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3]), "+f"(d[o + 4]), "+f"(d[o + 5]), \
    "+f"(d[o + 6]), "+f"(d[o + 7]), "+f"(d[o + 8]), "+f"(d[o + 9]), "+f"(d[o + 10]), "+f"(d[o + 11]), \
    "+f"(d[o + 12]), "+f"(d[o + 13]), "+f"(d[o + 14]), "+f"(d[o + 15]), "+f"(d[o + 16]), "+f"(d[o + 17]), \
    "+f"(d[o + 18]), "+f"(d[o + 19]), "+f"(d[o + 20]), "+f"(d[o + 21]), "+f"(d[o + 22]), "+f"(d[o + 23]), \
    "+f"(d[o + 24]), "+f"(d[o + 25]), "+f"(d[o + 26]), "+f"(d[o + 27]), "+f"(d[o + 28]), "+f"(d[o + 29]), \
    "+f"(d[o + 30]), "+f"(d[o + 31]), "+f"(d[o + 32]), "+f"(d[o + 33]), "+f"(d[o + 34]), "+f"(d[o + 35]), \
    "+f"(d[o + 36]), "+f"(d[o + 37]), "+f"(d[o + 38]), "+f"(d[o + 39]), "+f"(d[o + 40]), "+f"(d[o + 41]), \
    "+f"(d[o + 42]), "+f"(d[o + 43]), "+f"(d[o + 44]), "+f"(d[o + 45]), "+f"(d[o + 46]), "+f"(d[o + 47]), \
    "+f"(d[o + 48]), "+f"(d[o + 49]), "+f"(d[o + 50]), "+f"(d[o + 51]), "+f"(d[o + 52]), "+f"(d[o + 53]), \
    "+f"(d[o + 54]), "+f"(d[o + 55]), "+f"(d[o + 56]), "+f"(d[o + 57]), "+f"(d[o + 58]), "+f"(d[o + 59]), \
    "+f"(d[o + 60]), "+f"(d[o + 61]), "+f"(d[o + 62]), "+f"(d[o + 63])
#define WGMMA_REGS64 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15," \
    " %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31," \
    " %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47," \
    " %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d[64 x N of this warpgroup] += A[64 x 16] . W[N x 16]^T; thread t holds rows 16*(warp%4) + lane/4 (+8)
// and columns 8j + 2*(lane%4) (+1) in d[4j..4j+3], as mma.sync's m16n8 accumulators.
#define WGMMA_M64N256K16_ASM(TYPE) \
    asm volatile( \
        "{\n" \
        "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, 1, 1, 1, 0, 0;\n" \
        "}\n" \
        : WGMMA_D64(d, 0), WGMMA_D64(d, 64) \
        : "l"(descA), "l"(descW))
template <typename T>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t descA, uint64_t descW) {
    if constexpr (is_bf16<T>) WGMMA_M64N256K16_ASM("bf16");
    else WGMMA_M64N256K16_ASM("f16");
}
#undef WGMMA_M64N256K16_ASM
#define WGMMA_M64N128K16_ASM(TYPE) \
    asm volatile( \
        "{\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " WGMMA_REGS64 ", %64, %65, 1, 1, 1, 0, 0;\n" \
        "}\n" \
        : WGMMA_D64(d, 0) \
        : "l"(descA), "l"(descW))
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t descA, uint64_t descW) {
    if constexpr (is_bf16<T>) WGMMA_M64N128K16_ASM("bf16");
    else WGMMA_M64N128K16_ASM("f16");
}
#undef WGMMA_M64N128K16_ASM
template <int BNT, typename T>
__device__ __forceinline__ void wgmma_tile(float (&d)[BNT / 2], uint64_t descA, uint64_t descW) {
    if constexpr (BNT == 256) wgmma_m64n256k16<T>(d, descA, descW);
    else wgmma_m64n128k16<T>(d, descA, descW);
}


// mbarriers and the copy engine's plain bulk copy (cp.async.bulk: contiguous bytes, no tensor map), which the
// pre-tiled weight loads use: one thread posts the byte count and starts the copy, everyone waits on the phase.
__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
                 : "memory");
}
// Returns once the barrier's phase of this parity (0, 1, 0, ... for its 1st, 2nd, 3rd use) completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, unsigned parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n"
        "}\n" ::"r"(smem_u32(bar)),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
// Whether the barrier's phase of this parity completed, without waiting.
__device__ __forceinline__ bool mbar_test(uint64_t* bar, unsigned parity) {
    unsigned done;
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(smem_u32(bar)), "r"(parity)
        : "memory");
    return done != 0;
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                     smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(smem_u32(bar))
                 : "memory");
}

// The activation rows of a stage (gathered through t.aRows where given), 128 rows x 8 chunks, copied by NT threads
// (tid 0 .. NT - 1): every thread of the block, or the warp-specialized kernels' producer warpgroup.
template <int NT = GEMM_THREADS, typename T>
__device__ __forceinline__ void load_rows_sm90(const TileArgs<T>& t, int k0, unsigned char* sA,
                                               int tid = threadIdx.x) {
#pragma unroll
    for (int i = 0; i < BM * 8 / NT; i++) {
        int chunk = tid + i * NT;
        int r = chunk >> 3, c = chunk & 7;
        int m = t.m0 + r, k = k0 + c * 8;
        bool valid = m < t.rowCount && k < t.K;
        int row = valid ? (t.aRows ? t.aRows[t.rowBegin + m] : t.rowBegin + m) : 0;
        cp_async16(sA + swizzled(r, c), t.A + (size_t)row * t.K + (valid ? k : 0), valid);
    }
}

template <int BNT, typename T>
__device__ __forceinline__ void load_stage_sm90(const TileArgs<T>& t, int k0, unsigned char* sA, unsigned char* sW) {
    load_rows_sm90(t, k0, sA);
#pragma unroll
    for (int i = 0; i < BNT * 8 / GEMM_THREADS; i++) {
        int chunk = threadIdx.x + i * GEMM_THREADS;
        int r = chunk >> 3, c = chunk & 7;
        int n = t.n0 + r, k = k0 + c * 8;
        bool valid = n < t.N && k < t.K;
        int kw = k < t.Kw ? k : k % t.Kw;
        cp_async16(sW + swizzled(r, c), t.W + (size_t)(valid ? n : 0) * t.Kw + (valid ? kw : 0), valid);
    }
}

template <int BNT, typename T>
__device__ __forceinline__ void gemm_mainloop_sm90(const TileArgs<T>& t, float (&acc)[BNT / 2]) {
    extern __shared__ __align__(16) unsigned char gemm_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)gemm_smem + 1023) & ~(uintptr_t)1023);
    unsigned char* sA = base;
    unsigned char* sW = base + S90_STAGES * S90_A_BYTES;
    constexpr int W_BYTES = BNT * 128;
    int group = threadIdx.x >> 7;  // warpgroup: rows 64 * group ..
#pragma unroll
    for (int i = 0; i < BNT / 2; i++) acc[i] = 0.f;
    int kTiles = (t.K + S90_BK - 1) / S90_BK;
    // Loads run S90_STAGES - 2 slices ahead and one wgmma batch stays in flight while the next is issued: the
    // slot refilled at step kt held slice kt - 2, whose wgmma every warpgroup has waited for (wait_group 1).
#pragma unroll
    for (int s = 0; s < S90_STAGES - 2; s++) {
        if (s < kTiles) load_stage_sm90<BNT>(t, s * S90_BK, sA + s * S90_A_BYTES, sW + s * W_BYTES);
        cp_async_commit();
    }
    for (int kt = 0; kt < kTiles; kt++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(S90_STAGES - 3));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();  // slice kt visible to the tensor cores; the wgmma of slice kt - 2 has completed
        int pre = kt + S90_STAGES - 2;
        if (pre < kTiles) {
            int ps = pre % S90_STAGES;
            load_stage_sm90<BNT>(t, pre * S90_BK, sA + ps * S90_A_BYTES, sW + ps * W_BYTES);
        }
        cp_async_commit();
        const unsigned char* a = sA + (kt % S90_STAGES) * S90_A_BYTES + group * 64 * 128;
        const unsigned char* w = sW + (kt % S90_STAGES) * W_BYTES;
        uint64_t descA = smem_desc(a), descW = smem_desc(w);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < S90_BK / 16; kk++)  // 16 values along K = 32 bytes = 2 in the descriptor's address
            wgmma_tile<BNT, T>(acc, descA + 2 * kk, descW + 2 * kk);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// The shared memory of the loops over pre-tiled weights (GEMM_SM90_TILED_SHARED_BYTES, GEMM_SM90_PAIRED_SHARED_BYTES):
// from the window rounded up to the swizzle's 1024 bytes, STAGES activation stages, STAGES weight stages of BNT rows,
// then the mbarriers.
template <int BNT, int STAGES = S90_STAGES> struct TiledSmem {
    static constexpr int W_BYTES = BNT * 128;
    unsigned char* a;
    unsigned char* w;
    uint64_t* bars;
    __device__ __forceinline__ TiledSmem() {
        extern __shared__ __align__(16) unsigned char gemm_smem[];
        a = (unsigned char*)(((uintptr_t)gemm_smem + 1023) & ~(uintptr_t)1023);
        w = a + STAGES * S90_A_BYTES;
        bars = reinterpret_cast<uint64_t*>(w + STAGES * W_BYTES);
    }
};

// The same loop over pre-tiled expert weights (tile_dense_sm90): each stage's BNT weight rows arrive as BNT / 128
// bulk copies of 16 KB, started by thread 0 and awaited on the slot's mbarrier, so the threads issue only the
// gathered activation rows (2048 cp.async per stage where there were 6144). One part each (bf16 or fp16 precision).
// aTiled: null to gather the activation rows with cp.async; else this tile's stages already laid out as shared
// memory holds them (the tiled intermediate of epi_swiglu_tiled), one S90_A_BYTES block each, bulk-copied too.
// STAGES slots (S90_STAGES; S90_PAIRED_STAGES for the paired kernels): loads run STAGES - 2 slices ahead.
template <int BNT, int STAGES, typename T>
__device__ __forceinline__ void gemm_mainloop_sm90_tiled(const TileArgs<T>& t, const unsigned char* wTiled,
                                                         const unsigned char* aTiled, float (&acc)[BNT / 2]) {
    TiledSmem<BNT, STAGES> smem;
    unsigned char* sA = smem.a;
    unsigned char* sW = smem.w;
    constexpr int W_BYTES = TiledSmem<BNT, STAGES>::W_BYTES;
    uint64_t* weightsLanded = smem.bars;  // per slot
    int group = threadIdx.x >> 7;
    bool issuer = threadIdx.x == 0;
#pragma unroll
    for (int i = 0; i < BNT / 2; i++) acc[i] = 0.f;
    if (issuer) {
        for (int s = 0; s < STAGES; s++) mbar_init(&weightsLanded[s], 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    int kTiles = (t.K + S90_BK - 1) / S90_BK;
    int firstBlock = t.n0 / 128, blocks = min(BNT / 128, (t.N + 127) / 128 - firstBlock);
    auto load_stage = [&](int kt) {
        int slot = kt % STAGES;
        unsigned char* a = sA + slot * S90_A_BYTES;
        if (issuer) {  // rows past N (a partial last tile) keep stale bytes: their columns are never stored
            mbar_expect_tx(&weightsLanded[slot], blocks * S90_W_BLOCK_BYTES + (aTiled ? S90_A_BYTES : 0));
            for (int j = 0; j < blocks; j++)
                bulk_copy(sW + slot * W_BYTES + j * S90_W_BLOCK_BYTES,
                          wTiled + ((size_t)(firstBlock + j) * kTiles + kt) * S90_W_BLOCK_BYTES, S90_W_BLOCK_BYTES,
                          &weightsLanded[slot]);
            if (aTiled) bulk_copy(a, aTiled + (size_t)kt * S90_A_BYTES, S90_A_BYTES, &weightsLanded[slot]);
        }
        if (!aTiled) load_rows_sm90(t, kt * S90_BK, a);
    };
#pragma unroll
    for (int s = 0; s < STAGES - 2; s++) {
        if (s < kTiles) load_stage(s);
        cp_async_commit();
    }
    for (int kt = 0; kt < kTiles; kt++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 3));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();  // slice kt's activations visible to the tensor cores; the wgmma of slice kt - 2 completed
        if (kt + STAGES - 2 < kTiles) load_stage(kt + STAGES - 2);
        cp_async_commit();
        mbar_wait(&weightsLanded[kt % STAGES], (kt / STAGES) & 1);
        const unsigned char* a = sA + (kt % STAGES) * S90_A_BYTES + group * 64 * 128;
        const unsigned char* w = sW + (kt % STAGES) * W_BYTES;
        uint64_t descA = smem_desc(a), descW = smem_desc(w);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < S90_BK / 16; kk++) wgmma_tile<BNT, T>(acc, descA + 2 * kk, descW + 2 * kk);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    asm volatile("cp.async.wait_group 0;\n" ::);
}

// A producer thread's publication of its cp.async copies of a slot (here and attention_sm90.cu): its own copies
// landed (all but the newest PENDING groups), the async proxy fenced (cp.async writes through the generic proxy,
// wgmma reads through the async one), then one of the slot's "full" arrivals.
template <int PENDING> __device__ __forceinline__ void publish_copies(uint64_t* full) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    mbar_arrive(full);
}

// The loop of gemm_mainloop_sm90_tiled, warp-specialized (_sm90w, GEMM_WS_THREADS = 3 warpgroups), so no
// block-wide barrier stands in the loop and copies run up to S90_STAGES - 1 slices ahead (2 above):
// - warpgroup 0, the producer (registers lowered to GEMM_WS_PRODUCER_REGS), fills the slots in order. For slice kt
//   it waits for the slot's "empty" barrier (the consumers' products that read its previous slice completed);
//   thread 0 posts the slot's byte count on its "full" barrier and starts the weight blocks' (and a tiled A's) bulk
//   copies; the 128 threads gather the activation rows with cp.async and publish them one slice late (publish_copies),
//   or before blocking on a slot still in use, so a landed slice never waits on the consumers. "full" counts 128
//   publications + thread 0's byte count (1 where A is tiled: bulk copies only).
// - warpgroups 1 and 2, the consumers (GEMM_WS_CONSUMER_REGS), 64 rows each: wait for a slice's "full" barrier,
//   issue its wgmma, and once the previous slice's products completed (wait_group 1) release its slot (lane 0 of
//   each consumer warp: 8 arrivals).
// The consumers then call store(acc), acc holding rows 64 * (warpgroup - 1) .. of the tile (accumulators declared
// in the consumers' branch only, so no copy of them is kept live across the producer's).
template <int BNT, typename T, typename Store>
__device__ __forceinline__ void gemm_sm90_ws(const TileArgs<T>& t, const unsigned char* wTiled,
                                             const unsigned char* aTiled, Store store) {
    TiledSmem<BNT> smem;
    unsigned char* sA = smem.a;
    unsigned char* sW = smem.w;
    constexpr int W_BYTES = TiledSmem<BNT>::W_BYTES;
    uint64_t* full = smem.bars;  // per slot
    uint64_t* empty = full + S90_STAGES;
    int kTiles = (t.K + S90_BK - 1) / S90_BK;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S90_STAGES; s++) {
            mbar_init(&full[s], aTiled ? 1 : 129);
            mbar_init(&empty[s], 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (threadIdx.x < 128) {  // ---- producer ----
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(GEMM_WS_PRODUCER_REGS));
        int pt = threadIdx.x;
        if (aTiled && pt >= 32) return;  // bulk copies only: thread 0 issues them, its warp alone loops
        int firstBlock = t.n0 / 128, blocks = min(BNT / 128, (t.N + 127) / 128 - firstBlock);
        uint64_t* pending = nullptr;  // the slot this thread copied rows into last, not yet published
        for (int kt = 0; kt < kTiles; kt++) {
            int slot = kt % S90_STAGES;
            if (kt >= S90_STAGES) {
                unsigned parity = ((kt / S90_STAGES) - 1) & 1;
                if (pending != nullptr && !mbar_test(&empty[slot], parity)) {
                    publish_copies<0>(pending);
                    pending = nullptr;
                }
                mbar_wait(&empty[slot], parity);
            }
            unsigned char* a = sA + slot * S90_A_BYTES;
            if (pt == 0) {  // rows past N (a partial last tile) keep stale bytes: their columns are never stored
                mbar_expect_tx(&full[slot], blocks * S90_W_BLOCK_BYTES + (aTiled ? S90_A_BYTES : 0));
                for (int j = 0; j < blocks; j++)
                    bulk_copy(sW + slot * W_BYTES + j * S90_W_BLOCK_BYTES,
                              wTiled + ((size_t)(firstBlock + j) * kTiles + kt) * S90_W_BLOCK_BYTES,
                              S90_W_BLOCK_BYTES, &full[slot]);
                if (aTiled) bulk_copy(a, aTiled + (size_t)kt * S90_A_BYTES, S90_A_BYTES, &full[slot]);
            }
            if (!aTiled) {
                load_rows_sm90<128>(t, kt * S90_BK, a, pt);
                cp_async_commit();
                if (pending != nullptr) publish_copies<1>(pending);
                pending = &full[slot];
            }
        }
        if (pending != nullptr) publish_copies<0>(pending);
        return;
    }
    // ---- consumers ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(GEMM_WS_CONSUMER_REGS));
    int group = (threadIdx.x >> 7) - 1, lane = threadIdx.x & 31;
    float acc[BNT / 2];
#pragma unroll
    for (int i = 0; i < BNT / 2; i++) acc[i] = 0.f;
    // the zeros written here, before the loop: left free, the compiler moves them between the first slice's wgmma,
    // and ptxas then serializes every wgmma of the loop (C7515)
#pragma unroll
    for (int i = 0; i < BNT / 2; i++) asm volatile("" : "+f"(acc[i])::"memory");
    for (int kt = 0; kt < kTiles; kt++) {
        int slot = kt % S90_STAGES;
        mbar_wait(&full[slot], (kt / S90_STAGES) & 1);
        uint64_t descA = smem_desc(sA + slot * S90_A_BYTES + group * 64 * 128);
        uint64_t descW = smem_desc(sW + slot * W_BYTES);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int kk = 0; kk < S90_BK / 16; kk++) wgmma_tile<BNT, T>(acc, descA + 2 * kk, descW + 2 * kk);
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        if (kt > 0 && lane == 0) mbar_arrive(&empty[(kt - 1) % S90_STAGES]);
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    store(acc);
}

// A pre-tiled kernel's main loop, then its epilogue store(acc, wm), wm the first of the warp's 16 rows in the tile:
// the _sm90t loop (every thread copies and multiplies; warp w holds rows 64 * (w / 4) + 16 * (w % 4)) or, WS, the
// warp-specialized one (the consumers store: rows 64 * (warpgroup - 1) + 16 * (warp % 4)).
template <int BNT, bool WS, int STAGES, typename T, typename Store>
__device__ __forceinline__ void tiled_gemm(const TileArgs<T>& t, const unsigned char* wTiled,
                                           const unsigned char* aTiled, Store store) {
    if constexpr (WS) {
        static_assert(STAGES == S90_STAGES, "the warp-specialized loop keeps S90_STAGES slots");
        gemm_sm90_ws<BNT>(t, wTiled, aTiled, [&](const float* acc) {
            store(acc, ((threadIdx.x >> 7) - 1) * 64 + ((threadIdx.x >> 5) & 3) * 16);
        });
    } else {
        float acc[BNT / 2];
        gemm_mainloop_sm90_tiled<BNT, STAGES>(t, wTiled, aTiled, acc);
        int warp = threadIdx.x >> 5;
        store(acc, (warp >> 2) * 64 + (warp & 3) * 16);
    }
}
#endif

// The sm_90a launches: the kernels of gemm.cu with the wgmma main loop; acc viewed as [1][BNT/8][4] per warp,
// the warp's 16 rows at 64 * warpgroup + 16 * (warp % 4).
template <int BNT, typename T>
__device__ __forceinline__ void linear_sm90(const T* A, const T* W, const float* bias, float* out, int M, int N,
                                            int K, int Kw) {
#ifdef MOESCORE_WGMMA
    TileArgs<T> t{A, nullptr, 0, M, W, N, K, Kw, (int)blockIdx.x * BM, (int)blockIdx.y * BNT};
    float acc[BNT / 2];
    gemm_mainloop_sm90<BNT>(t, acc);
    int warp = threadIdx.x >> 5;
    epi_store<1, BNT / 8>(acc, (warp >> 2) * 64 + (warp & 3) * 16, 0, t, bias, out, M, N);
#endif
}

template <int BNT, typename T>
__device__ __forceinline__ void gate_up_sm90(const T* x, const int* tokens, const int* offsets, const int* work,
                                             const T* wGateUp, T* inter, int F, int H, int aParts, int wParts) {
#ifdef MOESCORE_WGMMA
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    const T* W = wGateUp + (size_t)w.expert * 2 * F * H * wParts;
    TileArgs<T> t{x, tokens, w.begin, w.count, W, 2 * F, H * aParts, H * wParts, w.m0, w.tile * BNT};
    float acc[BNT / 2];
    gemm_mainloop_sm90<BNT>(t, acc);
    int warp = threadIdx.x >> 5;
    epi_swiglu<1, BNT / 8>(acc, (warp >> 2) * 64 + (warp & 3) * 16, 0, t, w, inter, F, aParts);
#endif
}

template <int BNT, typename T>
__device__ __forceinline__ void down_sm90(const T* inter, const int* tokens, const float* gates, const int* offsets,
                                          const int* work, const T* wDown, float* out, float* perEntry, int H, int F,
                                          int aParts, int wParts) {
#ifdef MOESCORE_WGMMA
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    const T* W = wDown + (size_t)w.expert * H * F * wParts;
    TileArgs<T> t{inter, nullptr, w.begin, w.count, W, H, F * aParts, F * wParts, w.m0, w.tile * BNT};
    float acc[BNT / 2];
    gemm_mainloop_sm90<BNT>(t, acc);
    int warp = threadIdx.x >> 5;
    epi_combine<1, BNT / 8>(acc, (warp >> 2) * 64 + (warp & 3) * 16, 0, t, w, tokens, gates, out, perEntry, H);
#endif
}

#define GEMM_SM90_KERNELS(T, NAME, SUFFIX, BNT)                                                                 \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    linear_##NAME##_sm90##SUFFIX(const T* __restrict__ A, const T* __restrict__ W,                               \
                             const float* __restrict__ bias, float* __restrict__ out, int M, int N, int K, int Kw) { \
        linear_sm90<BNT>(A, W, bias, out, M, N, K, Kw);                                                          \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    experts_##NAME##_gate_up_sm90##SUFFIX(const T* __restrict__ x, const int* __restrict__ tokens,               \
                                 const int* __restrict__ offsets, const int* __restrict__ work,                 \
                                 const T* __restrict__ wGateUp, T* __restrict__ inter, int F, int H,            \
                                 int aParts, int wParts) {                                                      \
        gate_up_sm90<BNT>(x, tokens, offsets, work, wGateUp, inter, F, H, aParts, wParts);                       \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                \
    experts_##NAME##_down_sm90##SUFFIX(const T* __restrict__ inter, const int* __restrict__ tokens,              \
                              const float* __restrict__ gates, const int* __restrict__ offsets,                 \
                              const int* __restrict__ work, const T* __restrict__ wDown,                        \
                              float* __restrict__ out, float* __restrict__ perEntry, int H, int F, int aParts,   \
                              int wParts) {                                                                      \
        down_sm90<BNT>(inter, tokens, gates, offsets, work, wDown, out, perEntry, H, F, aParts, wParts);          \
    }
GEMM_SM90_KERNELS(bf16, bf16, , BN)
GEMM_SM90_KERNELS(bf16, bf16, _n128, BN_N128)
GEMM_SM90_KERNELS(f16, f16, , BN)
GEMM_SM90_KERNELS(f16, f16, _n128, BN_N128)

// Expert launches over pre-tiled weights (the plain ones' arguments; aParts and wParts are 1, and the intermediate
// is tiled per work item: [items][F / 64 stages][128 rows x 128 bytes, swizzled], the down kernel's A stages).

// epi_swiglu's math, writing that tiled intermediate. Columns past F are never written: the caller zeroes the
// buffer when F % 64 != 0 (zero weights times stale bytes could be NaN).
template <int NI, typename T>
__device__ __forceinline__ void epi_swiglu_tiled(const float* acc, int wm, const TileArgs<T>& t, const Work& w,
                                                 unsigned char* interTiled, int F) {
#ifdef MOESCORE_WGMMA
    int lane = threadIdx.x & 31;
    int fStages = (F + S90_BK - 1) / S90_BK;
    unsigned char* item = interTiled + (size_t)w.item * fStages * S90_A_BYTES;
#pragma unroll
    for (int ni = 0; ni < NI; ni += 2)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {  // the thread's two adjacent columns f, f + 1 of one row: one 4-byte store
            int r = wm + (lane >> 2) + (e >> 1) * 8;  // local row of the tile
            int f = (t.n0 + ni * 8) / 2 + 2 * (lane & 3);  // even, so f + 1 is in the same 16-byte chunk
            if (w.m0 + r < w.count && f < F) {
                float v0 = silu(acc[ni * 4 + e]) * acc[(ni + 1) * 4 + e];
                float v1 = silu(acc[ni * 4 + e + 1]) * acc[(ni + 1) * 4 + e + 1];
                unsigned char* at =
                    item + (size_t)(f / S90_BK) * S90_A_BYTES + swizzled(r, (f & 63) >> 3) + (f & 7) * 2;
                if (f + 1 < F) *reinterpret_cast<unsigned*>(at) = pack_half2<T>(v0, v1);
                else *reinterpret_cast<T*>(at) = to_half<T>(v0);
            }
        }
#endif
}
template <int BNT, bool WS, int STAGES, typename T>
__device__ __forceinline__ void gate_up_sm90_tiled(const T* x, const int* tokens, const int* offsets,
                                                   const int* work, const unsigned char* wTiled,
                                                   unsigned char* interTiled, int F, int H) {
#ifdef MOESCORE_WGMMA
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    size_t expertBytes = (size_t)((2 * F + 127) / 128) * ((H + S90_BK - 1) / S90_BK) * S90_W_BLOCK_BYTES;
    TileArgs<T> t{x, tokens, w.begin, w.count, nullptr, 2 * F, H, H, w.m0, w.tile * BNT};
    tiled_gemm<BNT, WS, STAGES>(t, wTiled + w.expert * expertBytes, nullptr, [&](const float* acc, int wm) {
        epi_swiglu_tiled<BNT / 8>(acc, wm, t, w, interTiled, F);
    });
#endif
}

template <int BNT, bool WS, int STAGES, typename T>
__device__ __forceinline__ void down_sm90_tiled(const unsigned char* interTiled, const int* tokens, const float* gates,
                                                const int* offsets, const int* work, const unsigned char* wTiled,
                                                float* out, float* perEntry, int H, int F) {
#ifdef MOESCORE_WGMMA
    Work w = work_item(work, offsets);
    if (w.expert < 0) return;  // past the layer's items (route_work)
    size_t expertBytes = (size_t)((H + 127) / 128) * ((F + S90_BK - 1) / S90_BK) * S90_W_BLOCK_BYTES;
    TileArgs<T> t{nullptr, nullptr, w.begin, w.count, nullptr, H, F, F, w.m0, w.tile * BNT};
    const unsigned char* aTiled = interTiled + (size_t)w.item * ((F + S90_BK - 1) / S90_BK) * S90_A_BYTES;
    tiled_gemm<BNT, WS, STAGES>(t, wTiled + w.expert * expertBytes, aTiled, [&](const float* acc, int wm) {
        epi_combine<1, BNT / 8>(acc, wm, 0, t, w, tokens, gates, out, perEntry, H);
    });
#endif
}

template <int BNT, bool WS, int STAGES, typename T>
__device__ __forceinline__ void linear_sm90_tiled(const T* A, const unsigned char* wTiled, const float* bias,
                                                  float* out, int M, int N, int K) {
#ifdef MOESCORE_WGMMA
    TileArgs<T> t{A, nullptr, 0, M, nullptr, N, K, K, (int)blockIdx.x * BM, (int)blockIdx.y * BNT};
    tiled_gemm<BNT, WS, STAGES>(t, wTiled, nullptr, [&](const float* acc, int wm) {
        epi_store<1, BNT / 8>(acc, wm, 0, t, bias, out, M, N);
    });
#endif
}

// lm_head with the log-softmax folded into the epilogue (CudaLogProbs' fused path): a tile's logits (times scale, 1 /
// Granite's logits_scaling else 1) leave the registers only for the top-k rows. For each of its rows the tile writes
// (max, sum of exp(logit - max)) over its columns to partial[row * gridDim.y + blockIdx.y], the row's target logit to
// targetLogit[row] where the target is one of its columns, and a top row's logits (topSlot[row] >= 0) to
// top[slot * N + column]; logsoftmax_combine (lm_head.cu) folds a row's partials in tile order. The warp's thread
// holds rows wm + lane / 4 (+ 8), columns 8 ni + 2 (lane % 4) (+ 1): a quad's 4 lanes share rows and cover the
// tile's columns, so a row's max and sum come from two shuffles. CPU twin: CpuBackend.logProbs.
template <int NI, typename T>
__device__ __forceinline__ void epi_logsoftmax(const float* acc, int wm, const TileArgs<T>& t, int M, int N,
                                               float scale, const int* targets, float2* partial,
                                               float* targetLogit, const int* topSlot, float* top) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int h = 0; h < 2; h++) {  // the thread's rows: lane / 4, then 8 below
        int m = t.m0 + wm + (lane >> 2) + h * 8;
        bool row = m < M;
        float mx = -INFINITY;
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 2; e++)
                if (t.n0 + ni * 8 + 2 * (lane & 3) + e < N) mx = fmaxf(mx, acc[ni * 4 + h * 2 + e] * scale);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // column n0 is in every tile: mx is finite
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        int target = row ? targets[m] : -1;
        int slot = row ? topSlot[m] : -1;
        float s = 0.f;
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int n = t.n0 + ni * 8 + 2 * (lane & 3) + e;
                if (n < N) {
                    float v = acc[ni * 4 + h * 2 + e] * scale;
                    s += __expf(v - mx);
                    if (n == target) targetLogit[m] = v;
                    if (slot >= 0) top[(size_t)slot * N + n] = v;
                }
            }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (row && (lane & 3) == 0) partial[(size_t)m * gridDim.y + blockIdx.y] = make_float2(mx, s);
    }
}

template <int BNT, typename T>
__device__ __forceinline__ void logsoftmax_sm90_tiled(const T* A, const unsigned char* wTiled, int M, int N, int K,
                                                      float scale, const int* targets, float2* partial,
                                                      float* targetLogit, const int* topSlot, float* top) {
#ifdef MOESCORE_WGMMA
    TileArgs<T> t{A, nullptr, 0, M, nullptr, N, K, K, (int)blockIdx.x * BM, (int)blockIdx.y * BNT};
    tiled_gemm<BNT, false, S90_STAGES>(t, wTiled, nullptr, [&](const float* acc, int wm) {
        epi_logsoftmax<BNT / 8>(acc, wm, t, M, N, scale, targets, partial, targetLogit, topSlot, top);
    });
#endif
}

#define LOGSOFTMAX_SM90_KERNELS(T, NAME, SUFFIX, BNT)                                                               \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                   \
    lm_head_logsoftmax_##NAME##SUFFIX(const T* __restrict__ A, const unsigned char* __restrict__ wTiled, int M,      \
                                      int N, int K, float scale, const int* __restrict__ targets,                  \
                                      float2* __restrict__ partial, float* __restrict__ targetLogit,               \
                                      const int* __restrict__ topSlot, float* __restrict__ top) {                  \
        logsoftmax_sm90_tiled<BNT, T>(A, wTiled, M, N, K, scale, targets, partial, targetLogit, topSlot, top);      \
    }
LOGSOFTMAX_SM90_KERNELS(bf16, bf16, _sm90t, BN)
LOGSOFTMAX_SM90_KERNELS(bf16, bf16, _sm90t_n128, BN_N128)
LOGSOFTMAX_SM90_KERNELS(f16, f16, _sm90t, BN)
LOGSOFTMAX_SM90_KERNELS(f16, f16, _sm90t_n128, BN_N128)

// BLOCKS: the blocks per SM the kernel is compiled for (__launch_bounds__' minimum: 2 caps a thread at 128 registers).
#define GEMM_SM90_TILED_KERNELS(T, NAME, SUFFIX, BNT, THREADS, WS, STAGES, BLOCKS)                                   \
    extern "C" __global__ void __launch_bounds__(THREADS, BLOCKS)                                                    \
    linear_##NAME##SUFFIX(const T* __restrict__ A, const unsigned char* __restrict__ wTiled,                         \
                              const float* __restrict__ bias, float* __restrict__ out, int M, int N, int K) {        \
        linear_sm90_tiled<BNT, WS, STAGES>(A, wTiled, bias, out, M, N, K);                                           \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS, BLOCKS)                                                    \
    experts_##NAME##_gate_up##SUFFIX(const T* __restrict__ x, const int* __restrict__ tokens,                        \
                                  const int* __restrict__ offsets, const int* __restrict__ work,                     \
                                  const unsigned char* __restrict__ wTiled, unsigned char* __restrict__ inter,       \
                                  int F, int H, int aParts, int wParts) {                                            \
        gate_up_sm90_tiled<BNT, WS, STAGES>(x, tokens, offsets, work, wTiled, inter, F, H);                          \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS, BLOCKS)                                                    \
    experts_##NAME##_down##SUFFIX(const unsigned char* __restrict__ inter, const int* __restrict__ tokens,           \
                               const float* __restrict__ gates, const int* __restrict__ offsets,                     \
                               const int* __restrict__ work, const unsigned char* __restrict__ wTiled,               \
                               float* __restrict__ out, float* __restrict__ perEntry, int H, int F, int aParts,      \
                               int wParts) {                                                                         \
        down_sm90_tiled<BNT, WS, STAGES, T>(inter, tokens, gates, offsets, work, wTiled, out, perEntry, H, F);       \
    }
GEMM_SM90_TILED_KERNELS(bf16, bf16, _sm90t, BN, GEMM_THREADS, false, S90_STAGES, 1)
GEMM_SM90_TILED_KERNELS(bf16, bf16, _sm90t_n128, BN_N128, GEMM_THREADS, false, S90_STAGES, 1)
GEMM_SM90_TILED_KERNELS(f16, f16, _sm90t, BN, GEMM_THREADS, false, S90_STAGES, 1)
GEMM_SM90_TILED_KERNELS(f16, f16, _sm90t_n128, BN_N128, GEMM_THREADS, false, S90_STAGES, 1)
// The paired ones (_sm90t2): the narrow tile in S90_PAIRED_STAGES stages, two blocks per SM.
GEMM_SM90_TILED_KERNELS(bf16, bf16, _sm90t2, BN_N128, GEMM_THREADS, false, S90_PAIRED_STAGES, 2)
GEMM_SM90_TILED_KERNELS(f16, f16, _sm90t2, BN_N128, GEMM_THREADS, false, S90_PAIRED_STAGES, 2)
// The warp-specialized ones (_sm90w: gemm_sm90_ws, GEMM_WS_THREADS), only the wide tile: the narrow one leaves a
// consumer too little work per slice.
GEMM_SM90_TILED_KERNELS(bf16, bf16, _sm90w, BN, GEMM_WS_THREADS, true, S90_STAGES, 1)
GEMM_SM90_TILED_KERNELS(f16, f16, _sm90w, BN, GEMM_WS_THREADS, true, S90_STAGES, 1)
