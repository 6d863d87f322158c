// Causal grouped-query attention on tensor cores (bf16 and fp16 precision: T of common.cuh): the
// FlashAttention-2 scheme with mma.sync m16n8k16, for head_dim up to 128. CPU twin: CpuBackend.attention; the
// fp32 kernel (attention.cu) serves split-bf16 precision and larger heads.
//
// One block = 64 query rows of one sequence and one head, 4 warps of 16 rows. Q (scaled, rounded to T) stays in
// registers as A fragments. Per tile of 64 keys: K and V go to shared memory as T; S = Q K^T (fp32
// accumulators), masked, online softmax per row (max and sum across the 4 threads of a quad), then P, rounded
// to T, is reused straight from S's accumulator registers as the A operand of O += P V (V read with
// ldmatrix.trans). D: head_dim rounded up to 32, 64 or 128; the padding is zero in Q, K and V.
#include "common.cuh"

// TC_ROWS, TC_KEYS and the launch geometry: constants.cuh

// ldmatrix_x4 and mma_m16n8k16: gemm.cu.
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned* r, const void* smem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
// rows [0, count) of a [rows, cols] fp32 matrix, columns [c0, c0 + headDim), times scale, to smem rows of D
// values of T (zero beyond count or headDim).
template <int D, typename T>
__device__ __forceinline__ void stage_rows(T* dst, const float* __restrict__ src, int first, int count, int cols,
                                           int c0, int headDim, float scale) {
    constexpr int LD = D + 8;
    for (int i = threadIdx.x; i < TC_ROWS * D / 4; i += blockDim.x) {
        int r = i / (D / 4), c = (i % (D / 4)) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < count && c < headDim) v = *reinterpret_cast<const float4*>(&src[(size_t)(first + r) * cols + c0 + c]);
        unsigned* d = reinterpret_cast<unsigned*>(&dst[r * LD + c]);
        d[0] = pack_half2<T>(v.x * scale, v.y * scale);
        d[1] = pack_half2<T>(v.z * scale, v.w * scale);
    }
}

