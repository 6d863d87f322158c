#!/usr/bin/env bash
# Score on a Spark standalone cluster started on this host by submit-scripts/standalone-cluster.sh: one master and
# N workers on 127.0.0.1, worker i offering GPU address i (on a GPU machine, keep N <= the number of GPUs; without
# GPUs the addresses are labels Spark schedules by and --backend auto falls back to the CPU).
#
#   submit-scripts/examples/standalone.sh [INPUT [OUTPUT [MODEL]]]
#
# Environment: WORKERS (default 2), KEEP_CLUSTER=1 (leave the cluster running afterwards; stop it with
# `submit-scripts/standalone-cluster.sh stop`), MOESCORE_CLUSTER_DIR (the cluster's state and logs, default
# /tmp/moescore-cluster). To submit to a cluster that is already running, skip the start and pass its URL to
# `moescore score --master spark://HOST:PORT` with the same MOESCORE_SUBMIT_OPTS as below.
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=$home/submit-scripts/standalone-cluster.sh

input=${1:-$home/demo/input.jsonl}
output=${2:-/tmp/moescore-standalone/scores}
model=${3:-$home/demo/tiny-moe-code}
workers=${WORKERS:-2}

# The cluster runs from spark-job/target/lib: build once (moescore score would too, but the cluster starts first).
[ -d "$home/spark-job/target/lib" ] || (cd "$home" && mvn -B -q -ntp install -DskipTests)

# One core and 2g per worker, so each worker runs exactly one executor holding that worker's one GPU address.
# start prints the master URL (spark://127.0.0.1:PORT) on stdout once every worker has registered.
master=$("$cluster" start "$workers" --gpus-per-worker 1 --cores 1 --memory 2g)
if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  trap '"$cluster" stop' EXIT
fi

# Each executor asks for the worker's GPU and each task for a whole GPU (1 task at a time per executor). The model
# path must be readable from every executor: here the same local path, since all run on this host.
# The driver (this host, client mode) listens on loopback like the cluster. --partitions: at least one partition per
# executor, so every worker gets work.
MOESCORE_SUBMIT_OPTS="--conf spark.executor.resource.gpu.amount=1 --conf spark.task.resource.gpu.amount=1 \
  --conf spark.executor.cores=1 --conf spark.executor.memory=1g \
  --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1" \
  "$home/submit-scripts/moescore" score --master "$master" \
    --input "$input" --output "$output" --output-format parquet \
    --model "$model" --backend auto --partitions "$((workers * 2))" --mode overwrite
