// Helpers shared by every kernel family. Kernels are extern "C" so the Java side finds them by name.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <type_traits>
#include "constants.cuh"  // tile, stage and shared-memory sizes the host reads too

// The 16-bit floats the tensor cores multiply (fp32 accumulation either way), chosen by the backend's precision:
// bf16 keeps fp32's range with 8 significant bits, fp16 11 bits within +-65504. Every kernel that reads or writes
// them is a template over T in {bf16, f16}, instantiated under both names (..._bf16 / ..._f16).
typedef __nv_bfloat16 bf16;
typedef __half f16;

template <typename T> constexpr bool is_bf16 = std::is_same<T, bf16>::value;
#define FP16_MAX 65504.f
// Round to T. fp16 saturates at +-65504 rather than becoming infinite (an activation past fp16's range would
// otherwise turn whole rows into NaN); NaN stays NaN.
template <typename T> __device__ __forceinline__ T to_half(float v) {
    if constexpr (is_bf16<T>) {
        return __float2bfloat16(v);
    } else {
        return __float2half_rn(fabsf(v) > FP16_MAX ? copysignf(FP16_MAX, v) : v);
    }
}
// Two values as one 32-bit operand register of an mma (lo in the low half).
template <typename T> __device__ __forceinline__ unsigned pack_half2(float lo, float hi) {
    T pair[2] = {to_half<T>(lo), to_half<T>(hi)};
    return *reinterpret_cast<unsigned*>(pair);
}
template <typename T> __device__ __forceinline__ float half_to_float(T v) {
    if constexpr (is_bf16<T>) return __bfloat162float(v);
    else return __half2float(v);
}

__device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of up to 1024 threads; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }

// Grouped expert launches (dense and 2:4): a grid of (work items) x (weight-row tiles), where `work` holds per
// item the pair (expert, first of its 128 routed entries) and expert e owns entries offsets[e] .. offsets[e+1]-1.
// Blocks start in linear order, x fastest. Taken literally, the blocks in flight would be every item at one row
// tile, so each item's token rows would come back from DRAM once per row tile. Instead each run of
// WORK_GROUP * tiles consecutive blocks covers WORK_GROUP items (mostly one expert's) across all row tiles, items
// fastest: those items' token rows stay in L2 while the expert's weight tiles stream past, each read by up to
// WORK_GROUP blocks at once.
#define WORK_GROUP 8
struct Work {
    int expert, m0, begin, count;
    int tile;  // weight-row tile
    int item;  // index in the work list
};
__device__ __forceinline__ Work work_item(const int* work, const int* offsets) {
    int items = gridDim.x, tiles = gridDim.y;
    int id = blockIdx.x + blockIdx.y * gridDim.x;
    int groupBlocks = WORK_GROUP * tiles;
    int group = id / groupBlocks, within = id - group * groupBlocks;
    int first = group * WORK_GROUP;
    int size = min(WORK_GROUP, items - first);
    int item = first + within % size;
    Work w;
    w.expert = work[2 * item];  // < 0: no item (route_work sizes grids for the worst case): the kernel returns
    if (w.expert < 0) return w;
    w.m0 = work[2 * item + 1];
    w.begin = offsets[w.expert];
    w.count = offsets[w.expert + 1] - w.begin;
    w.tile = within / size;
    w.item = item;
    return w;
}
