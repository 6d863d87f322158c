// Row-wise and element-wise kernels of the decoder. CPU twins: CpuBackend.embed, rmsNorm, rope, clamp,
// addInPlace, addSigmoidGated. Activations are fp32 row-major [rows, cols].
#include "common.cuh"

// out[t, :] = table[ids[t], :]; one block per row. Table rows hold wParts copies (hi, then lo: see gemm.cu) of
// T (bf16 or fp16: embed_bf16, embed_f16).
template <typename T>
__device__ __forceinline__ void embed_rows(const T* table, const int* ids, float* out, int rows, int cols, int wParts) {
    int t = blockIdx.x;
    if (t >= rows) return;
    const T* src = table + (size_t)ids[t] * cols * wParts;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
        out[(size_t)t * cols + i] = half_to_float(src[i]) + (wParts == 2 ? half_to_float(src[cols + i]) : 0.f);
}
extern "C" __global__ void embed_bf16(const bf16* __restrict__ table, const int* __restrict__ ids,
                                      float* __restrict__ out, int rows, int cols, int wParts) {
    embed_rows(table, ids, out, rows, cols, wParts);
}
extern "C" __global__ void embed_f16(const f16* __restrict__ table, const int* __restrict__ ids,
                                     float* __restrict__ out, int rows, int cols, int wParts) {
    embed_rows(table, ids, out, rows, cols, wParts);
}

// RMSNorm of each run of `group` columns: one block per (row, group). out may alias x.
extern "C" __global__ void rmsnorm_f32(const float* __restrict__ x, const float* __restrict__ w,
                                       float* __restrict__ out, int groups, int group, float eps) {
    __shared__ float scratch[32];
    int g = blockIdx.x;
    if (g >= groups) return;
    const float* row = x + (size_t)g * group;
    float ss = 0.f;
    for (int i = threadIdx.x; i < group; i += blockDim.x) ss += row[i] * row[i];
    ss = block_sum(ss, scratch);
    float scale = rsqrtf(ss / group + eps);
    for (int i = threadIdx.x; i < group; i += blockDim.x) out[(size_t)g * group + i] = w[i] * (row[i] * scale);
}

// Whole-row RMSNorm that can also finish a residual add and feed the matrix products: one block per row; out may
// be x (q and k's whole-projection norms run in place).
//   delta != null:  x += delta first (stored back: the residual stream), then the norm of the new x
//   out    != null:  out = w * x / sqrt(mean(x^2) + eps) in fp32 (for ops that read fp32: routers, gates)
//   half   != null:  the same values rounded to T, as to_T_parts writes a GEMM input of one part, so the linear
//                    layers, experts and lm_head read them without converting again (the same bits either way)
// CPU twins: CpuBackend.addInPlace then CpuBackend.rmsNorm (Backend.addRmsNorm's default). Rows of a multiple of
// 4 columns go 16 bytes at a time; the row is read twice (sum of squares, then the scaled writes), the second
// time from L1/L2.
template <typename T>
__device__ __forceinline__ void rmsnorm_row(float* x, const float* __restrict__ delta,
                                            const float* __restrict__ w, float* out,
                                            T* __restrict__ half, int rows, int cols, float eps) {
    __shared__ float scratch[32];
    int r = blockIdx.x;
    if (r >= rows) return;
    float* row = x + (size_t)r * cols;
    const float* d = delta ? delta + (size_t)r * cols : nullptr;
    float ss = 0.f;
    bool vec = (cols & 3) == 0;
    if (vec) {
        for (int i = threadIdx.x * 4; i < cols; i += blockDim.x * 4) {
            float4 v = *reinterpret_cast<const float4*>(row + i);
            if (d) {
                float4 e = *reinterpret_cast<const float4*>(d + i);
                v.x += e.x; v.y += e.y; v.z += e.z; v.w += e.w;
                *reinterpret_cast<float4*>(row + i) = v;
            }
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = row[i];
            if (d) row[i] = v = v + d[i];
            ss += v * v;
        }
    }
    ss = block_sum(ss, scratch);  // its barriers also order the residual's stores before the reads below
    float scale = rsqrtf(ss / cols + eps);
    float* o = out ? out + (size_t)r * cols : nullptr;
    T* hrow = half ? half + (size_t)r * cols : nullptr;
    if (vec) {
        for (int i = threadIdx.x * 4; i < cols; i += blockDim.x * 4) {
            float4 v = *reinterpret_cast<const float4*>(row + i);
            float4 g = *reinterpret_cast<const float4*>(w + i);
            float4 y = make_float4(g.x * (v.x * scale), g.y * (v.y * scale), g.z * (v.z * scale), g.w * (v.w * scale));
            if (o) *reinterpret_cast<float4*>(o + i) = y;
            if (hrow) {
                __align__(8) T q[4] = {to_half<T>(y.x), to_half<T>(y.y), to_half<T>(y.z), to_half<T>(y.w)};
                *reinterpret_cast<uint2*>(hrow + i) = *reinterpret_cast<uint2*>(q);
            }
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            float y = w[i] * (row[i] * scale);
            if (o) o[i] = y;
            if (hrow) hrow[i] = to_half<T>(y);
        }
    }
}
extern "C" __global__ void rmsnorm_rows_bf16(float* x, const float* __restrict__ delta,
                                             const float* __restrict__ w, float* out,
                                             bf16* __restrict__ half, int rows, int cols, float eps) {
    rmsnorm_row(x, delta, w, out, half, rows, cols, eps);
}
extern "C" __global__ void rmsnorm_rows_f16(float* x, const float* __restrict__ delta,
                                            const float* __restrict__ w, float* out,
                                            f16* __restrict__ half, int rows, int cols, float eps) {
    rmsnorm_row(x, delta, w, out, half, rows, cols, eps);
}

