// Causal grouped-query attention over packed variable-length sequences, FlashAttention-style: keys and
// values stream through shared memory in tiles with an online softmax, so no T x T score matrix exists.
// CPU twin: CpuBackend.attention. fp32 throughout (CUDA cores): at scoring lengths attention is a few percent
// of the FLOPs of the expert layers.
//
// One block = 64 query rows of one sequence and one head; 4 warps, each owning 16 of those rows in turn.
// Per key tile (32 keys): lane j scores key j for the warp's current row, the warp updates the row's running
// max and sum, then every lane accumulates its head_dim / 32 output columns.
#include "common.cuh"

#define ATT_ROWS 64
#define ATT_KEYS 32
#define ATT_MAX_HEAD_DIM 256

// tiles: per block (sequence start, sequence end, first query row), all absolute rows of q/k/v.
extern "C" __global__ void __launch_bounds__(128)
attention_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
              float* __restrict__ out, const int* __restrict__ tiles, int numHeads, int numKvHeads,
              int headDim, int window, float scale) {
    extern __shared__ float smem[];
    int stride = headDim + 1;  // padding: lanes reading one column of different key rows hit different banks
    float* sK = smem;
    float* sV = smem + ATT_KEYS * stride;
    int seqStart = tiles[3 * blockIdx.x], seqEnd = tiles[3 * blockIdx.x + 1], q0 = tiles[3 * blockIdx.x + 2];
    int head = blockIdx.y, kvHead = head / (numHeads / numKvHeads);
    int qCols = numHeads * headDim, kvCols = numKvHeads * headDim;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int qEnd = min(q0 + ATT_ROWS, seqEnd);
    int perLane = (headDim + 31) / 32;

    // keys needed by this block: from the first query's window start to the last query
    int kFirst = window > 0 ? max(seqStart, q0 - window + 1) : seqStart;
    int kLast = qEnd - 1;

    // each warp keeps state for its 16 rows
    float rowMax[16], rowSum[16], acc[16][ATT_MAX_HEAD_DIM / 32];
#pragma unroll
    for (int r = 0; r < 16; r++) {
        rowMax[r] = -INFINITY;
        rowSum[r] = 0.f;
#pragma unroll
        for (int d = 0; d < ATT_MAX_HEAD_DIM / 32; d++) acc[r][d] = 0.f;
    }
    for (int kt = kFirst; kt <= kLast; kt += ATT_KEYS) {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_KEYS * headDim; i += blockDim.x) {
            int j = i / headDim, d = i % headDim;
            int key = kt + j;
            bool ok = key <= kLast;
            sK[j * stride + d] = ok ? k[(size_t)key * kvCols + kvHead * headDim + d] : 0.f;
            sV[j * stride + d] = ok ? v[(size_t)key * kvCols + kvHead * headDim + d] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 16; r++) {
            int row = q0 + warp * 16 + r;
            if (row >= qEnd) break;
            int key = kt + lane;
            int lo = window > 0 ? max(seqStart, row - window + 1) : seqStart;
            bool visible = key <= row && key >= lo;
            float s = -INFINITY;
            if (visible) {
                const float* qr = q + (size_t)row * qCols + head * headDim;
                float dot = 0.f;
                for (int d = 0; d < headDim; d++) dot += qr[d] * sK[lane * stride + d];
                s = dot * scale;
            }
            float tileMax = warp_max(s);
            if (tileMax == -INFINITY) continue;  // nothing visible in this tile for this row
            float newMax = fmaxf(rowMax[r], tileMax);
            float correction = __expf(rowMax[r] - newMax);
            float p = visible ? __expf(s - newMax) : 0.f;
            rowSum[r] = rowSum[r] * correction + warp_sum(p);
            rowMax[r] = newMax;
#pragma unroll
            for (int dd = 0; dd < ATT_MAX_HEAD_DIM / 32; dd++) {
                if (dd >= perLane) break;
                int d = lane + dd * 32;
                float o = acc[r][dd] * correction;
                if (d < headDim) {
                    for (int j = 0; j < ATT_KEYS; j++) o += __shfl_sync(0xffffffffu, p, j) * sV[j * stride + d];
                } else {
                    for (int j = 0; j < ATT_KEYS; j++) __shfl_sync(0xffffffffu, p, j);
                }
                acc[r][dd] = o;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 16; r++) {
        int row = q0 + warp * 16 + r;
        if (row >= qEnd) break;
#pragma unroll
        for (int dd = 0; dd < ATT_MAX_HEAD_DIM / 32; dd++) {
            int d = lane + dd * 32;
            if (dd < perLane && d < headDim) out[(size_t)row * qCols + head * headDim + d] = acc[r][dd] / rowSum[r];
        }
    }
}
