// Causal grouped-query attention over packed variable-length sequences, FlashAttention-style: keys and
// values stream through shared memory in tiles with an online softmax, so no T x T score matrix exists.
// CPU twin: CpuBackend.attention. fp32 on CUDA cores.
//
// One block = 64 query rows of one sequence and one head, two threads per row, each holding half of the
// row's q and output in registers. For every key tile (32 keys in shared memory, read as broadcasts) a thread
// pair scores all 32 keys (half a dot product each, summed with one shuffle), rescales its accumulator once
// per tile and adds the tile's values. Masked keys (after the row, or outside the sliding window) score -inf.
#include "common.cuh"

// ATT_ROWS, ATT_KEYS and the launch geometry: constants.cuh

// tiles: per block (sequence start, sequence end, first query row), absolute rows of q/k/v.
// DH: registers per thread for its half of head_dim (a compile-time bound; headDim / 2 <= DH).
template <int DH>
__device__ __forceinline__ void attention_rows(const float* __restrict__ q, const float* __restrict__ k,
                                               const float* __restrict__ v, float* __restrict__ out,
                                               const int* __restrict__ tiles, int numHeads, int numKvHeads,
                                               int headDim, int window, float scale) {
    extern __shared__ __align__(16) float smem[];
    float* sK = smem;
    float* sV = smem + ATT_KEYS * headDim;
    int seqStart = tiles[3 * blockIdx.x], seqEnd = tiles[3 * blockIdx.x + 1], q0 = tiles[3 * blockIdx.x + 2];
    int head = blockIdx.y, kvHead = head / (numHeads / numKvHeads);
    int qCols = numHeads * headDim, kvCols = numKvHeads * headDim;
    int qEnd = min(q0 + ATT_ROWS, seqEnd);
    int row = q0 + (threadIdx.x >> 1);
    int half = headDim / 2;
    int d0 = (threadIdx.x & 1) * half;
    bool active = row < qEnd;

    float qv[DH], acc[DH];
#pragma unroll
    for (int d = 0; d < DH; d++) {
        qv[d] = active && d < half ? q[(size_t)row * qCols + head * headDim + d0 + d] * scale : 0.f;
        acc[d] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    int lo = window > 0 ? max(seqStart, row - window + 1) : seqStart;
    int kFirst = window > 0 ? max(seqStart, q0 - window + 1) : seqStart;
    int kLast = qEnd - 1;

    for (int kt = kFirst; kt <= kLast; kt += ATT_KEYS) {
        int n = min(ATT_KEYS, kLast - kt + 1);
        __syncthreads();
        for (int i = threadIdx.x * 4; i < n * headDim; i += blockDim.x * 4) {
            int j = i / headDim, d = i % headDim;
            size_t at = (size_t)(kt + j) * kvCols + kvHead * headDim + d;
            *reinterpret_cast<float4*>(&sK[i]) = *reinterpret_cast<const float4*>(&k[at]);
            *reinterpret_cast<float4*>(&sV[i]) = *reinterpret_cast<const float4*>(&v[at]);
        }
        __syncthreads();
        float s[ATT_KEYS];
        float tileMax = -INFINITY;
#pragma unroll
        for (int j = 0; j < ATT_KEYS; j++) {
            float dot = 0.f;
            if (j < n) {
                const float* kr = &sK[j * headDim + d0];
#pragma unroll
                for (int d = 0; d < DH; d += 4) {
                    if (d < half) {
                        float4 kk = *reinterpret_cast<const float4*>(&kr[d]);
                        dot += qv[d] * kk.x + qv[d + 1] * kk.y + qv[d + 2] * kk.z + qv[d + 3] * kk.w;
                    }
                }
            }
            dot += __shfl_xor_sync(0xffffffffu, dot, 1);
            int key = kt + j;
            bool visible = active && j < n && key <= row && key >= lo;
            s[j] = visible ? dot : -INFINITY;
            tileMax = fmaxf(tileMax, s[j]);
        }
        if (tileMax == -INFINITY) continue;
        float mNew = fmaxf(m, tileMax);
        float correction = __expf(m - mNew);
        l *= correction;
#pragma unroll
        for (int d = 0; d < DH; d++) acc[d] *= correction;
#pragma unroll
        for (int j = 0; j < ATT_KEYS; j++) {
            if (s[j] == -INFINITY) continue;
            float p = __expf(s[j] - mNew);
            l += p;
            const float* vr = &sV[j * headDim + d0];
#pragma unroll
            for (int d = 0; d < DH; d += 4) {
                if (d < half) {
                    float4 vv = *reinterpret_cast<const float4*>(&vr[d]);
                    acc[d] += p * vv.x;
                    acc[d + 1] += p * vv.y;
                    acc[d + 2] += p * vv.z;
                    acc[d + 3] += p * vv.w;
                }
            }
        }
        m = mNew;
    }
    if (active) {
#pragma unroll
        for (int d = 0; d < DH; d++)
            if (d < half) out[(size_t)row * qCols + head * headDim + d0 + d] = acc[d] / l;
    }
}

#define ATTENTION_KERNEL(NAME, DH)                                                                         \
    extern "C" __global__ void __launch_bounds__(ATTENTION_F32_THREADS)                                     \
    NAME(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,             \
         float* __restrict__ out, const int* __restrict__ tiles, int numHeads, int numKvHeads, int headDim, \
         int window, float scale) {                                                                         \
        attention_rows<DH>(q, k, v, out, tiles, numHeads, numKvHeads, headDim, window, scale);              \
    }
// head_dim up to 32, 64, 128 and 256 (head_dim % 8 == 0: float4 halves)
ATTENTION_KERNEL(attention_f32_d32, 16)
ATTENTION_KERNEL(attention_f32_d64, 32)
ATTENTION_KERNEL(attention_f32_d128, 64)
ATTENTION_KERNEL(attention_f32_d256, 128)
