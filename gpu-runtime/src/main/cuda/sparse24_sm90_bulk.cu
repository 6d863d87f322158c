// Hopper 2:4 expert kernels fed by the copy engine: the wgmma.sp main loop of sparse24_sm90.cu, but the weight
// side of every stage (256 rows x 64 kept values + their metadata) arrives as one contiguous bulk copy
// (cp.async.bulk, completing on an mbarrier) instead of 3072 cp.async from the block's threads. That needs no
// tensor map (JCuda 12.6.0 cannot encode one): the weights are stored pre-tiled, each (expert, 256-row tile,
// 128-k stage) block laid out exactly as the stage sits in shared memory (tile_sparse24_sm90 below builds it
// from the Sparse24 layout once, at upload). The gathered token rows stay on cp.async.
//
// _sp24c_sm90 goes further: blocks run in clusters of two over the same expert and weight tile (two consecutive
// work items of 128 tokens), and each loads half of the weight stage and multicasts it to both, so each block
// pulls 18 KB of weights per stage from L2 instead of 36 (68 -> 50 KB per stage with the tokens). Experts with
// an odd number of work items get an empty partner item (its tokens all out of range). A slot is refilled only
// after both blocks released it (an "empty" mbarrier per slot that each block's thread 0 arrives on in both).
// CPU twin: CpuBackend.experts on the decompressed weights, as for the other 2:4 kernels.
//
// Stage layout (shared memory and the pre-tiled global block alike): for warpgroup half h = 0, 1 at h * 18432:
// values of rows 128h .. 128h+127 (128-byte rows, 128-byte swizzle, 16 KB), then their metadata [128][4 words];
// then at 36864 the token tile (two 128-byte column blocks, as sparse24_sm90.cu).
#define SPB_HALF_BYTES (128 * 128 + 128 * 16)
#define SPB_W_BYTES (2 * SPB_HALF_BYTES)
#define SPB_STAGE_BYTES (SPB_W_BYTES + SP9_B_BYTES)
#define SPARSE_BULK_SHARED_BYTES (SP9_STAGES * SPB_STAGE_BYTES + 1024 + 64)

// Pre-tiles one weight [E][R][K] (values [R][K/2] bf16, meta [R][K/32]) into [E][tiles][stages] blocks of
// SPB_W_BYTES; rows past R and k past K become zero values with metadata 0x44444444 (positions 0 and 1).
// Grid (stages, E * tiles), 256 threads: one row each.
extern "C" __global__ void tile_sparse24_sm90(const bf16* __restrict__ values, const unsigned* __restrict__ meta,
                                              unsigned char* __restrict__ tiled, int R, int K, int tiles) {
    int stage = blockIdx.x, stages = gridDim.x;
    int e = blockIdx.y / tiles, tile = blockIdx.y % tiles;
    int r = threadIdx.x, row = tile * SP_ROWS + r;
    int half = r >> 7, rh = r & 127;
    unsigned char* block = tiled + ((size_t)blockIdx.y * stages + stage) * SPB_W_BYTES + half * SPB_HALF_BYTES;
    const uint4* src = reinterpret_cast<const uint4*>(values + ((size_t)e * R + row) * (K / 2));
    for (int c = 0; c < 8; c++) {
        int kc = stage * (SP9_K / 2) + c * 8;  // first kept value of the chunk
        uint4 v = make_uint4(0, 0, 0, 0);
        if (row < R && kc < K / 2) v = src[kc / 8];
        *reinterpret_cast<uint4*>(block + rh * 128 + ((c ^ (rh & 7)) << 4)) = v;  // swizzled()
    }
    unsigned* m = reinterpret_cast<unsigned*>(block + 128 * 128) + rh * 4;
    for (int w = 0; w < 4; w++) {
        int word = stage * (SP9_K / 32) + w;
        m[w] = row < R && word < K / 32 ? meta[((size_t)e * R + row) * (K / 32) + word] : 0x44444444u;
    }
}

