// Causal grouped-query prefill attention over packed variable-length sequences on Hopper (sm_90a), the
// FlashAttention-3 structure: the kernels of attention_fa.cu (same arguments, grid, tile list and results: bf16 or
// fp16 q, k, v; fp32 out and its 16-bit copy for the o projection; causal, sliding window, GQA) with wgmma for both
// products. attention_fa.cu's mma.sync kernels stay for sm_80-89, the PTX of newer GPUs and where the backend is
// told to keep them (AttentionKernel). CPU twin: CpuBackend.attention.
//
// A block = FA_ROWS (128) query rows of one sequence and one head, 3 warpgroups (FA90_THREADS):
// - warpgroup 0, the producer (setmaxnreg down to FA90_PRODUCER_REGS): copies the Q tile once, then K and V tiles of
//   KT keys into a ring of STAGES slots, 16 bytes per cp.async (zero-filled past the last key), into the 128-byte
//   swizzle wgmma reads (16-byte chunk c of a row r of 64 values at chunk c ^ (r % 8); a head of D values is D / 64
//   column blocks). Not the copy engine: its plain bulk copies (cp.async.bulk) move contiguous bytes and cannot
//   swizzle, and its tensor copies need a tensor map per q/k/v pointer, which these arguments do not carry. A
//   group's copies are published in the order the rule for ordinary writes read by the tensor cores asks: each
//   producer thread waits for its own copies (cp.async.wait_group), fences the async proxy, arrives on the slot's
//   "full" mbarrier (128 arrivals). Publishing lags issuing by one group (K_t is published once V_t is issued),
//   except where the next group's slot is still in use: then the pending group is published before blocking.
// - warpgroups 1 and 2, the consumers (setmaxnreg up to FA90_CONSUMER_REGS), 64 query rows each: S = Q K^T with
//   wgmma (Q and the K tile from shared memory, K-major), masked only where a tile can hold a masked key (diagonal,
//   window edge, past the last key), online softmax per row in base 2 on the accumulators (the 1/sqrt(d) scale
//   folded into log2(e), applied in fp32), P rounded to T in registers and fed as wgmma's register A operand for
//   O += P V (V tile from shared memory with the transpose bit: V is [keys][d], MN-major for this product).
//   FlashAttention-3's intra-warpgroup overlap: S of tile t is issued before P V of tile t - 1, and the softmax
//   of tile t runs while that product is on the tensor cores. K and V slots are released separately (each
//   consumer warp arrives on the slot's "empty" mbarrier once its products that read it completed), so the
//   producer refills K a tile earlier than V. Causal blocks past the diagonal are never loaded (the key range
//   ends at the block's last row, as in attention_fa.cu).
// Shared memory (ATTENTION_FA90_SHARED_BYTES): Q tile, then per slot a K and a V tile, then the mbarriers.
// smem_desc, swizzled, WGMMA_D64 / WGMMA_REGS64, mbar_init / mbar_wait / mbar_arrive / mbar_test, publish_copies (a
// producer thread's publication of a group), cp_async16: gemm_sm90.cu and gemm.cu.
#include "common.cuh"

#define FA90_PRODUCER_REGS 40
#define FA90_CONSUMER_REGS 232
static_assert(FA90_PRODUCER_REGS * 128 + 2 * FA90_CONSUMER_REGS * 128 <= 65536 / FA90_THREADS / 8 * 8 * FA90_THREADS,
              "the warpgroups' registers after setmaxnreg fit the block's allocation at entry");

template <int D, int KT, int STAGES> struct Fa90Shape {
    static_assert(D % 64 == 0 && D <= 256 && KT % 64 == 0 && (KT == 64 || KT == 128), "head dim and key tile");
    static_assert(1 + 4 * STAGES <= 16, "the mbarriers fit their 128 bytes");
    static constexpr int QT = FA_ROWS;                          // query rows per block: 2 consumers x 64
    static constexpr int Q_BYTES = QT * D * 2;
    static constexpr int KV_BYTES = KT * D * 2;                 // one K or one V tile
    static constexpr int BAR_OFFSET = Q_BYTES + 2 * STAGES * KV_BYTES;
    static constexpr int SMEM = ATTENTION_FA90_SHARED_BYTES(D, KT, STAGES);
    static_assert(BAR_OFFSET + 128 + 1024 == SMEM, "constants.cuh's size is this layout's");
};

#ifdef MOESCORE_WGMMA

