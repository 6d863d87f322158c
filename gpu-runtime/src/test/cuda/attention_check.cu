// Standalone check and benchmark of the half-precision prefill attention (src/main/cuda/attention_fa.cu, mma.sync,
// and attention_sm90.cu, wgmma with producer/consumer warpgroups) against the fp32 kernel (attention.cu, itself
// tested against CpuBackend by CudaBackendTest), and timing of the variants next to the previous tensor-core
// kernel (attention_tc.cu). Not part of the Maven build:
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o attention_check attention_check.cu
//   (then gpu-runtime/bench/attention-run.sh beside it and bench_sdpa.py on the GPU machine)
//   ./attention_check [seed] [check|time|all]
// Correctness: fresh random q, k, v (uniform, seed printed) on packed variable-length batches (lengths 1, 2, 64,
// 77, 128, 129, 300, 513, 1000; for the sm90 kernels also 2048, 1537, 5: many turns of the K/V ring), GQA ratios
// 1, 4 and 8, windows 0 and 100, head dims 64, 128, 256, bf16 and fp16; the output and its 16-bit copy are poisoned
// with NaN before every run; the reference runs in fp32 on the same half-rounded inputs; the 16-bit copy must be
// the fp32 output rounded (bit for bit). One line per case and variant, PASS or FAIL with the errors.
// Timing: CUDA events, 5 warm-ups, median of 20 runs, 8192 tokens of 512- and 2048-token sequences; TFLOP/s
// counts causal FLOPs once: 4 * sum over sequences of L (L + 1) / 2 * D * heads. Last, a table per shape: the
// backend's fa and sm90 kernels side by side.
#include "../../main/cuda/elementwise.cu"
#include "../../main/cuda/gemm.cu"
#include "../../main/cuda/attention.cu"
#include "../../main/cuda/attention_tc.cu"
#include "../../main/cuda/attention_fa.cu"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CK_LAUNCH(what)                                                                              \
    do {                                                                                             \
        cudaError_t e_ = cudaGetLastError();                                                         \
        if (e_ == cudaSuccess) e_ = cudaDeviceSynchronize();                                         \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d: launch %s: %s\n", __FILE__, __LINE__, what, cudaGetErrorString(e_)); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static unsigned long long g_seed;

__global__ void fill_uniform(float* x, long long n, unsigned long long seed, float amp) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned long long z = seed + 0x9E3779B97F4A7C15ull * (unsigned long long)(i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x[i] = amp * ((float)(z >> 40) / (float)(1ull << 24) * 2.f - 1.f);
}
template <typename T> __global__ void half_to_f32(const T* x, float* y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = half_to_float(x[i]);
}
__global__ void fill_nan(float* x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = __int_as_float(0x7fc00000);
}
// 16-bit all-ones: NaN in bf16 and in fp16
__global__ void fill_nan16(uint16_t* x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 0xffffu;
}
// Elements of the 16-bit copy that are not the fp32 output rounded as the kernels round it (to_half).
template <typename T> __global__ void copy_mismatches(const float* out, const T* copy, long long n,
                                                      unsigned long long* count) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    T want = to_half<T>(out[i]);
    if (*reinterpret_cast<const uint16_t*>(&want) != *reinterpret_cast<const uint16_t*>(copy + i)) atomicAdd(count, 1ull);
}
static int blocksFor(long long n, int t) { return (int)((n + t - 1) / t); }

// Shapes beside the backend's (attention_fa.cu instantiates those it launches).
template <typename T, int D, int W, int MT, int KT, int MIN_BLOCKS>
__global__ void __launch_bounds__(32 * W, MIN_BLOCKS)
attention_fa_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                    float* __restrict__ out, T* __restrict__ outHalf, const int* __restrict__ tiles, int numHeads,
                    int numKvHeads, int window, float scaleLog2) {
    attention_fa_rows<T, D, W, MT, KT>(q, k, v, out, outHalf, tiles, numHeads, numKvHeads, window, scaleLog2);
}
// sm90 shapes beside the backend's (attention_sm90.cu instantiates those it launches)
template <typename T, int D, int KT, int STAGES>
__global__ void __launch_bounds__(FA90_THREADS, 1)
attention_fa90_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                      float* __restrict__ out, T* __restrict__ outHalf, const int* __restrict__ tiles, int numHeads,
                      int numKvHeads, int window, float scaleLog2) {
#ifdef MOESCORE_WGMMA
    attention_fa90_rows<T, D, KT, STAGES>(q, k, v, out, outHalf, tiles, numHeads, numKvHeads, window, scaleLog2);
#endif
}

