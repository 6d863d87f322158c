// Kernels only the GPU tests load (built into test-classes by the Maven build, never into the main fatbin).

// Stores through the pointer it is given: launched with an address no allocation owns, it leaves the context
// with CUDA_ERROR_ILLEGAL_ADDRESS, the unrecoverable fault CudaFaultTest needs.
extern "C" __global__ void store_through(float* p) { p[threadIdx.x] = 1.f; }