// Descriptor of an MN-major operand (V for P V: rows of 64 contiguous d values, 128 bytes, swizzled): 8-key groups
// 1024 bytes apart, 64-value column blocks `blockBytes` apart.
__device__ __forceinline__ uint64_t smem_desc_mn(const void* p, unsigned blockBytes) {
    uint64_t addr = smem_u32(p);
    return ((addr & 0x3FFFF) >> 4) | ((uint64_t)(blockBytes >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) |
           (1ull << 62);
}

// Keeps the compiler from moving reads or writes of wgmma's registers across the asm around it (wgmma runs
// asynchronously from the issuing asm until wgmma.wait_group).
template <int N> __device__ __forceinline__ void fa90_pin(float (&x)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(x[i])::"memory");
}
template <int N> __device__ __forceinline__ void fa90_pin(unsigned (&x)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) asm volatile("" : "+r"(x[i][j])::"memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

#define FA90_D32(d)                                                                                               \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),    \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),     \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),    \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define FA90_REGS32                                                                                               \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "  \
    "%23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define FA90_REGS128                                                                                              \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "  \
    "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "   \
    "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, "   \
    "%65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, "   \
    "%86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, "  \
    "%106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, "      \
    "%123, %124, %125, %126, %127}"

// S[64 x N] (+)= Q[64 x 16] K[N x 16]^T, both K-major in shared memory; accumulate = 0 overwrites d.
#define FA90_SS_ASM(N, TYPE, REGS, A, B, P, ...)                                                                  \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P ", 0;\n"                                                   \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " REGS ", %" A ", %" B          \
                 ", p, 1, 1, 0, 0;\n}\n"                                                                           \
                 : __VA_ARGS__                                                                                     \
                 : "l"(descA), "l"(descB), "r"(accumulate))
template <typename T, int N>
__device__ __forceinline__ void fa90_ss(float (&d)[N / 2], uint64_t descA, uint64_t descB, int accumulate) {
    static_assert(N == 64 || N == 128, "key tiles of 64 or 128");
    if constexpr (N == 64) {
        if constexpr (is_bf16<T>) FA90_SS_ASM(64, "bf16", FA90_REGS32, "32", "33", "34", FA90_D32(d));
        else FA90_SS_ASM(64, "f16", FA90_REGS32, "32", "33", "34", FA90_D32(d));
    } else {
        if constexpr (is_bf16<T>) FA90_SS_ASM(128, "bf16", WGMMA_REGS64, "64", "65", "66", WGMMA_D64(d, 0));
        else FA90_SS_ASM(128, "f16", WGMMA_REGS64, "64", "65", "66", WGMMA_D64(d, 0));
    }
}
#undef FA90_SS_ASM

// O[64 x N] += P[64 x 16] V[16 x N]: P in registers (mma.sync's A fragment layout), V MN-major in shared memory.
#define FA90_RS_ASM(N, TYPE, REGS, A0, A1, A2, A3, B, ...)                                                        \
    asm volatile("{\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " REGS ", {%" A0 ", %" A1   \
                 ", %" A2 ", %" A3 "}, %" B ", 1, 1, 1, 1;\n}\n"                                                    \
                 : __VA_ARGS__                                                                                     \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB))
template <typename T, int N>
__device__ __forceinline__ void fa90_rs(float (&d)[N / 2], const unsigned (&a)[4], uint64_t descB) {
    static_assert(N == 64 || N == 128 || N == 256, "head dims 64, 128, 256");
    if constexpr (N == 64) {
        if constexpr (is_bf16<T>) FA90_RS_ASM(64, "bf16", FA90_REGS32, "32", "33", "34", "35", "36", FA90_D32(d));
        else FA90_RS_ASM(64, "f16", FA90_REGS32, "32", "33", "34", "35", "36", FA90_D32(d));
    } else if constexpr (N == 128) {
        if constexpr (is_bf16<T>)
            FA90_RS_ASM(128, "bf16", WGMMA_REGS64, "64", "65", "66", "67", "68", WGMMA_D64(d, 0));
        else FA90_RS_ASM(128, "f16", WGMMA_REGS64, "64", "65", "66", "67", "68", WGMMA_D64(d, 0));
    } else {
        if constexpr (is_bf16<T>)
            FA90_RS_ASM(256, "bf16", FA90_REGS128, "128", "129", "130", "131", "132", WGMMA_D64(d, 0),
                        WGMMA_D64(d, 64));
        else FA90_RS_ASM(256, "f16", FA90_REGS128, "128", "129", "130", "131", "132", WGMMA_D64(d, 0),
                         WGMMA_D64(d, 64));
    }
}
#undef FA90_RS_ASM

