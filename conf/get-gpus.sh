#!/usr/bin/env bash
# Spark GPU discovery script for moescore.
#
# Spark runs this (spark.worker.resource.gpu.discoveryScript on standalone workers,
# spark.executor.resource.gpu.discoveryScript on YARN/Kubernetes executors) and reads one JSON object from stdout:
#     {"name":"gpu","addresses":["0","1"]}
# Addresses are strings; here they are nvidia-smi's device indices, which equal CUDA ordinals when the process runs
# with CUDA_DEVICE_ORDER=PCI_BUS_ID.
#
# Sources, first match wins:
#   MOESCORE_GPU_ADDRESSES="0,1"   a comma-separated override (tests; several workers on one host, which need
#                                  disjoint addresses). Set but empty means "no GPU".
#   nvidia-smi --query-gpu=index --format=csv,noheader
# Where nvidia-smi is missing, fails, or lists no GPU, this prints {"name":"gpu","addresses":[]} and exits 0, so a
# CPU-only worker reports no GPU cleanly; a one-line note goes to stderr. A malformed override exits 1.
set -u

emit() { # emit ADDRESS... : print the resource JSON
  local json='{"name":"gpu","addresses":[' sep=''
  local a
  for a in "$@"; do
    json+="$sep\"$a\""
    sep=','
  done
  printf '%s]}\n' "$json"
}

if [ -n "${MOESCORE_GPU_ADDRESSES+set}" ]; then
  addresses=()
  IFS=',' read -r -a parts <<<"$MOESCORE_GPU_ADDRESSES"
  for p in "${parts[@]+"${parts[@]}"}"; do
    p="${p//[[:space:]]/}"
    [ -z "$p" ] && continue
    if [[ ! "$p" =~ ^[A-Za-z0-9._:-]+$ ]]; then
      echo "get-gpus.sh: MOESCORE_GPU_ADDRESSES holds an invalid address '$p' (want e.g. \"0,1\")" >&2
      exit 1
    fi
    addresses+=("$p")
  done
  [ "${#addresses[@]}" -eq 0 ] && echo "get-gpus.sh: MOESCORE_GPU_ADDRESSES is empty: reporting no GPU" >&2
  emit "${addresses[@]+"${addresses[@]}"}"
  exit 0
fi

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "get-gpus.sh: nvidia-smi not found on PATH: reporting no GPU" >&2
  emit
  exit 0
fi

if ! out=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1); then
  echo "get-gpus.sh: nvidia-smi failed, reporting no GPU: ${out%%$'\n'*}" >&2
  emit
  exit 0
fi

addresses=()
while IFS= read -r line; do
  line="${line//[[:space:]]/}"
  [[ "$line" =~ ^[0-9]+$ ]] && addresses+=("$line")
done <<<"$out"
if [ "${#addresses[@]}" -eq 0 ]; then
  echo "get-gpus.sh: nvidia-smi lists no GPU: reporting none" >&2
fi
emit "${addresses[@]+"${addresses[@]}"}"
