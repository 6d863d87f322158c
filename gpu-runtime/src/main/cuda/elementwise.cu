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

// Rotary embedding, rotate-half form, in place: one thread per (row, head, i < half).
// invFreq is computed on the host exactly as transformers does (fp32), so both backends rotate alike.
// copy (when not null) also receives the rotated values rounded to T: the half-precision q and k that
// attention_fa.cu reads, written in the same pass.
template <typename T>
__device__ __forceinline__ void rope_rows(float* __restrict__ x, T* __restrict__ copy, const int* __restrict__ pos,
                                          const float* __restrict__ invFreq, int rows, int cols, int headDim) {
    int half = headDim / 2;
    int heads = cols / headDim;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long total = (long long)rows * heads * half;
    if (idx >= total) return;
    int i = idx % half;
    int h = (idx / half) % heads;
    int r = idx / ((long long)half * heads);
    float angle = (float)pos[r] * invFreq[i];
    float c, s;
    sincosf(angle, &s, &c);
    size_t at = (size_t)r * cols + h * headDim;
    float* p = x + at;
    float a = p[i], b = p[i + half];
    float ra = a * c - b * s, rb = b * c + a * s;
    p[i] = ra;
    p[i + half] = rb;
    if (copy != nullptr) {
        copy[at + i] = to_half<T>(ra);
        copy[at + i + half] = to_half<T>(rb);
    }
}
extern "C" __global__ void rope_f32(float* __restrict__ x, const int* __restrict__ pos,
                                    const float* __restrict__ invFreq, int rows, int cols, int headDim) {
    rope_rows<bf16>(x, nullptr, pos, invFreq, rows, cols, headDim);
}
extern "C" __global__ void rope_half_bf16(float* __restrict__ x, bf16* __restrict__ copy, const int* __restrict__ pos,
                                          const float* __restrict__ invFreq, int rows, int cols, int headDim) {
    rope_rows(x, copy, pos, invFreq, rows, cols, headDim);
}
extern "C" __global__ void rope_half_f16(float* __restrict__ x, f16* __restrict__ copy, const int* __restrict__ pos,
                                         const float* __restrict__ invFreq, int rows, int cols, int headDim) {
    rope_rows(x, copy, pos, invFreq, rows, cols, headDim);
}

extern "C" __global__ void clamp_f32(float* __restrict__ x, long long n, float limit) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fmaxf(-limit, fminf(limit, x[i]));
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

extern "C" __global__ void fill_f32(float* __restrict__ x, long long n, float value) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = value;
}