// Rows first .. first + R - 1 (those past `last` zero-filled) of D values from src (rows `stride` values apart) into
// a tile of R rows in 64-value swizzled column blocks; called by the 128 producer threads, pt = 0 .. 127.
template <int D, int R, typename T>
__device__ __forceinline__ void fa90_load(unsigned char* dst, const T* src, int stride, int first, int last, int pt) {
    constexpr int CH = D / 8;  // 16-byte chunks per row
    static_assert(R * CH % 128 == 0, "whole passes of the producer warpgroup");
#pragma unroll 4
    for (int i = 0; i < R * CH / 128; i++) {
        int idx = pt + 128 * i, r = idx / CH, c = idx % CH;
        bool ok = first + r <= last;
        cp_async16(dst + (c >> 3) * (R * 128) + swizzled(r, c & 7), src + (size_t)(ok ? first + r : first) * stride + c * 8,
                   ok);
    }
    cp_async_commit();
}

// Online softmax of one S tile in the accumulator layout (thread: rows g and g + 8 of its warp's 16, two columns of
// each 8): masked keys -inf where `mask`, running max m and sum l per row (l partial over the thread's columns),
// corr the factor the row's O must be scaled by, P rounded to T as 4 A-operand registers per 16 keys.
template <typename T, int KT>
__device__ __forceinline__ void fa90_softmax(float (&s)[KT / 2], unsigned (&p)[KT / 16][4], float (&m)[2],
                                             float (&l)[2], float (&corr)[2], bool mask, int row0, int kt, int kLast,
                                             int window, float scaleLog2) {
    int lane = threadIdx.x & 31;
    if (mask) {
#pragma unroll
        for (int n = 0; n < KT / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int row = row0 + 8 * (e >> 1);
                int key = kt + n * 8 + 2 * (lane & 3) + (e & 1);
                if (!(key <= row && key <= kLast && (window <= 0 || key > row - window))) s[4 * n + e] = -INFINITY;
            }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float mx = m[r];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * r], s[4 * n + 2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float base = mx == -INFINITY ? 0.f : mx * scaleLog2;  // no key visible yet: p = 0, nothing to rescale
        corr[r] = exp2f(m[r] * scaleLog2 - base);
        m[r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < KT / 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                float v = exp2f(fmaf(s[4 * n + 2 * r + e], scaleLog2, -base));  // masked: exp2(-inf) = 0
                s[4 * n + 2 * r + e] = v;
                sum += v;
            }
        l[r] = l[r] * corr[r] + sum;
    }
#pragma unroll
    for (int j = 0; j < KT / 16; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) p[j][i] = pack_half2<T>(s[8 * j + 2 * i], s[8 * j + 2 * i + 1]);
}

template <typename T, int D, int KT>
__device__ __forceinline__ void fa90_qk(float (&s)[KT / 2], const unsigned char* qRows, const unsigned char* kTile) {
    uint64_t a0 = smem_desc(qRows), b0 = smem_desc(kTile);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)  // 16 values = 32 bytes = 2 in a descriptor's address; 64-value blocks
        fa90_ss<T, KT>(s, a0 + (kk / 4) * (FA_ROWS * 128 / 16) + 2 * (kk % 4),
                       b0 + (kk / 4) * (KT * 128 / 16) + 2 * (kk % 4), kk > 0);
    wgmma_commit();
}

template <typename T, int D, int KT>
__device__ __forceinline__ void fa90_pv(float (&o)[D / 2], unsigned (&p)[KT / 16][4], const unsigned char* vTile) {
    uint64_t b0 = smem_desc_mn(vTile, KT * 128);
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < KT / 16; j++) fa90_rs<T, D>(o, p[j], b0 + j * (16 * 128 / 16));  // 16 key rows further
    wgmma_commit();
}