template <int D, typename T>
__device__ __forceinline__ void attention_tc_rows(const float* __restrict__ q, const float* __restrict__ k,
                                                  const float* __restrict__ v, float* __restrict__ out,
                                                  const int* __restrict__ tiles, int numHeads, int numKvHeads,
                                                  int headDim, int window, float scale) {
    constexpr int LD = D + 8;  // 16 bytes of padding: ldmatrix's 8 row addresses hit different banks
    extern __shared__ __align__(16) unsigned char att_smem[];
    T* sQ = reinterpret_cast<T*>(att_smem);
    T* sK = sQ + TC_ROWS * LD;
    T* sV = sK + TC_KEYS * LD;
    int seqStart = tiles[3 * blockIdx.x], seqEnd = tiles[3 * blockIdx.x + 1], q0 = tiles[3 * blockIdx.x + 2];
    int head = blockIdx.y, kvHead = head / (numHeads / numKvHeads);
    int qCols = numHeads * headDim, kvCols = numKvHeads * headDim;
    int qEnd = min(q0 + TC_ROWS, seqEnd);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    stage_rows<D>(sQ, q, q0, qEnd - q0, qCols, head * headDim, headDim, scale);
    __syncthreads();
    unsigned qa[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldmatrix_x4(qa[kk], &sQ[(warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + kk * 16 + 8 * (lane >> 4)]);

    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[i][e] = 0.f;
    int row[2] = {q0 + warp * 16 + (lane >> 2), q0 + warp * 16 + (lane >> 2) + 8};
    int lo[2];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; r++) lo[r] = window > 0 ? max(seqStart, row[r] - window + 1) : seqStart;
    int kFirst = window > 0 ? max(seqStart, q0 - window + 1) : seqStart;
    int kLast = qEnd - 1;

    for (int kt = kFirst; kt <= kLast; kt += TC_KEYS) {
        int n = min(TC_KEYS, kLast - kt + 1);
        __syncthreads();  // the previous tile's K and V are no longer read
        stage_rows<D>(sK, k, kt, n, kvCols, kvHead * headDim, headDim, 1.f);
        stage_rows<D>(sV, v, kt, n, kvCols, kvHead * headDim, headDim, 1.f);
        __syncthreads();
        float s[TC_KEYS / 8][4];
#pragma unroll
        for (int t = 0; t < TC_KEYS / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[t][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
            for (int nj = 0; nj < TC_KEYS / 16; nj++) {
                unsigned b[4];
                ldmatrix_x4(b, &sK[(nj * 16 + (lane & 7) + 8 * (lane >> 4)) * LD + kk * 16 + 8 * ((lane >> 3) & 1)]);
                mma_m16n8k16<T>(s[2 * nj], qa[kk], b);
                mma_m16n8k16<T>(s[2 * nj + 1], qa[kk], b + 2);
            }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int t = 0; t < TC_KEYS / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int r = e >> 1;
                int key = kt + t * 8 + 2 * (lane & 3) + (e & 1);
                bool visible = row[r] < qEnd && key < kt + n && key <= row[r] && key >= lo[r];
                s[t][e] = visible ? s[t][e] : -INFINITY;
                mx[r] = fmaxf(mx[r], s[t][e]);
            }
        float corr[2], mUse[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            float mNew = fmaxf(m[r], mx[r]);
            mUse[r] = mNew == -INFINITY ? 0.f : mNew;  // a row with nothing visible yet: p = 0, no rescaling
            corr[r] = __expf(m[r] - mUse[r]);
            m[r] = mNew;
            l[r] *= corr[r];
        }
#pragma unroll
        for (int t = 0; t < TC_KEYS / 8; t++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = __expf(s[t][e] - mUse[e >> 1]);  // exp(-inf) = 0 for masked keys
                s[t][e] = p;
                l[e >> 1] += p;
            }
#pragma unroll
        for (int i = 0; i < D / 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[i][e] *= corr[e >> 1];
#pragma unroll
        for (int j = 0; j < TC_KEYS / 16; j++) {
            unsigned a[4] = {pack_half2<T>(s[2 * j][0], s[2 * j][1]), pack_half2<T>(s[2 * j][2], s[2 * j][3]),
                             pack_half2<T>(s[2 * j + 1][0], s[2 * j + 1][1]), pack_half2<T>(s[2 * j + 1][2], s[2 * j + 1][3])};
#pragma unroll
            for (int dn = 0; dn < D / 16; dn++) {
                unsigned b[4];
                ldmatrix_x4_trans(b, &sV[(j * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + dn * 16 + 8 * (lane >> 4)]);
                mma_m16n8k16<T>(o[2 * dn], a, b);
                mma_m16n8k16<T>(o[2 * dn + 1], a, b + 2);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int i = 0; i < D / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = e >> 1;
            int d = i * 8 + 2 * (lane & 3) + (e & 1);
            if (row[r] < qEnd && d < headDim) out[(size_t)row[r] * qCols + head * headDim + d] = o[i][e] / l[r];
        }
}

#define ATTENTION_TC_KERNEL(NAME, T, D)                                                                    \
    extern "C" __global__ void __launch_bounds__(ATTENTION_TC_THREADS)                                      \
    NAME(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,             \
         float* __restrict__ out, const int* __restrict__ tiles, int numHeads, int numKvHeads, int headDim, \
         int window, float scale) {                                                                         \
        attention_tc_rows<D, T>(q, k, v, out, tiles, numHeads, numKvHeads, headDim, window, scale);            \
    }
// head_dim up to 32, 64 and 128 (head_dim % 8 == 0)
ATTENTION_TC_KERNEL(attention_bf16_d32, bf16, 32)
ATTENTION_TC_KERNEL(attention_bf16_d64, bf16, 64)
ATTENTION_TC_KERNEL(attention_bf16_d128, bf16, 128)
ATTENTION_TC_KERNEL(attention_f16_d32, f16, 32)
ATTENTION_TC_KERNEL(attention_f16_d64, f16, 64)
ATTENTION_TC_KERNEL(attention_f16_d128, f16, 128)
