#!/usr/bin/env bash
# Submit the scoring job to YARN, one GPU per executor, through submit-scripts/moescore, which first checks that
# the cluster has the queue and the GPU resource type asked for (`moescore yarn-check`). YarnScoreJobIT runs this
# script as it is, on an in-process YARN cluster, in cluster and in client mode (README, "Running on YARN").
#
#   INPUT=hdfs://... OUTPUT=hdfs://... MODEL=hdfs://... submit-scripts/examples/yarn.sh [more job options]
#
# Needs: HADOOP_CONF_DIR (or YARN_CONF_DIR) naming your cluster: its core-site.xml, yarn-site.xml and the
# resource-types.xml that declares yarn.io/gpu (YARN 3.1+ GPU scheduling; Spark asks for yarn.io/gpu for
# spark.executor.resource.gpu.amount); the project built here (mvn -B -ntp install -DskipTests). SPARK_HOME is
# optional: with it, that Spark 4.2 distribution's spark-submit runs and YARN gets its jars; without it, the Spark
# jars Maven resolved run and spark-job/target/lib is uploaded with each submission (MOESCORE_SUBMIT_OPTS="--conf
# spark.yarn.archive=hdfs://..." avoids that). Every <...> below is a placeholder: set the variables instead of
# editing them in. Paths must not contain white space (MOESCORE_SUBMIT_OPTS is split at white space).
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

input=${INPUT:-hdfs://<namenode-host>:8020/data/moescore/input.parquet}
output=${OUTPUT:-hdfs://<namenode-host>:8020/data/moescore/scores}
model=${MODEL:-hdfs://<namenode-host>:8020/models/<model-dir>}   # any Hadoop FS; copied once per executor host
deploy_mode=${DEPLOY_MODE:-cluster}  # cluster: the driver runs in the YARN application master; client: here
queue=${QUEUE:-default}
executors=${EXECUTORS:-4}            # = GPUs used
cores=${EXECUTOR_CORES:-4}           # concurrent tasks per executor, feeding the executor's one engine
task_gpus=${TASK_GPUS:-0.25}         # 1 / cores: the executor's tasks share its GPU
memory=${EXECUTOR_MEMORY:-8g}
overhead=${MEMORY_OVERHEAD:-4g}      # off-heap Arrow batches and CUDA's host memory (conf/spark-defaults.conf.template)
backend=${BACKEND:-auto}
partitions=${PARTITIONS:-$((executors * 16))}
for v in "$input" "$output" "$model"; do
  case "$v" in *'<'*) echo "yarn.sh: '$v' is a placeholder: set INPUT, OUTPUT and MODEL" >&2; exit 2 ;; esac
done

# GPUs: YARN gives each executor container one GPU but does not tell Spark which, so every executor runs the
# discovery script. --files ships conf/get-gpus.sh into each container's working directory, hence ./get-gpus.sh.
# The caller's MOESCORE_SUBMIT_OPTS come last, so they can override any of these.
export MOESCORE_SUBMIT_OPTS="--name moescore-score --files $home/conf/get-gpus.sh \
  --num-executors $executors --executor-cores $cores --executor-memory $memory \
  --conf spark.dynamicAllocation.enabled=false \
  --conf spark.executor.memoryOverhead=$overhead \
  --conf spark.executor.resource.gpu.amount=1 \
  --conf spark.executor.resource.gpu.discoveryScript=./get-gpus.sh \
  --conf spark.task.resource.gpu.amount=$task_gpus \
  --conf spark.executorEnv.CUDA_DEVICE_ORDER=PCI_BUS_ID \
  ${MOESCORE_SUBMIT_OPTS:-}"
exec "$home/submit-scripts/moescore" score --master yarn --deploy-mode "$deploy_mode" --queue "$queue" \
  --input "$input" --output "$output" --model "$model" \
  --backend "$backend" --batch-tokens 8192 --partitions "$partitions" "$@"