#ifdef MOESCORE_WGMMA_SP

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
                 : "memory");
}
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
// Arrive on the barrier at the same offset in the shared memory of block `rank` of the cluster.
__device__ __forceinline__ void mbar_arrive_cluster(uint64_t* bar, unsigned rank) {
    asm volatile(
        "{\n"
        ".reg .b32 remote;\n"
        "mapa.shared::cluster.u32 remote, %0, %1;\n"
        "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [remote];\n"
        "}\n" ::"r"(smem_u32(bar)),
        "r"(rank)
        : "memory");
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
            smem_u32(dst)),
        "l"(src), "r"(bytes), "r"(smem_u32(bar))
        : "memory");
}
// The same bytes land at the same offset in both blocks of the cluster, completing on each one's `bar`.
__device__ __forceinline__ void bulk_copy_multicast2(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], "
        "%4;\n" ::"r"(smem_u32(dst)),
        "l"(src), "r"(bytes), "r"(smem_u32(bar)), "h"((unsigned short)3)
        : "memory");
}
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
__device__ __forceinline__ unsigned cluster_rank() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}

// The token half of a stage: 128 rows x 16 chunks, as sp9_load_stage.
__device__ __forceinline__ void spb_load_tokens(const SpTile& t, int k0, unsigned char* sB) {
#pragma unroll
    for (int i = 0; i < SP_TOKENS * 16 / SP_THREADS; i++) {
        int chunk = threadIdx.x + i * SP_THREADS;
        int r = chunk >> 4, cc = chunk & 15;
        int tok = t.t0 + r, k = k0 + cc * 8;
        bool valid = tok < t.count && k < t.K;
        int row = valid ? (t.rows ? t.rows[t.begin + tok] : t.begin + tok) : 0;
        sp_cp_async16(sB + (cc >> 3) * (SP_TOKENS * 128) + swizzled(r, cc & 7),
                      t.x + (size_t)row * t.K + (valid ? k : 0), valid);
    }
}

// acc as sp9_mainloop. wTile: this block's weight tile, kTiles blocks of SPB_W_BYTES.
template <bool CLUSTER>
__device__ __forceinline__ void spb_mainloop(const SpTile& t, const unsigned char* wTile, float (&acc)[2][64]) {
    extern __shared__ __align__(16) unsigned char sp_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)sp_smem + 1023) & ~(uintptr_t)1023);
    uint64_t* full = reinterpret_cast<uint64_t*>(base + SP9_STAGES * SPB_STAGE_BYTES);
    uint64_t* empty = full + SP9_STAGES;
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    bool issuer = threadIdx.x == 0;
    unsigned rank = CLUSTER ? cluster_rank() : 0;
#pragma unroll
    for (int mb = 0; mb < 2; mb++)