// Rotary embedding in place: one thread per (row, head, i < headDim / 2), heads of headDim columns side by side.
// The first `rot` columns of each head rotate (all of them but for GLM-4.5's partial rotary): pair i < rot / 2 is
// (i, i + rot / 2), transformers' rotate_half, or (2i, 2i + 1) where `interleaved` (DeepSeek's rope_interleave);
// cos and sin are multiplied by `factor` (YaRN's attention factor, else 1). Rows of x are ld floats apart (cols, or
// more for a column block of a wider activation: the fused q/k/v product's views); copy's are cols apart.
// invFreq is computed on the host exactly as transformers does (fp32, Rope.inverseFrequencies), so both backends
// rotate alike. copy (when not null) also receives the row rounded to T, the columns past rot as they are: the
// half-precision q and k that attention_fa.cu reads, written in the same pass. CPU twin: CpuBackend.rope.
template <typename T>
__device__ __forceinline__ void rope_rows(float* __restrict__ x, T* __restrict__ copy, const int* __restrict__ pos,
                                          const float* __restrict__ invFreq, int rows, int cols, long long ld,
                                          int headDim, int rot, int interleaved, float factor, int keep = 1) {
    int half = headDim / 2;
    int heads = cols / headDim;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long total = (long long)rows * heads * half;
    if (idx >= total) return;
    int i = idx % half;
    int h = (idx / half) % heads;
    int r = idx / ((long long)half * heads);
    float* p = x + (size_t)r * ld + h * headDim;
    size_t at = (size_t)r * cols + h * headDim;
    if (i >= rot / 2) {  // two columns past the rotated ones: only the copy changes
        if (copy != nullptr) {
            int j = rot + 2 * (i - rot / 2);
            copy[at + j] = to_half<T>(p[j]);
            if (j + 1 < headDim) copy[at + j + 1] = to_half<T>(p[j + 1]);
        }
        return;
    }
    float angle = (float)pos[r] * invFreq[i];
    float c, s;
    sincosf(angle, &s, &c);
    c *= factor;
    s *= factor;
    int ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + rot / 2;
    float a = p[ia], b = p[ib];
    float ra = a * c - b * s, rb = b * c + a * s;
    if (keep) {  // 0: only attention reads q / k next, from the copy (Backend.ropeForAttention)
        p[ia] = ra;
        p[ib] = rb;
    }
    if (copy != nullptr) {
        copy[at + ia] = to_half<T>(ra);
        copy[at + ib] = to_half<T>(rb);
    }
}
extern "C" __global__ void rope_f32(float* __restrict__ x, const int* __restrict__ pos,
                                    const float* __restrict__ invFreq, int rows, int cols, long long ld, int headDim,
                                    int rot, int interleaved, float factor) {
    rope_rows<bf16>(x, nullptr, pos, invFreq, rows, cols, ld, headDim, rot, interleaved, factor);
}
extern "C" __global__ void rope_half_bf16(float* __restrict__ x, bf16* __restrict__ copy, const int* __restrict__ pos,
                                          const float* __restrict__ invFreq, int rows, int cols, long long ld,
                                          int headDim, int rot, int interleaved, float factor, int keep) {
    rope_rows(x, copy, pos, invFreq, rows, cols, ld, headDim, rot, interleaved, factor, keep);
}
extern "C" __global__ void rope_half_f16(float* __restrict__ x, f16* __restrict__ copy, const int* __restrict__ pos,
                                         const float* __restrict__ invFreq, int rows, int cols, long long ld,
                                         int headDim, int rot, int interleaved, float factor, int keep) {
    rope_rows(x, copy, pos, invFreq, rows, cols, ld, headDim, rot, interleaved, factor, keep);
}

extern "C" __global__ void clamp_f32(float* __restrict__ x, long long n, float limit) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fmaxf(-limit, fminf(limit, x[i]));
}

// x *= factor (Granite's embedding and residual multipliers). CPU twin: CpuBackend.scale.
extern "C" __global__ void scale_f32(float* __restrict__ x, long long n, float factor) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= factor;
}

extern "C" __global__ void add_f32(float* __restrict__ acc, const float* __restrict__ x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) acc[i] += x[i];
}

