#!/usr/bin/env bash
# Issue 10: the sparsify job (SparseGPT 2:4, Hessians gathered across executors) with one executor, then two, on a
# standalone cluster of this host: calibration tokens/s and solve seconds per expert (SparsifyJobBenchmark: a
# warm-up run, then the median of REPEATS runs, one Spark application per executor count).
#
#   CPU, any machine (the demo model and calibration): bash bench/sparsify-scale.sh
#   two GPUs (an executor per GPU):                   BACKEND=cuda bash bench/sparsify-scale.sh
#
# Environment: OUT (the result JSON; default bench/results/sparsify-scale-$BACKEND.json), BACKEND (cpu),
# MODEL (demo/tiny-moe-code), CALIBRATION (demo/calibration.jsonl), CORES (per executor; 1), MEMORY (per executor;
# 2g), REPEATS (2), PARTITIONS (8), RECONSTRUCT_STEPS (0: SparseGPT only; N: and the expert reconstruction, timed),
# WORK (cluster state and checkpoints; /tmp/moescore-sparsify-bench), JAVA.
# Needs spark-job/target/lib and the spark-job and bench jars (`mvn -B -ntp package -DskipTests` from the repository
# root).
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$home"
backend=${BACKEND:-cpu}
out=${OUT:-bench/results/sparsify-scale-$backend.json}
model=${MODEL:-demo/tiny-moe-code}
calibration=${CALIBRATION:-demo/calibration.jsonl}
cores=${CORES:-1}
memory=${MEMORY:-2g}
work=${WORK:-/tmp/moescore-sparsify-bench}
java=${JAVA:-java}
lib=$home/spark-job/target/lib
job=$(ls "$home"/spark-job/target/moescore-spark-job-*.jar 2>/dev/null | grep -v -e sources -e tests | head -1 || true)
app=$(ls "$home"/bench/target/moescore-bench-*.jar 2>/dev/null | grep -v -e sources -e tests | head -1 || true)
[ -n "$app" ] && [ -n "$job" ] && [ -d "$lib" ] || { echo "sparsify-scale.sh: build first: mvn -B -ntp package -DskipTests" >&2; exit 1; }
read -r -a jvm_opts <conf/jvm-options
gpus=0
extra=()
if [ "$backend" = cuda ]; then
  gpus=1
  extra=(--conf spark.executorEnv.CUDA_DEVICE_ORDER=PCI_BUS_ID)
fi
mkdir -p "$work"
export MOESCORE_CLUSTER_DIR=$work/cluster
trap 'bash submit-scripts/standalone-cluster.sh stop >/dev/null 2>&1 || true' EXIT
master=$(bash submit-scripts/standalone-cluster.sh start 2 --gpus-per-worker "$gpus" --cores "$cores" --memory "$memory")
"$java" "${jvm_opts[@]}" -Dlog4j2.configurationFile=conf/log4j2.properties -cp "$lib/*" \
  org.apache.spark.deploy.SparkSubmit --master "$master" --deploy-mode client \
  --class io.moescore.bench.spark.SparsifyJobBenchmark --conf spark.jars="$app,$job" --conf spark.ui.enabled=false \
  --conf spark.executor.extraJavaOptions="${jvm_opts[*]}" --conf spark.driver.host=127.0.0.1 \
  --conf spark.driver.bindAddress=127.0.0.1 "${extra[@]}" "$app" \
  "$model" "$calibration" "$work/checkpoints" "$out" backend="$backend" executorCores="$cores" \
  executorMemory="$memory" gpu=$([ "$gpus" = 1 ] && echo true || echo false) partitions="${PARTITIONS:-8}" \
  repeats="${REPEATS:-2}" reconstructSteps="${RECONSTRUCT_STEPS:-0}"