#pragma unroll
        for (int i = 0; i < 64; i++) acc[mb][i] = 0.f;
    if (issuer) {
        for (int s = 0; s < SP9_STAGES; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 2);  // one arrival per block of the cluster
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    if (CLUSTER) cluster_sync();  // the partner's barriers exist before anything lands on them
    else __syncthreads();
    int kTiles = (t.K + SP9_K - 1) / SP9_K;
    // Thread 0 issues stage `kt`'s weight copy into its slot (after both blocks released the slot's previous use).
    auto issue_weights = [&](int kt) {
        int slot = kt % SP9_STAGES;
        unsigned char* stage = base + slot * SPB_STAGE_BYTES;
        const unsigned char* src = wTile + (size_t)kt * SPB_W_BYTES;
        if (CLUSTER) {
            if (kt >= SP9_STAGES) mbar_wait(&empty[slot], ((kt / SP9_STAGES) - 1) & 1);
            mbar_expect_tx(&full[slot], SPB_W_BYTES);
            bulk_copy_multicast2(stage + rank * SPB_HALF_BYTES, src + rank * SPB_HALF_BYTES, SPB_HALF_BYTES,
                                 &full[slot]);
        } else {
            mbar_expect_tx(&full[slot], SPB_W_BYTES);
            bulk_copy(stage, src, SPB_W_BYTES, &full[slot]);
        }
    };
#pragma unroll
    for (int s = 0; s < SP9_STAGES - 1; s++) {
        if (s < kTiles) {
            if (issuer) issue_weights(s);
            spb_load_tokens(t, s * SP9_K, base + s * SPB_STAGE_BYTES + SPB_W_BYTES);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }
    for (int kt = 0; kt < kTiles; kt++) {
        int slot = kt % SP9_STAGES;
        unsigned char* stage = base + slot * SPB_STAGE_BYTES;
        asm volatile("cp.async.wait_group %0;\n" ::"n"(SP9_STAGES - 2));
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();  // tokens of stage kt visible to the tensor cores; every wgmma of stage kt-1 has completed
        if (CLUSTER && issuer && kt >= 1) {  // stage kt-1's slot is free here: tell both blocks' issuers
            uint64_t* released = &empty[(kt - 1) % SP9_STAGES];
            mbar_arrive_cluster(released, 0);
            mbar_arrive_cluster(released, 1);
        }
        mbar_wait(&full[slot], (kt / SP9_STAGES) & 1);  // the weight half(s) of stage kt landed
        const unsigned char* half = stage + group * SPB_HALF_BYTES;
        const unsigned* sM = reinterpret_cast<const unsigned*>(half + 128 * 128);
        unsigned meta[2][4];
#pragma unroll
        for (int mb = 0; mb < 2; mb++) {
            int r = mb * 64 + warp * 16 + (lane >> 2);
#pragma unroll
            for (int s = 0; s < 4; s++) {
                unsigned lo = sM[r * 4 + s], hi = sM[(r + 8) * 4 + s];
                meta[mb][s] = (lane & 1) ? (lo >> 16) | (hi & 0xffff0000u) : (lo & 0xffffu) | (hi << 16);
            }
        }
        uint64_t descB0 = smem_desc(stage + SPB_W_BYTES);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int s = 0; s < 4; s++) {
            uint64_t descB = descB0 + (uint64_t)(((s >> 1) * SP_TOKENS * 128 + (s & 1) * 64) >> 4);
#pragma unroll
            for (int mb = 0; mb < 2; mb++) {
                uint64_t descA = smem_desc(half + mb * 64 * 128) + 2 * s;
                wgmma_sp_m64n128k32(acc[mb], descA, descB, meta[mb][s]);
            }
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        int pre = kt + SP9_STAGES - 1;
        if (pre < kTiles) {
            if (issuer) issue_weights(pre);
            spb_load_tokens(t, pre * SP9_K, base + (pre % SP9_STAGES) * SPB_STAGE_BYTES + SPB_W_BYTES);
        }
        asm volatile("cp.async.commit_group;\n" ::);
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    }
    asm volatile("cp.async.wait_group 0;\n" ::);
    if (CLUSTER) cluster_sync();  // no block leaves while its partner may still arrive on its barriers
}
#endif

// Work items for the cluster kernels: the work list pairs items of one expert (2j, 2j+1; CudaBackend pads odd
// counts with an empty item), and both blocks of a cluster (blockIdx.x 2j and 2j+1) take the same pair and
// weight tile; pairs are ordered as work_item orders items.
__device__ __forceinline__ Work work_item_paired(const int* work, const int* offsets) {
    int pairs = gridDim.x / 2, tiles = gridDim.y;
    int id = blockIdx.x / 2 + blockIdx.y * pairs;
    int groupBlocks = (WORK_GROUP / 2) * tiles;
    int group = id / groupBlocks, within = id - group * groupBlocks;
    int first = group * (WORK_GROUP / 2);
    int size = min(WORK_GROUP / 2, pairs - first);
    int item = 2 * (first + within % size) + (blockIdx.x & 1);
    Work w;
    w.expert = work[2 * item];
    w.m0 = work[2 * item + 1];
    w.begin = offsets[w.expert];
    w.count = offsets[w.expert + 1] - w.begin;
    w.tile = within / size;
    return w;
}

template <bool CLUSTER>
__device__ __forceinline__ void spb_gate_up(const bf16* x, const int* tokens, const int* offsets, const int* work,
                                            const unsigned char* tiled, bf16* inter, int F, int H) {
#ifdef MOESCORE_WGMMA_SP
    Work w = CLUSTER ? work_item_paired(work, offsets) : work_item(work, offsets);
    int kTiles = (H + SP9_K - 1) / SP9_K;
    const unsigned char* wTile = tiled + ((size_t)w.expert * gridDim.y + w.tile) * kTiles * SPB_W_BYTES;
    SpTile t{nullptr, nullptr, 2 * F, H, w.tile * SP_ROWS, x, tokens, w.begin, w.count, w.m0};
    float acc[2][64];
    spb_mainloop<CLUSTER>(t, wTile, acc);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp_epi_swiglu<2, 16>(&acc[0][0], group * 128 + warp * 16, 64, 0, t, w, inter, F);
#endif
}

template <bool CLUSTER>
__device__ __forceinline__ void spb_down(const bf16* inter, const int* tokens, const float* gates, const int* offsets,
                                         const int* work, const unsigned char* tiled, float* out, float* perEntry,
                                         int H, int F) {
#ifdef MOESCORE_WGMMA_SP
    Work w = CLUSTER ? work_item_paired(work, offsets) : work_item(work, offsets);
    int kTiles = (F + SP9_K - 1) / SP9_K;
    const unsigned char* wTile = tiled + ((size_t)w.expert * gridDim.y + w.tile) * kTiles * SPB_W_BYTES;
    SpTile t{nullptr, nullptr, H, F, w.tile * SP_ROWS, inter, nullptr, w.begin, w.count, w.m0};
    float acc[2][64];
    spb_mainloop<CLUSTER>(t, wTile, acc);
    int group = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3;
    sp_epi_combine<2, 16>(&acc[0][0], group * 128 + warp * 16, 64, 0, t, w, tokens, gates, out, perEntry, H);
#endif
}

// Grid (work items, weight tiles) as the other expert kernels; the tiled weights replace values and meta.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define CLUSTER_OF_2  // clusters exist from sm_90 on; these kernels are empty below it
#else
#define CLUSTER_OF_2 __cluster_dims__(2, 1, 1)
#endif
extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)
experts_gate_up_sp24b_sm90(const bf16* __restrict__ x, const int* __restrict__ tokens,
                           const int* __restrict__ offsets, const int* __restrict__ work,
                           const unsigned char* __restrict__ tiled, bf16* __restrict__ inter, int F, int H) {
    spb_gate_up<false>(x, tokens, offsets, work, tiled, inter, F, H);
}
extern "C" __global__ void __launch_bounds__(SP_THREADS, 1)
experts_down_sp24b_sm90(const bf16* __restrict__ inter, const int* __restrict__ tokens,
                        const float* __restrict__ gates, const int* __restrict__ offsets,
                        const int* __restrict__ work, const unsigned char* __restrict__ tiled,
                        float* __restrict__ out, float* __restrict__ perEntry, int H, int F) {
    spb_down<false>(inter, tokens, gates, offsets, work, tiled, out, perEntry, H, F);
}
extern "C" __global__ void CLUSTER_OF_2 __launch_bounds__(SP_THREADS, 1)
experts_gate_up_sp24c_sm90(const bf16* __restrict__ x, const int* __restrict__ tokens,
                           const int* __restrict__ offsets, const int* __restrict__ work,
                           const unsigned char* __restrict__ tiled, bf16* __restrict__ inter, int F, int H) {
    spb_gate_up<true>(x, tokens, offsets, work, tiled, inter, F, H);
}
extern "C" __global__ void CLUSTER_OF_2 __launch_bounds__(SP_THREADS, 1)
experts_down_sp24c_sm90(const bf16* __restrict__ inter, const int* __restrict__ tokens,
                        const float* __restrict__ gates, const int* __restrict__ offsets,
                        const int* __restrict__ work, const unsigned char* __restrict__ tiled,
                        float* __restrict__ out, float* __restrict__ perEntry, int H, int F) {
    spb_down<true>(inter, tokens, gates, offsets, work, tiled, out, perEntry, H, F);
}
