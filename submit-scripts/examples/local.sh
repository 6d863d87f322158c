#!/usr/bin/env bash
# Score with the Spark job in local mode: driver and executor threads in one JVM, no cluster, no GPU needed.
#
#   submit-scripts/examples/local.sh [INPUT [OUTPUT [MODEL]]]
#
# Defaults: the bundled demo (demo/input.jsonl scored with demo/tiny-moe-code) into /tmp/moescore-local/scores.
# `moescore score` runs spark-submit: $SPARK_HOME/bin/spark-submit when SPARK_HOME is set, else the Spark jars Maven
# resolved (it builds the project on first use). The job prints a summary and writes OUTPUT.summary.json.
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

input=${1:-$home/demo/input.jsonl}
output=${2:-/tmp/moescore-local/scores}
model=${3:-$home/demo/tiny-moe-code}

# local[4]: four task threads. --backend auto uses CUDA when a GPU and the kernels are there, else the CPU backend.
# --mode overwrite replaces an earlier run's output (the default, error, refuses an existing one).
exec "$home/submit-scripts/moescore" score --master 'local[4]' \
  --input "$input" --output "$output" --output-format parquet \
  --model "$model" --backend auto --mode overwrite
