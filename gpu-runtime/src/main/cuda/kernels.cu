// The one translation unit nvcc compiles into the fatbin the CUDA backend loads (build.sh). Each family lives
// in its own file beside its description; CpuBackend holds the reference each is tested against.
#include "elementwise.cu"
#include "gemm.cu"
#include "attention.cu"
#include "attention_tc.cu"
#include "attention_fa.cu"
#include "router.cu"
#include "router_variants.cu"
#include "timing.cu"
#include "lm_head.cu"
#include "sparse24.cu"