// acc[r, :] += sigmoid(gate[r]) * y[r, :] (the shared expert's gate).
extern "C" __global__ void add_sigmoid_gated_f32(float* __restrict__ acc, const float* __restrict__ y,
                                                 const float* __restrict__ gate, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * cols) return;
    int r = i / cols;
    acc[i] += y[i] / (1.f + __expf(-gate[r]));
}

// dst[r, toFirst + b * toStride + i] = src[r, fromFirst + b * fromStride + i] for b < count, i < width: splits,
// joins and broadcasts (stride 0) of heads (Backend.copyColumns: DeepSeek's latent attention). One thread per
// (row, block, column); rows of src are srcCols apart, of dst dstCols. CPU twin: CpuBackend.copyColumns.
extern "C" __global__ void copy_columns_f32(const float* __restrict__ src, int srcCols, int fromFirst, int fromStride,
                                            float* __restrict__ dst, int dstCols, int toFirst, int toStride, int rows,
                                            int count, int width) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)rows * count * width) return;
    int i = idx % width;
    int b = (idx / width) % count;
    long long r = idx / ((long long)width * count);
    dst[r * dstCols + toFirst + (long long)b * toStride + i] = src[r * srcCols + fromFirst + (long long)b * fromStride + i];
}

extern "C" __global__ void fill_f32(float* __restrict__ x, long long n, float value) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = value;
}


// q, k = rope(rmsnorm(x)) in one pass (Backend.rmsNormRope): RMSNorm over each run of `group` columns (the whole
// projection, or a head), then the rotate-half rotary embedding on each head of headDim columns, in place, the
// rotated values also rounded to T into `copy` (the half-precision q and k attention_fa.cu reads). One block per
// row; the row is staged in shared memory (cols floats, then one scale per group), so it is read once from DRAM
// where the two kernels it replaces (rmsnorm_f32, rope_half_T) read it twice and wrote it twice. Rows of x are ld
// floats apart (as in rope_rows), copy's cols. Needs cols, ld and group multiples of 4 (16-byte loads). CPU twins:
// CpuBackend.rmsNorm then CpuBackend.rope.
template <typename T>
__device__ __forceinline__ void rmsnorm_rope_row(float* __restrict__ x, const float* __restrict__ w,
                                                 T* __restrict__ copy, const int* __restrict__ pos,
                                                 const float* __restrict__ invFreq, int rows, int cols,
                                                 long long ld, int group, int headDim, float eps, int keep) {
    extern __shared__ float staged[];
    int r = blockIdx.x;
    if (r >= rows) return;
    int groups = cols / group;
    float* scale = staged + cols;
    float* row = x + (size_t)r * ld;
    for (int i = threadIdx.x * 4; i < cols; i += blockDim.x * 4)
        *reinterpret_cast<float4*>(staged + i) = *reinterpret_cast<const float4*>(row + i);
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int g = warp; g < groups; g += warps) {  // one warp per group
        float ss = 0.f;
        for (int i = lane; i < group; i += 32) {
            float v = staged[g * group + i];
            ss += v * v;
        }
        ss = warp_sum(ss);
        if (lane == 0) scale[g] = rsqrtf(ss / group + eps);
    }
    __syncthreads();
    int half = headDim / 2;
    float p = (float)pos[r];
    T* crow = copy + (size_t)r * cols;
    for (int j = threadIdx.x; j < cols / 2; j += blockDim.x) {
        int at = (j / half) * headDim + j % half;
        int i = j % half;
        float a = w[at % group] * (staged[at] * scale[at / group]);
        float b = w[(at + half) % group] * (staged[at + half] * scale[(at + half) / group]);
        float c, s;
        sincosf(p * invFreq[i], &s, &c);
        float ra = a * c - b * s, rb = b * c + a * s;
        if (keep) {  // 0: only attention reads q / k next, from the copy (Backend.rmsNormRopeForAttention)
            row[at] = ra;
            row[at + half] = rb;
        }
        crow[at] = to_half<T>(ra);
        crow[at + half] = to_half<T>(rb);
    }
}
extern "C" __global__ void rmsnorm_rope_bf16(float* __restrict__ x, const float* __restrict__ w,
                                             bf16* __restrict__ copy, const int* __restrict__ pos,
                                             const float* __restrict__ invFreq, int rows, int cols, long long ld,
                                             int group, int headDim, float eps, int keep) {
    rmsnorm_rope_row(x, w, copy, pos, invFreq, rows, cols, ld, group, headDim, eps, keep);
}
extern "C" __global__ void rmsnorm_rope_f16(float* __restrict__ x, const float* __restrict__ w,
                                            f16* __restrict__ copy, const int* __restrict__ pos,
                                            const float* __restrict__ invFreq, int rows, int cols, long long ld,
                                            int group, int headDim, float eps, int keep) {
    rmsnorm_rope_row(x, w, copy, pos, invFreq, rows, cols, ld, group, headDim, eps, keep);
}
