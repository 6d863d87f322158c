#!/usr/bin/env bash
# Compiles the CUDA kernels (kernels.cu and what it includes) into one fatbin, the resource the CUDA backend
# loads with cuModuleLoadData: SASS for sm_80, sm_86, sm_89 and sm_90a, plus compute_90 PTX for newer GPUs.
# Run by the Maven build (generate-resources). Where nvcc is missing it writes no fatbin and says so: the jar
# then has no kernels, and asking for the cuda backend fails with that message.
#   build.sh OUT_FATBIN [SOURCE.cu]   (default: kernels.cu beside this script; the tests build their own)
set -euo pipefail
out="$1"
src=$(cd "$(dirname "$0")" && pwd)
if [ -n "${2:-}" ]; then main="$2"; sources=("$2"); else main="$src/kernels.cu"; sources=("$src"/*.cu "$src"/*.cuh); fi
if ! command -v nvcc >/dev/null 2>&1; then
  echo "moescore: nvcc not found: building without CUDA kernels (the cuda backend will be unavailable)" >&2
  rm -f "$out"
  exit 0
fi
# Up to date when the sources hash to what the last build recorded (mtimes mislead when sources change mid-build).
# MOESCORE_CUDA_GENCODE replaces the target list (e.g. only sm_90a while iterating on an H100).
gencode=${MOESCORE_CUDA_GENCODE:-"-gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90"}
hash=$( (cat "${sources[@]}" "$src"/build.sh; echo "$gencode") | sha256sum | cut -c1-32)
if [ -f "$out" ] && [ "$(cat "$out.sources" 2>/dev/null)" = "$hash" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "moescore: compiling CUDA kernels with $(nvcc --version | tail -1)" >&2
nvcc -fatbin -O3 -std=c++17 --threads 0 $gencode -o "$out.tmp" "$main"
mv "$out.tmp" "$out"
echo "$hash" > "$out.sources"