template <typename T, int D, int KT, int STAGES>
__device__ __forceinline__ void attention_fa90_rows(const T* __restrict__ q, const T* __restrict__ k,
                                                    const T* __restrict__ v, float* __restrict__ out,
                                                    T* __restrict__ outHalf, const int* __restrict__ tiles,
                                                    int numHeads, int numKvHeads, int window, float scaleLog2) {
    using S = Fa90Shape<D, KT, STAGES>;
    extern __shared__ __align__(16) unsigned char fa90_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)fa90_smem + 1023) & ~(uintptr_t)1023);
    unsigned char* sQ = base;
    auto sK = [&](int slot) { return base + S::Q_BYTES + slot * 2 * S::KV_BYTES; };
    auto sV = [&](int slot) { return base + S::Q_BYTES + slot * 2 * S::KV_BYTES + S::KV_BYTES; };
    uint64_t* qFull = reinterpret_cast<uint64_t*>(base + S::BAR_OFFSET);
    uint64_t* kFull = qFull + 1;
    uint64_t* vFull = kFull + STAGES;
    uint64_t* kEmpty = vFull + STAGES;
    uint64_t* vEmpty = kEmpty + STAGES;

    int tile = blockIdx.x / numHeads, head = blockIdx.x - tile * numHeads;
    int seqStart = tiles[3 * tile], seqEnd = tiles[3 * tile + 1], q0 = tiles[3 * tile + 2];
    int kvHead = head / (numHeads / numKvHeads);
    int qCols = numHeads * D, kvCols = numKvHeads * D;
    int qEnd = min(q0 + S::QT, seqEnd);
    int kFirst = window > 0 ? max(seqStart, q0 - window + 1) : seqStart;
    int kLast = qEnd - 1;
    int nTiles = (kLast - kFirst) / KT + 1;

    if (threadIdx.x == 0) {
        mbar_init(qFull, 128);
        for (int s = 0; s < STAGES; s++) {
            mbar_init(&kFull[s], 128);
            mbar_init(&vFull[s], 128);
            mbar_init(&kEmpty[s], 8);  // lane 0 of each consumer warp
            mbar_init(&vEmpty[s], 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (threadIdx.x < 128) {  // ---- producer ----
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(FA90_PRODUCER_REGS));
        int pt = threadIdx.x;
        const T* kSrc = k + kvHead * D;
        const T* vSrc = v + kvHead * D;
        fa90_load<D, S::QT>(sQ, q + head * D, qCols, q0, qEnd - 1, pt);
        uint64_t* pending = qFull;  // the group issued last, not yet published
        // groups in order Q, K_0, V_0, K_1, V_1, ...: each waits for its slot's release, then the previous group
        // is published (before the wait where the slot is still busy, so no landed group waits on the consumers)
        for (int g = 0; g < 2 * nTiles; g++) {
            int t = g >> 1, slot = t % STAGES;
            bool isV = g & 1;
            uint64_t* empty = isV ? &vEmpty[slot] : &kEmpty[slot];
            unsigned parity = ((t / STAGES) - 1) & 1;
            if (t >= STAGES && pending != nullptr && !mbar_test(empty, parity)) {
                publish_copies<0>(pending);
                pending = nullptr;
            }
            if (t >= STAGES) mbar_wait(empty, parity);
            int kt = kFirst + t * KT;
            if (isV) fa90_load<D, KT>(sV(slot), vSrc, kvCols, kt, kLast, pt);
            else fa90_load<D, KT>(sK(slot), kSrc, kvCols, kt, kLast, pt);
            if (pending != nullptr) publish_copies<1>(pending);
            pending = isV ? &vFull[slot] : &kFull[slot];
        }
        publish_copies<0>(pending);
    } else {  // ---- consumers: 64 query rows each ----
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(FA90_CONSUMER_REGS));
        int wg = (threadIdx.x >> 7) - 1, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
        int wRow0 = q0 + 64 * wg, wRowN = wRow0 + 63;  // the warpgroup's rows
        int row0 = wRow0 + 16 * warp + (lane >> 2);    // the thread's rows: row0, row0 + 8
        const unsigned char* qRows = sQ + wg * 64 * 128;
        // a masked key can be in a tile only at the diagonal, at the window's edge or past the last key
        auto masked = [&](int kt) {
            return kt + KT - 1 > wRow0 || kt + KT - 1 > kLast || (window > 0 && kt < wRowN - window + 1);
        };
        auto release = [&](uint64_t* empty) {
            if (lane == 0) mbar_arrive(empty);
        };
        float o[D / 2];
#pragma unroll
        for (int i = 0; i < D / 2; i++) o[i] = 0.f;
        float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, corr[2];
        float s[KT / 2];
        unsigned p[KT / 16][4];

        mbar_wait(qFull, 0);
        mbar_wait(&kFull[0], 0);
        fa90_qk<T, D, KT>(s, qRows, sK(0));
        wgmma_wait<0>();
        fa90_pin(s);
        release(&kEmpty[0]);
        fa90_softmax<T, KT>(s, p, m, l, corr, masked(kFirst), row0, kFirst, kLast, window, scaleLog2);
        for (int t = 1; t < nTiles; t++) {
            int slot = t % STAGES, prev = (t - 1) % STAGES, kt = kFirst + t * KT;
            mbar_wait(&kFull[slot], (t / STAGES) & 1);
            fa90_qk<T, D, KT>(s, qRows, sK(slot));
            mbar_wait(&vFull[prev], ((t - 1) / STAGES) & 1);
            fa90_pv<T, D, KT>(o, p, sV(prev));
            wgmma_wait<1>();  // S of tile t; P V of tile t - 1 still running
            fa90_pin(s);
            release(&kEmpty[slot]);
            unsigned pNext[KT / 16][4];
            fa90_softmax<T, KT>(s, pNext, m, l, corr, masked(kt), row0, kt, kLast, window, scaleLog2);
            wgmma_wait<0>();
            fa90_pin(o);
            fa90_pin(p);
            release(&vEmpty[prev]);
#pragma unroll
            for (int i = 0; i < D / 8; i++) {
                o[4 * i] *= corr[0];
                o[4 * i + 1] *= corr[0];
                o[4 * i + 2] *= corr[1];
                o[4 * i + 3] *= corr[1];
            }
#pragma unroll
            for (int j = 0; j < KT / 16; j++)
#pragma unroll
                for (int i = 0; i < 4; i++) p[j][i] = pNext[j][i];
        }
        int last = (nTiles - 1) % STAGES;
        mbar_wait(&vFull[last], ((nTiles - 1) / STAGES) & 1);
        fa90_pv<T, D, KT>(o, p, sV(last));
        wgmma_wait<0>();
        fa90_pin(o);

        int qColsOut = qCols;
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float sum = l[r];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            int row = row0 + 8 * r;
            if (row >= qEnd) continue;
            float inv = 1.f / sum;
            size_t at = (size_t)row * qColsOut + head * D + 2 * (lane & 3);
#pragma unroll
            for (int i = 0; i < D / 8; i++) {
                float a = o[4 * i + 2 * r] * inv, b = o[4 * i + 2 * r + 1] * inv;
                *reinterpret_cast<float2*>(out + at + i * 8) = make_float2(a, b);
                if (outHalf != nullptr) *reinterpret_cast<unsigned*>(outHalf + at + i * 8) = pack_half2<T>(a, b);
            }
        }
    }
}
#endif  // MOESCORE_WGMMA

