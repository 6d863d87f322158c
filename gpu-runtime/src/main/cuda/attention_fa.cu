// Causal grouped-query prefill attention over packed variable-length sequences on tensor cores, reading q, k and
// v already in half precision (T of common.cuh: bf16 or fp16), as to_half_T below writes them (or rope_half_T of
// elementwise.cu, which writes the copy while rotating), the FlashAttention-2 scheme for sm_80 and later.
// CPU twin: CpuBackend.attention. attention_tc.cu (fp32 inputs, converted while staging) stays the fallback for
// head dims this file does not instantiate; attention.cu serves split-bf16 precision.
//
// One block = QT = 16 * MT * W query rows of one sequence and one head; W warps, each owning 16 * MT rows.
// Q (QT rows) is copied once to shared memory with cp.async; K and V tiles of KT keys are double-buffered: while
// the block computes on tile t, tile t + 1 is in flight (cp.async, 16 bytes per copy, zero-filled past the
// sequence). S = Q K^T (mma.sync m16n8k16, fp32 accumulators; Q and K via ldmatrix), masked only where a tile
// can hold a masked key (diagonal, window edge, past the last key), online softmax per row in base 2 (the
// 1/sqrt(d) scale folded into log2(e) and applied in fp32), then P, rounded to T, is reused straight from S's
// accumulator registers as the A operand of O += P V (V via ldmatrix.trans). A warp whose rows see no key of
// a tile skips its products. Rows padded to D + 8 halves: ldmatrix's 8 row addresses hit different banks.
//
// tiles: per Q tile (sequence start, sequence end, first query row), absolute rows; the grid is
// (tiles x heads) blocks in one dimension, heads fastest, so that the host's order of the tile list (longest
// first: the key count of a causal tile grows with its position) is the order in which blocks start, and the
// heads sharing one KV head run side by side (their K/V tiles come from L2 once).
// q: [tokens, numHeads * D], k and v: [tokens, numKvHeads * D] of T; out: fp32 [tokens, numHeads * D], and
// outHalf the same values rounded to T (the o projection's GEMM input, as to_T_parts would write it).
// scaleLog2 = log2(e) / sqrt(D). window > 0: row r sees keys r - window + 1 .. r of its sequence.
#include "common.cuh"

// cp_async16, cp_async_commit, ldmatrix_x4, mma_m16n8k16: gemm.cu; ldmatrix_x4_trans: attention_tc.cu.

template <int D, int W, int MT, int KT> struct FaShape {
    static constexpr int QT = 16 * MT * W;  // query rows per block
    static constexpr int LD = D + 8;        // halves per shared-memory row
    static constexpr int THREADS = 32 * W;
    template <typename T> static constexpr int smem() { return (QT + 4 * KT) * LD * (int)sizeof(T); }
};