// The sm90 kernels' two products alone, one consumer warpgroup: S = Q K^T (Q rows 0..63 of a 128-row tile, KT keys)
// and O = P V (P given, 64 x KT) through the same loads, descriptors and wgmma wrappers; s [64][KT], o [64][D] fp32.
// Where the whole kernel fails, this says whether the layouts of the products are at fault.
template <typename T, int D, int KT>
__global__ void __launch_bounds__(128) fa90_products(const T* q, const T* k, const T* v, const T* p, float* s,
                                                     float* o) {
#ifdef MOESCORE_WGMMA
    extern __shared__ __align__(16) unsigned char unit_smem[];
    unsigned char* base = (unsigned char*)(((uintptr_t)unit_smem + 1023) & ~(uintptr_t)1023);
    unsigned char* sQ = base;
    unsigned char* sK = sQ + FA_ROWS * D * 2;
    unsigned char* sV = sK + KT * D * 2;
    fa90_load<D, FA_ROWS>(sQ, q, D, 0, 63, threadIdx.x);
    fa90_load<D, KT>(sK, k, D, 0, KT - 1, threadIdx.x);
    fa90_load<D, KT>(sV, v, D, 0, KT - 1, threadIdx.x);
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float acc[KT / 2];
    fa90_qk<T, D, KT>(acc, sQ, sK);
    wgmma_wait<0>();
    fa90_pin(acc);
    for (int n = 0; n < KT / 8; n++)
        for (int e = 0; e < 4; e++)
            s[(16 * warp + (lane >> 2) + 8 * (e >> 1)) * KT + 8 * n + 2 * (lane & 3) + (e & 1)] = acc[4 * n + e];
    unsigned pa[KT / 16][4];
    for (int j = 0; j < KT / 16; j++)
        for (int i = 0; i < 4; i++) {
            int row = 16 * warp + (lane >> 2) + 8 * (i & 1), col = 16 * j + 2 * (lane & 3) + 8 * (i >> 1);
            pa[j][i] = *reinterpret_cast<const unsigned*>(p + row * KT + col);
        }
    float out[D / 2];
    for (int i = 0; i < D / 2; i++) out[i] = 0.f;
    fa90_pv<T, D, KT>(out, pa, sV);
    wgmma_wait<0>();
    fa90_pin(out);
    for (int n = 0; n < D / 8; n++)
        for (int e = 0; e < 4; e++)
            o[(16 * warp + (lane >> 2) + 8 * (e >> 1)) * D + 8 * n + 2 * (lane & 3) + (e & 1)] = out[4 * n + e];
#endif
}
template <typename T> static float hostFloat(T x) {
    if constexpr (is_bf16<T>) return __bfloat162float(x);
    else return __half2float(x);
}
static int failures = 0;
// Fresh random q (128 rows, 64 used), k, v (KT rows), p (64 x KT); S and O against double sums of the same halves.
template <typename T, int D, int KT> static void checkProducts(const char* type) {
    int nq = FA_ROWS * D, nk = KT * D, np = 64 * KT;
    T *q, *k, *v, *p;
    float *f, *s, *o;
    CK(cudaMalloc(&q, nq * 2)); CK(cudaMalloc(&k, nk * 2)); CK(cudaMalloc(&v, nk * 2)); CK(cudaMalloc(&p, np * 2));
    CK(cudaMalloc(&f, nq * 4)); CK(cudaMalloc(&s, 64 * KT * 4)); CK(cudaMalloc(&o, 64 * D * 4));
    T* dst[4] = {q, k, v, p};
    int n[4] = {nq, nk, nk, np}, cols[4] = {D, D, D, KT};
    for (int i = 0; i < 4; i++) {
        fill_uniform<<<blocksFor(n[i], 256), 256>>>(f, n[i], g_seed + 7777ull * (i + 1) + D * 31 + KT, 1.f);
        if constexpr (is_bf16<T>) to_half_bf16<<<blocksFor(n[i] / 4, 256), 256>>>(f, dst[i], n[i], cols[i], cols[i]);
        else to_half_f16<<<blocksFor(n[i] / 4, 256), 256>>>(f, dst[i], n[i], cols[i], cols[i]);
    }
    fill_nan<<<blocksFor(64 * KT, 256), 256>>>(s, 64 * KT);
    fill_nan<<<blocksFor(64 * D, 256), 256>>>(o, 64 * D);
    CK_LAUNCH("products inputs");
    int smem = 1024 + (FA_ROWS + 2 * KT) * D * 2;
    CK(cudaFuncSetAttribute(fa90_products<T, D, KT>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    fa90_products<T, D, KT><<<1, 128, smem>>>(q, k, v, p, s, o);
    CK_LAUNCH("fa90_products");
    std::vector<T> hq(nq), hk(nk), hv(nk), hp(np);
    std::vector<float> hs(64 * KT), ho(64 * D);
    CK(cudaMemcpy(hq.data(), q, nq * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hk.data(), k, nk * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hv.data(), v, nk * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hp.data(), p, np * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hs.data(), s, hs.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ho.data(), o, ho.size() * 4, cudaMemcpyDeviceToHost));
    double err[2] = {0, 0}, norm[2] = {0, 0};
    long long firstBad[2] = {-1, -1};
    for (int r = 0; r < 64; r++) {
        for (int c = 0; c < KT; c++) {
            double ref = 0;
            for (int d = 0; d < D; d++) ref += (double)hostFloat(hq[r * D + d]) * hostFloat(hk[c * D + d]);
            double df = hs[r * KT + c] - ref;
            if (!(std::fabs(df) <= 1e-3 * (1 + std::fabs(ref))) && firstBad[0] < 0) firstBad[0] = r * KT + c;
            err[0] += df * df, norm[0] += ref * ref;
        }
        for (int d = 0; d < D; d++) {
            double ref = 0;
            for (int c = 0; c < KT; c++) ref += (double)hostFloat(hp[r * KT + c]) * hostFloat(hv[c * D + d]);
            double df = ho[r * D + d] - ref;
            if (!(std::fabs(df) <= 1e-3 * (1 + std::fabs(ref))) && firstBad[1] < 0) firstBad[1] = r * D + d;
            err[1] += df * df, norm[1] += ref * ref;
        }
    }
    const char* names[2] = {"S = Q K^T", "O = P V (V transposed)"};
    int width[2] = {KT, D};
    for (int i = 0; i < 2; i++) {
        double rel = std::sqrt(err[i] / norm[i]);
        bool ok = rel < 1e-5 && firstBad[i] < 0;  // fp32 sums of exact products: rounding only
        if (!ok) failures++;
        printf("check %-5s sm90 products d %3d keys %3d %-24s rel %.2e, first off at row %lld col %lld: %s\n", type, D,
               KT, names[i], rel, firstBad[i] < 0 ? -1 : firstBad[i] / width[i],
               firstBad[i] < 0 ? -1 : firstBad[i] % width[i], ok ? "PASS" : "FAIL");
    }
    for (void* x : {(void*)q, (void*)k, (void*)v, (void*)p, (void*)f, (void*)s, (void*)o}) CK(cudaFree(x));
}

template <typename T>
using FaKernel = void (*)(const T*, const T*, const T*, float*, T*, const int*, int, int, int, float);

// One configuration: a kernel, its rows per block, threads and shared memory; sm90: needs compute capability 9.0.
struct Variant {
    std::string name;
    int d, bm, threads, smem;
    void (*launch)(const Variant&, const void*, const void*, const void*, float*, void*, const int*, int, int, int,
                   int, float);
    const void* fn;
    bool sm90;
};
template <typename T>
static void launchFa(const Variant& x, const void* q, const void* k, const void* v, float* out, void* outHalf,
                     const int* tiles, int numTiles, int heads, int kvHeads, int window, float scaleLog2) {
    ((FaKernel<T>)x.fn)<<<numTiles * heads, x.threads, x.smem>>>((const T*)q, (const T*)k, (const T*)v, out,
                                                                  (T*)outHalf, tiles, heads, kvHeads, window,
                                                                  scaleLog2);
}
template <typename T> static Variant variantOf(const char* name, FaKernel<T> fn, int d, int rows, int threads, int smem,
                                               bool sm90 = false) {
    CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return Variant{name, d, rows, threads, smem, launchFa<T>, (const void*)fn, sm90};
}
template <typename T, int D, int W, int MT, int KT, int MINB> static Variant variant(const char* name) {
    using S = FaShape<D, W, MT, KT>;
    return variantOf<T>(name, attention_fa_kernel<T, D, W, MT, KT, MINB>, D, S::QT, S::THREADS, S::template smem<T>());
}
template <typename T, int D, int KT, int STAGES> static Variant variant90(const char* name) {
    return variantOf<T>(name, attention_fa90_kernel<T, D, KT, STAGES>, D, FA_ROWS, FA90_THREADS,
                        ATTENTION_FA90_SHARED_BYTES(D, KT, STAGES), true);
}
// The backend's kernel for head dim D (extern "C", sizes from constants.cuh)
template <typename T> static Variant backendVariant(const char* name, FaKernel<T> fn, int d) {
    int w = d == 256 ? FA_WARPS_D256 : d == 64 ? FA_WARPS_D64 : FA_WARPS, keys = d == 256 ? FA_KEYS_D256 : FA_KEYS;
    return variantOf<T>(name, fn, d, FA_ROWS, 32 * w, ATTENTION_FA_SHARED_BYTES(d, keys));
}
template <typename T> static Variant backendVariant90(const char* name, FaKernel<T> fn, int d) {
    int keys = d == 256 ? FA90_KEYS_D256 : FA90_KEYS, stages = d == 64 ? FA90_STAGES_D64 : FA90_STAGES;
    return variantOf<T>(name, fn, d, FA_ROWS, FA90_THREADS, ATTENTION_FA90_SHARED_BYTES(d, keys, stages), true);
}

// (seqStart, seqEnd, q0) per tile of `rows` query rows; sorted: longest key range first (stable).
static std::vector<int> tileList(const std::vector<int>& offsets, int rows, int window, bool sorted) {
    std::vector<std::array<int, 4>> t;
    for (size_t s = 0; s + 1 < offsets.size(); s++)
        for (int q0 = offsets[s]; q0 < offsets[s + 1]; q0 += rows) {
            int qEnd = std::min(q0 + rows, offsets[s + 1]);
            int kFirst = window > 0 ? std::max(offsets[s], q0 - window + 1) : offsets[s];
            t.push_back({offsets[s], offsets[s + 1], q0, qEnd - kFirst});
        }
    if (sorted) std::stable_sort(t.begin(), t.end(), [](auto& a, auto& b) { return a[3] > b[3]; });
    std::vector<int> flat;
    for (auto& x : t) flat.insert(flat.end(), {x[0], x[1], x[2]});
    return flat;
}

struct Problem {
    std::vector<int> offsets;
    int tokens, heads, kvHeads, d, window;
    float *q, *k, *v;          // fp32 as drawn
    float *qr, *kr, *vr;       // fp32 of the half-rounded values (the reference's inputs)
    void *qh, *kh, *vh;        // half copies
    float *out, *ref;
    void* outHalf;             // the kernels' 16-bit copy of out
    bool bf16;
    double flops() const {
        double f = 0;
        for (size_t s = 0; s + 1 < offsets.size(); s++) {
            double L = offsets[s + 1] - offsets[s];
            f += 4.0 * L * (L + 1) / 2 * d * heads;  // window ignored: the timed shapes have none
        }
        return f;
    }
};

static int g_draw = 0;

template <typename T> static Problem makeProblem(const std::vector<int>& lengths, int heads, int kvHeads, int d, int window) {
    Problem p;
    p.offsets = {0};
    for (int L : lengths) p.offsets.push_back(p.offsets.back() + L);
    p.tokens = p.offsets.back();
    p.heads = heads, p.kvHeads = kvHeads, p.d = d, p.window = window;
    long long nq = (long long)p.tokens * heads * d, nk = (long long)p.tokens * kvHeads * d;
    CK(cudaMalloc(&p.q, nq * 4)); CK(cudaMalloc(&p.k, nk * 4)); CK(cudaMalloc(&p.v, nk * 4));
    CK(cudaMalloc(&p.qr, nq * 4)); CK(cudaMalloc(&p.kr, nk * 4)); CK(cudaMalloc(&p.vr, nk * 4));
    CK(cudaMalloc(&p.qh, nq * 2)); CK(cudaMalloc(&p.kh, nk * 2)); CK(cudaMalloc(&p.vh, nk * 2));
    CK(cudaMalloc(&p.out, nq * 4)); CK(cudaMalloc(&p.ref, nq * 4)); CK(cudaMalloc(&p.outHalf, nq * 2));
    p.bf16 = is_bf16<T>;
    // q and k at amplitude 2: scores spread over several units, so the softmax is peaked and masking shows
    fill_uniform<<<blocksFor(nq, 256), 256>>>(p.q, nq, g_seed + 1000003ull * ++g_draw, 2.f);
    fill_uniform<<<blocksFor(nk, 256), 256>>>(p.k, nk, g_seed + 1000003ull * ++g_draw, 2.f);
    fill_uniform<<<blocksFor(nk, 256), 256>>>(p.v, nk, g_seed + 1000003ull * ++g_draw, 1.f);
    CK_LAUNCH("fill_uniform");
    float* src[3] = {p.q, p.k, p.v};
    float* rnd[3] = {p.qr, p.kr, p.vr};
    void* hal[3] = {p.qh, p.kh, p.vh};
    long long n[3] = {nq, nk, nk};
    int cols[3] = {heads * d, kvHeads * d, kvHeads * d};
    for (int i = 0; i < 3; i++) {
        if constexpr (is_bf16<T>)
            to_half_bf16<<<blocksFor(n[i] / 4, 256), 256>>>(src[i], (bf16*)hal[i], n[i], cols[i], cols[i]);
        else to_half_f16<<<blocksFor(n[i] / 4, 256), 256>>>(src[i], (f16*)hal[i], n[i], cols[i], cols[i]);
        half_to_f32<T><<<blocksFor(n[i], 256), 256>>>((const T*)hal[i], rnd[i], n[i]);
    }
    CK_LAUNCH("to_half");
    return p;
}
static void freeProblem(Problem& p) {
    for (void* x : {(void*)p.q, (void*)p.k, (void*)p.v, (void*)p.qr, (void*)p.kr, (void*)p.vr, p.qh, p.kh, p.vh,
                    (void*)p.out, (void*)p.ref, p.outHalf})
        CK(cudaFree(x));
}

static int* upload(const std::vector<int>& v) {
    int* d;
    CK(cudaMalloc(&d, v.size() * 4));
    CK(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    return d;
}

// fp32 reference (attention.cu) on the half-rounded inputs, into p.ref
static void reference(Problem& p) {
    std::vector<int> t = tileList(p.offsets, ATT_ROWS, p.window, false);
    int* dt = upload(t);
    int smem = 2 * ATT_KEYS * p.d * 4;
    auto kern = p.d <= 64 ? attention_f32_d64 : p.d <= 128 ? attention_f32_d128 : attention_f32_d256;
    CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    kern<<<dim3(t.size() / 3, p.heads), 2 * ATT_ROWS, smem>>>(p.qr, p.kr, p.vr, p.ref, dt, p.heads, p.kvHeads, p.d,
                                                             p.window, 1.f / sqrtf((float)p.d));
    CK_LAUNCH("attention_f32 reference");
    CK(cudaFree(dt));
}

struct Err {
    double rel, maxAbs;
    long long nan, at;
};
static Err compare(const Problem& p) {
    long long n = (long long)p.tokens * p.heads * p.d;
    std::vector<float> o(n), r(n);
    CK(cudaMemcpy(o.data(), p.out, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r.data(), p.ref, n * 4, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    Err e{0, 0, 0, -1};
    for (long long i = 0; i < n; i++) {
        if (std::isnan(o[i])) {
            if (e.nan++ == 0) e.at = i;
            continue;
        }
        double df = (double)o[i] - r[i];
        num += df * df, den += (double)r[i] * r[i];
        if (std::fabs(df) > e.maxAbs && e.nan == 0) e.maxAbs = std::fabs(df), e.at = i;
    }
    e.rel = std::sqrt(num / den);
    return e;
}
static std::string where(const Problem& p, long long at) {
    if (at < 0) return "-";
    int cols = p.heads * p.d;
    int row = at / cols, head = (at % cols) / p.d, dd = at % p.d;
    int s = std::upper_bound(p.offsets.begin(), p.offsets.end(), row) - p.offsets.begin() - 1;
    char b[160];
    snprintf(b, sizeof b, "row %d (seq %d, pos %d), head %d, d %d", row, s, row - p.offsets[s], head, dd);
    return b;
}

static void runVariant(const Variant& x, Problem& p, const int* tiles, int numTiles) {
    x.launch(x, p.qh, p.kh, p.vh, p.out, p.outHalf, tiles, numTiles, p.heads, p.kvHeads, p.window,
             1.4426950408889634f / sqrtf((float)p.d));
}
static void poison(Problem& p) {
    long long n = (long long)p.tokens * p.heads * p.d;
    fill_nan<<<blocksFor(n, 256), 256>>>(p.out, n);
    fill_nan16<<<blocksFor(n, 256), 256>>>((uint16_t*)p.outHalf, n);
}
// Elements of the 16-bit copy that differ from the fp32 output rounded (an unwritten one is NaN: differs)
static unsigned long long copyMismatches(const Problem& p) {
    long long n = (long long)p.tokens * p.heads * p.d;
    unsigned long long* d;
    CK(cudaMalloc(&d, 8));
    CK(cudaMemset(d, 0, 8));
    if (p.bf16) copy_mismatches<bf16><<<blocksFor(n, 256), 256>>>(p.out, (const bf16*)p.outHalf, n, d);
    else copy_mismatches<f16><<<blocksFor(n, 256), 256>>>(p.out, (const f16*)p.outHalf, n, d);
    CK_LAUNCH("copy_mismatches");
    unsigned long long h;
    CK(cudaMemcpy(&h, d, 8, cudaMemcpyDeviceToHost));
    CK(cudaFree(d));
    return h;
}
static bool g_sm90 = false;  // the device runs the sm_90a kernels (compute capability 9.0)

// sm90Only: the case runs the sm90 variants alone (the longer batches added for the K/V ring)
template <typename T> static void checkCase(const std::vector<Variant>& vs, const std::vector<int>& lengths, int heads,
                                            int kvHeads, int d, int window, const char* type, bool sm90Only = false) {
    Problem p = makeProblem<T>(lengths, heads, kvHeads, d, window);
    reference(p);
    for (const Variant& x : vs) {
        if (x.d != d || (x.sm90 && !g_sm90) || (!x.sm90 && sm90Only)) continue;
        std::vector<int> t = tileList(p.offsets, x.bm, window, true);
        int* dt = upload(t);
        poison(p);
        runVariant(x, p, dt, t.size() / 3);
        CK_LAUNCH(x.name.c_str());
        Err e = compare(p);
        unsigned long long copyBad = copyMismatches(p);
        double limit = is_bf16<T> ? 1e-2 : 2e-3;
        bool ok = e.nan == 0 && e.rel < limit && copyBad == 0;
        if (!ok) failures++;
        printf("check %-5s %-24s tokens %5d heads %2d/%2d d %3d window %3d: rel %.2e max|err| %.2e at %s, NaN %lld, "
               "copy mismatches %llu: %s\n", type, x.name.c_str(), p.tokens, heads, kvHeads, d, window, e.rel,
               e.maxAbs, where(p, e.at).c_str(), e.nan, copyBad, ok ? "PASS" : "FAIL");
        CK(cudaFree(dt));
    }
    freeProblem(p);
}

template <typename F> static float medianMs(F f, int warm = 5, int reps = 20) {
    for (int i = 0; i < warm; i++) f();
    CK_LAUNCH("warm-up");
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> ms;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a));
        f();
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float t;
        CK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    CK_LAUNCH("timed");
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

static std::vector<std::string> g_summary;  // per timed shape: fa vs sm90, the backend's kernels
static void timeShape(const std::vector<Variant>& vs, int seqLen, int heads, int kvHeads, int d) {
    const int tokens = 8192;
    std::vector<int> lengths(tokens / seqLen, seqLen);
    Problem p = makeProblem<bf16>(lengths, heads, kvHeads, d, 0);
    reference(p);
    double fl = p.flops();
    long long n = (long long)tokens * heads * d;
    char shape[80];
    snprintf(shape, sizeof shape, "L=%4d heads %2d/%-2d d%-3d", seqLen, heads, kvHeads, d);
    float backendMs[2] = {0, 0};  // the backend's fa and sm90 kernels, tiles sorted
    for (const Variant& x : vs) {
        if (x.d != d || (x.sm90 && !g_sm90)) continue;
        for (int sorted = 1; sorted >= 0; sorted--) {
            if (!sorted && x.name.rfind("backend", 0) != 0) continue;  // the unsorted order for the backend's only
            std::vector<int> t = tileList(p.offsets, x.bm, 0, sorted);
            int* dt = upload(t);
            poison(p);
            float ms = medianMs([&] { runVariant(x, p, dt, t.size() / 3); });
            Err e = compare(p);
            unsigned long long copyBad = copyMismatches(p);
            bool ok = e.nan == 0 && e.rel <= 1e-2 && copyBad == 0;
            if (!ok) failures++;
            printf("time %s  %-24s%s %8.4f ms %7.1f TFLOP/s  (rel %.1e, NaN %lld, copy mismatches %llu%s)\n", shape,
                   x.name.c_str(), sorted ? "" : " unsorted", ms, fl / ms / 1e9, e.rel, e.nan, copyBad,
                   ok ? "" : ": FAIL");
            if (sorted && x.name.rfind("backend", 0) == 0) backendMs[x.sm90] = ms;
            CK(cudaFree(dt));
        }
    }
    if (backendMs[0] > 0 && backendMs[1] > 0) {
        char row[200];
        snprintf(row, sizeof row, "| %4d | %2d/%-2d | %3d | %8.4f | %7.1f | %8.4f | %7.1f | %5.2f |", seqLen, heads,
                 kvHeads, d, backendMs[0], fl / backendMs[0] / 1e9, backendMs[1], fl / backendMs[1] / 1e9,
                 backendMs[0] / backendMs[1]);
        g_summary.push_back(row);
    }
    if (d == 128) {  // attention_tc.cu, fp32 inputs, the list in sequence order as CudaBackend builds it
        std::vector<int> t = tileList(p.offsets, TC_ROWS, 0, false);
        int* dt = upload(t);
        int smem = 3 * TC_ROWS * (d + 8) * 2;
        CK(cudaFuncSetAttribute(attention_bf16_d128, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        float ms = medianMs([&] {
            attention_bf16_d128<<<dim3(t.size() / 3, heads), 128, smem>>>(p.q, p.k, p.v, p.out, dt, heads, kvHeads,
                                                                          d, 0, 1.f / sqrtf((float)d));
        });
        printf("time %s  %-22s %8.4f ms %7.1f TFLOP/s\n", shape, "old attention_tc", ms, fl / ms / 1e9);
        CK(cudaFree(dt));
    }
    {  // the inputs' half copies: plain conversion of q, k, v vs RoPE writing the copies (+ v converted)
        long long nk = (long long)tokens * kvHeads * d;
        float* inv;
        int* pos;
        CK(cudaMalloc(&inv, d / 2 * 4));
        CK(cudaMalloc(&pos, tokens * 4));
        std::vector<float> hinv(d / 2);
        for (int i = 0; i < d / 2; i++) hinv[i] = (float)(1.0 / std::pow(10000.0, 2.0 * i / d));
        std::vector<int> hpos(tokens);
        for (int i = 0; i < tokens; i++) hpos[i] = i % seqLen;
        CK(cudaMemcpy(inv, hinv.data(), d / 2 * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(pos, hpos.data(), tokens * 4, cudaMemcpyHostToDevice));
        float toHalf = medianMs([&] {
            to_half_bf16<<<blocksFor(n / 4, 256), 256>>>(p.q, (bf16*)p.qh, n, heads * d, heads * d);
            to_half_bf16<<<blocksFor(nk / 4, 256), 256>>>(p.k, (bf16*)p.kh, nk, kvHeads * d, kvHeads * d);
            to_half_bf16<<<blocksFor(nk / 4, 256), 256>>>(p.v, (bf16*)p.vh, nk, kvHeads * d, kvHeads * d);
        });
        float conv = medianMs([&] {
            to_bf16_parts<<<blocksFor(n, 256), 256>>>(p.q, (bf16*)p.qh, tokens, heads * d, 1);
            to_bf16_parts<<<blocksFor(nk, 256), 256>>>(p.k, (bf16*)p.kh, tokens, kvHeads * d, 1);
            to_bf16_parts<<<blocksFor(nk, 256), 256>>>(p.v, (bf16*)p.vh, tokens, kvHeads * d, 1);
        });
        float rope = medianMs([&] {
            rope_f32<<<blocksFor(n / 2, 256), 256>>>(p.q, pos, inv, tokens, heads * d, heads * d, d, d, 0, 1.f);
            rope_f32<<<blocksFor(nk / 2, 256), 256>>>(p.k, pos, inv, tokens, kvHeads * d, kvHeads * d, d, d, 0, 1.f);
        });
        float ropeHalf = medianMs([&] {
            rope_half_bf16<<<blocksFor(n / 2, 256), 256>>>(p.q, (bf16*)p.qh, pos, inv, tokens, heads * d, heads * d, d, d, 0,
                                                            1.f, 1);
            rope_half_bf16<<<blocksFor(nk / 2, 256), 256>>>(p.k, (bf16*)p.kh, pos, inv, tokens, kvHeads * d, kvHeads * d, d,
                                                             d, 0, 1.f, 1);
            to_half_bf16<<<blocksFor(nk / 4, 256), 256>>>(p.v, (bf16*)p.vh, nk, kvHeads * d, kvHeads * d);
        });
        printf("time %s  to_half q,k,v %.4f ms; to_bf16_parts q,k,v %.4f ms; rope_f32 q,k %.4f ms; "
               "rope_half q,k + to_half v %.4f ms\n", shape, toHalf, conv, rope, ropeHalf);
        CK(cudaFree(inv));
        CK(cudaFree(pos));
    }
    freeProblem(p);
}

int main(int argc, char** argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);  // every finished case is in the log even if a later kernel hangs
    g_seed = argc > 1 ? strtoull(argv[1], nullptr, 10) : 0;
    if (g_seed == 0) {
        FILE* f = fopen("/dev/urandom", "rb");
        if (f == nullptr || fread(&g_seed, sizeof g_seed, 1, f) != 1) g_seed = 12345;
        if (f) fclose(f);
        g_seed %= 1000000007ull;
    }
    std::string mode = argc > 2 ? argv[2] : "all";
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    g_sm90 = prop.major == 9 && prop.minor == 0;
    printf("device %s, %d SMs, compute capability %d.%d (sm90 kernels %s), seed %llu\n", prop.name,
           prop.multiProcessorCount, prop.major, prop.minor, g_sm90 ? "run" : "skipped", g_seed);

    // first per head dim: the backend's kernel; then shapes beside it (W warps x MT m16 blocks per warp = bm
    // query rows, bn keys per tile; the first measured 2026-12-07 on an H100: bench/NOTES.md)
    std::vector<Variant> bf = {
        backendVariant<bf16>("backend fa_bf16_d128", attention_fa_bf16_d128, 128),
        variant<bf16, 128, 4, 2, 32, 2>("d128 w4 mt2 bm128 bn32"),
        variant<bf16, 128, 8, 2, 64, 1>("d128 w8 mt2 bm256 bn64"),
        backendVariant<bf16>("backend fa_bf16_d64", attention_fa_bf16_d64, 64),
        variant<bf16, 64, 4, 2, 64, 2>("d64 w4 mt2 bm128 bn64"),
        variant<bf16, 64, 4, 2, 32, 3>("d64 w4 mt2 bm128 bn32"),
        backendVariant<bf16>("backend fa_bf16_d256", attention_fa_bf16_d256, 256),
        variant<bf16, 256, 4, 1, 64, 1>("d256 w4 mt1 bm64 bn64"),
        // wgmma, 1 producer + 2 consumer warpgroups (attention_sm90.cu): keys per tile, ring stages
        backendVariant90<bf16>("backend sm90_bf16_d128", attention_sm90_bf16_d128, 128),
        variant90<bf16, 128, 128, 3>("sm90 d128 bn128 s3"),
        variant90<bf16, 128, 64, 3>("sm90 d128 bn64 s3"),
        backendVariant90<bf16>("backend sm90_bf16_d64", attention_sm90_bf16_d64, 64),
        variant90<bf16, 64, 128, 2>("sm90 d64 bn128 s2"),
        backendVariant90<bf16>("backend sm90_bf16_d256", attention_sm90_bf16_d256, 256),
    };
    std::vector<Variant> hf = {
        backendVariant<f16>("backend fa_f16_d128", attention_fa_f16_d128, 128),
        backendVariant<f16>("backend fa_f16_d64", attention_fa_f16_d64, 64),
        backendVariant<f16>("backend fa_f16_d256", attention_fa_f16_d256, 256),
        backendVariant90<f16>("backend sm90_f16_d128", attention_sm90_f16_d128, 128),
        backendVariant90<f16>("backend sm90_f16_d64", attention_sm90_f16_d64, 64),
        backendVariant90<f16>("backend sm90_f16_d256", attention_sm90_f16_d256, 256),
    };
    for (const auto* list : {&bf, &hf})
        for (const Variant& x : *list)
            printf("variant %-24s threads %3d smem %6d%s\n", x.name.c_str(), x.threads, x.smem,
                   x.sm90 && !g_sm90 ? " (skipped: not compute capability 9.0)" : "");
    if ((mode == "check" || mode == "all") && g_sm90) {  // the products alone first: layouts
        checkProducts<bf16, 64, 128>("bf16");
        checkProducts<bf16, 128, 128>("bf16");
        checkProducts<bf16, 128, 64>("bf16");
        checkProducts<bf16, 256, 64>("bf16");
        checkProducts<f16, 128, 128>("fp16");
    }
    if (mode == "check" || mode == "all") {
        std::vector<int> lengths = {1, 77, 128, 300, 513, 1000, 64, 129, 2};
        int hk[3][2] = {{8, 8}, {16, 4}, {16, 2}};
        for (int d : {64, 128, 256})
            for (auto& h : hk)
                for (int window : {0, 100}) checkCase<bf16>(bf, lengths, h[0], h[1], d, window, "bf16");
        for (int d : {64, 128, 256})
            for (int window : {0, 100}) checkCase<f16>(hf, lengths, 16, 4, d, window, "fp16");
        // longer sequences for the sm90 kernels: many turns of the K/V ring, producer waits on released slots
        std::vector<int> longer = {2048, 5, 1537, 77, 1};
        for (int d : {64, 128, 256})
            for (int window : {0, 100, 1000}) {
                checkCase<bf16>(bf, longer, 16, 4, d, window, "bf16", true);
                checkCase<f16>(hf, longer, 8, 8, d, window, "fp16", true);
            }
        printf("checks done: %d failures\n", failures);
    }
    if (mode == "time" || mode == "all") {
        int shapes[7][3] = {{16, 16, 128}, {32, 8, 128}, {32, 4, 128}, {16, 16, 64}, {32, 8, 64}, {32, 4, 64},
                            {16, 4, 256}};
        for (int L : {512, 2048})
            for (auto& s : shapes) timeShape(bf, L, s[0], s[1], s[2]);
        printf("summary (bf16, 8192 tokens, tiles longest first; TFLOP/s counts causal FLOPs once):\n");
        printf("| L | heads q/kv | d | fa ms | fa TFLOP/s | sm90 ms | sm90 TFLOP/s | sm90 speedup |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (const std::string& row : g_summary) printf("%s\n", row.c_str());
    }
    printf("done: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