// The backend's kernels (FA90_* sizes: constants.cuh): attention_sm90_{bf16,f16}_d{64,128,256}, head_dim == D;
// empty on other targets (the backend launches them on compute capability 9.0 only). outHalf may be null.
#ifdef MOESCORE_WGMMA
#define FA90_BODY(T, D, KEYS, STAGES) \
    attention_fa90_rows<T, D, KEYS, STAGES>(q, k, v, out, outHalf, tiles, numHeads, numKvHeads, window, scaleLog2);
#else
#define FA90_BODY(T, D, KEYS, STAGES)
#endif
#define ATTENTION_FA90_KERNEL(NAME, T, D, KEYS, STAGES)                                                          \
    extern "C" __global__ void __launch_bounds__(FA90_THREADS, 1)                                              \
    NAME(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, float* __restrict__ out,    \
         T* __restrict__ outHalf, const int* __restrict__ tiles, int numHeads, int numKvHeads, int window,       \
         float scaleLog2) {                                                                                    \
        FA90_BODY(T, D, KEYS, STAGES)                                                                          \
    }
ATTENTION_FA90_KERNEL(attention_sm90_bf16_d64, bf16, 64, FA90_KEYS, FA90_STAGES_D64)
ATTENTION_FA90_KERNEL(attention_sm90_bf16_d128, bf16, 128, FA90_KEYS, FA90_STAGES)
ATTENTION_FA90_KERNEL(attention_sm90_bf16_d256, bf16, 256, FA90_KEYS_D256, FA90_STAGES)
ATTENTION_FA90_KERNEL(attention_sm90_f16_d64, f16, 64, FA90_KEYS, FA90_STAGES_D64)
ATTENTION_FA90_KERNEL(attention_sm90_f16_d128, f16, 128, FA90_KEYS, FA90_STAGES)
ATTENTION_FA90_KERNEL(attention_sm90_f16_d256, f16, 256, FA90_KEYS_D256, FA90_STAGES)