template <typename T, int D, int W, int MT, int KT>
__device__ __forceinline__ void attention_fa_rows(const T* __restrict__ q, const T* __restrict__ k,
                                                  const T* __restrict__ v, float* __restrict__ out,
                                                  T* __restrict__ outHalf, const int* __restrict__ tiles,
                                                  int numHeads, int numKvHeads, int window, float scaleLog2) {
    using S = FaShape<D, W, MT, KT>;
    constexpr int QT = S::QT, LD = S::LD, NT = S::THREADS, CH = D / 8;  // CH: 16-byte chunks per row
    extern __shared__ __align__(16) unsigned char fa_smem[];
    T* sQ = reinterpret_cast<T*>(fa_smem);
    T* sK = sQ + QT * LD;      // two buffers of KT rows
    T* sV = sK + 2 * KT * LD;  // two buffers of KT rows
    int tile = blockIdx.x / numHeads, head = blockIdx.x - tile * numHeads;
    int seqStart = tiles[3 * tile], seqEnd = tiles[3 * tile + 1], q0 = tiles[3 * tile + 2];
    int kvHead = head / (numHeads / numKvHeads);
    int qCols = numHeads * D, kvCols = numKvHeads * D;
    int qEnd = min(q0 + QT, seqEnd);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int kFirst = window > 0 ? max(seqStart, q0 - window + 1) : seqStart;
    int kLast = qEnd - 1;
    int nTiles = (kLast - kFirst) / KT + 1;

    for (int i = threadIdx.x; i < QT * CH; i += NT) {
        int r = i / CH, c = (i % CH) * 8;
        bool ok = q0 + r < qEnd;
        cp_async16(&sQ[r * LD + c], q + (size_t)(ok ? q0 + r : q0) * qCols + head * D + c, ok);
    }
    auto loadKV = [&](int t) {
        int kt = kFirst + t * KT;
        T* dk = sK + (t & 1) * KT * LD;
        T* dv = sV + (t & 1) * KT * LD;
        for (int i = threadIdx.x; i < KT * CH; i += NT) {
            int r = i / CH, c = (i % CH) * 8;
            bool ok = kt + r <= kLast;
            size_t at = (size_t)(ok ? kt + r : kt) * kvCols + kvHead * D + c;
            cp_async16(&dk[r * LD + c], k + at, ok);
            cp_async16(&dv[r * LD + c], v + at, ok);
        }
    };
    loadKV(0);
    cp_async_commit();

    int wRow0 = q0 + warp * 16 * MT;    // the warp's first row
    int wRowN = wRow0 + 16 * MT - 1;    // and last
    float o[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int i = 0; i < D / 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[mt][i][e] = 0.f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
    }

    for (int t = 0; t < nTiles; t++) {
        cp_async_wait_all();
        __syncthreads();  // tile t visible to all; every warp is done with tile t - 1, whose buffers t + 1 reuses
        if (t + 1 < nTiles) loadKV(t + 1);
        cp_async_commit();
        int kt = kFirst + t * KT;
        // keys of this tile no row of the warp sees: all after its last row, or all before its first row's window
        if (kt > wRowN || (window > 0 && kt + KT - 1 < wRow0 - window + 1)) continue;
        const T* cK = sK + (t & 1) * KT * LD;
        const T* cV = sV + (t & 1) * KT * LD;
        float s[MT][KT / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int n = 0; n < KT / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[mt][n][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            unsigned a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                ldmatrix_x4(a[mt], &sQ[(warp * 16 * MT + mt * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD +
                                       kk * 16 + 8 * (lane >> 4)]);
#pragma unroll
            for (int nj = 0; nj < KT / 16; nj++) {
                unsigned b[4];
                ldmatrix_x4(b, &cK[(nj * 16 + (lane & 7) + 8 * (lane >> 4)) * LD + kk * 16 + 8 * ((lane >> 3) & 1)]);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_m16n8k16<T>(s[mt][2 * nj], a[mt], b);
                    mma_m16n8k16<T>(s[mt][2 * nj + 1], a[mt], b + 2);
                }
            }
        }
        // a masked key can be in this tile only at the diagonal, at the window's edge or past the last key
        bool mask = kt + KT - 1 > wRow0 || kt + KT - 1 > kLast || (window > 0 && kt < wRowN - window + 1);
        if (mask) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int n = 0; n < KT / 8; n++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int row = wRow0 + mt * 16 + (lane >> 2) + 8 * (e >> 1);
                        int key = kt + n * 8 + 2 * (lane & 3) + (e & 1);
                        bool visible = key <= row && key <= kLast && (window <= 0 || key > row - window);
                        if (!visible) s[mt][n][e] = -INFINITY;
                    }
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float mUse[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float mx = -INFINITY;
#pragma unroll
                for (int n = 0; n < KT / 8; n++) mx = fmaxf(mx, fmaxf(s[mt][n][2 * r], s[mt][n][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                float mNew = fmaxf(m[mt][r], mx);
                mUse[r] = mNew == -INFINITY ? 0.f : mNew * scaleLog2;  // nothing visible yet: p = 0, no rescaling
                float corr = exp2f(m[mt][r] * scaleLog2 - mUse[r]);
                m[mt][r] = mNew;
                l[mt][r] *= corr;
#pragma unroll
                for (int i = 0; i < D / 8; i++) {
                    o[mt][i][2 * r] *= corr;
                    o[mt][i][2 * r + 1] *= corr;
                }
            }
#pragma unroll
            for (int n = 0; n < KT / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float p = exp2f(fmaf(s[mt][n][e], scaleLog2, -mUse[e >> 1]));  // masked: exp2(-inf) = 0
                    s[mt][n][e] = p;
                    l[mt][e >> 1] += p;
                }
        }
#pragma unroll
        for (int j = 0; j < KT / 16; j++) {
            unsigned a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                a[mt][0] = pack_half2<T>(s[mt][2 * j][0], s[mt][2 * j][1]);
                a[mt][1] = pack_half2<T>(s[mt][2 * j][2], s[mt][2 * j][3]);
                a[mt][2] = pack_half2<T>(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
                a[mt][3] = pack_half2<T>(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
            }
#pragma unroll
            for (int dn = 0; dn < D / 16; dn++) {
                unsigned b[4];
                ldmatrix_x4_trans(b, &cV[(j * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + dn * 16 + 8 * (lane >> 4)]);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_m16n8k16<T>(o[mt][2 * dn], a[mt], b);
                    mma_m16n8k16<T>(o[mt][2 * dn + 1], a[mt], b + 2);
                }
            }
        }
    }
    cp_async_wait_all();
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float sum = l[mt][r];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            int row = wRow0 + mt * 16 + (lane >> 2) + 8 * r;
            if (row >= qEnd) continue;
            float inv = 1.f / sum;
            size_t at = (size_t)row * qCols + head * D + 2 * (lane & 3);
#pragma unroll
            for (int i = 0; i < D / 8; i++) {
                float a = o[mt][i][2 * r] * inv, b = o[mt][i][2 * r + 1] * inv;
                *reinterpret_cast<float2*>(out + at + i * 8) = make_float2(a, b);
                *reinterpret_cast<unsigned*>(outHalf + at + i * 8) = pack_half2<T>(a, b);
            }
        }
}

// The backend's kernels (FA_* sizes: constants.cuh): attention_fa_{bf16,f16}_d{64,128,256}; head_dim == D exactly.
#define ATTENTION_FA_KERNEL(NAME, T, D, W, KEYS, MIN_BLOCKS)                                                  \
    extern "C" __global__ void __launch_bounds__(32 * (W), MIN_BLOCKS)                                      \
    NAME(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, float* __restrict__ out,  \
         T* __restrict__ outHalf, const int* __restrict__ tiles, int numHeads, int numKvHeads, int window,     \
         float scaleLog2) {                                                                                  \
        attention_fa_rows<T, D, W, FA_ROWS / (16 * (W)), KEYS>(q, k, v, out, outHalf, tiles, numHeads,         \
                                                              numKvHeads, window, scaleLog2);              \
    }
ATTENTION_FA_KERNEL(attention_fa_bf16_d64, bf16, 64, FA_WARPS_D64, FA_KEYS, 2)
ATTENTION_FA_KERNEL(attention_fa_bf16_d128, bf16, 128, FA_WARPS, FA_KEYS, 2)
ATTENTION_FA_KERNEL(attention_fa_bf16_d256, bf16, 256, FA_WARPS_D256, FA_KEYS_D256, 1)
ATTENTION_FA_KERNEL(attention_fa_f16_d64, f16, 64, FA_WARPS_D64, FA_KEYS, 2)
ATTENTION_FA_KERNEL(attention_fa_f16_d128, f16, 128, FA_WARPS, FA_KEYS, 2)
ATTENTION_FA_KERNEL(attention_fa_f16_d256, f16, 256, FA_WARPS_D256, FA_KEYS_D256, 1)

// fp32 -> T, rows of cols values (cols % 4 == 0) ld floats apart in x (cols, or more for a column block of the
// fused q/k/v product), packed in y; 4 per thread with 16-byte loads: the half copies of q, k, v the kernels above
// read. 0.09-0.11 ms for q, k, v at 8192 tokens x 48 heads of 128 on an H100, where the scalar to_T_parts of
// gemm.cu (one part) took 0.16-0.18 ms (NOTES, "Attention").
template <typename T>
__device__ __forceinline__ void to_half_values(const float* __restrict__ x, T* __restrict__ y, long long n, int cols,
                                               long long ld) {
    long long i = 4 * ((long long)blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) return;
    long long r = i / cols;
    float4 f = *reinterpret_cast<const float4*>(x + r * ld + (i - r * cols));
    *reinterpret_cast<uint2*>(y + i) = make_uint2(pack_half2<T>(f.x, f.y), pack_half2<T>(f.z, f.w));
}
extern "C" __global__ void to_half_bf16(const float* __restrict__ x, bf16* __restrict__ y, long long n, int cols,
                                        long long ld) {
    to_half_values(x, y, n, cols, ld);
}
extern "C" __global__ void to_half_f16(const float* __restrict__ x, f16* __restrict__ y, long long n, int cols,
                                       long long ld) {
    to_half_values(x, y, n, cols, ld);
}

// The same kernels on Hopper's wgmma, producer and consumer warpgroups (sm_90a).
#include "attention_sm90.cu"
