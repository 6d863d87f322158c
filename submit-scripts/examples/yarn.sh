#!/usr/bin/env bash
# Submit the scoring job to YARN in cluster mode (the driver runs in the YARN application master), one GPU per
# executor.
#
#   INPUT=hdfs://... OUTPUT=hdfs://... MODEL=hdfs://... submit-scripts/examples/yarn.sh
#
# Needs: SPARK_HOME pointing at a Spark 4.1 distribution (Scala 2.13) whose HADOOP_CONF_DIR/YARN_CONF_DIR name your
# cluster; YARN 3.1+ with GPU scheduling on (resource type yarn.io/gpu, which Spark requests for
# spark.executor.resource.gpu.amount); the project built here (mvn -B -ntp install -DskipTests). Every <...> below is
# a placeholder: set the variables instead of editing them in.
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${SPARK_HOME:?set SPARK_HOME to a Spark 4.1 distribution configured for your YARN cluster}"

input=${INPUT:-hdfs://<namenode-host>:8020/data/moescore/input.parquet}
output=${OUTPUT:-hdfs://<namenode-host>:8020/data/moescore/scores}
model=${MODEL:-hdfs://<namenode-host>:8020/models/<model-dir>}   # any Hadoop FS; copied once per executor host
queue=${QUEUE:-default}
executors=${EXECUTORS:-4}                                          # = GPUs used
for v in "$input" "$output" "$model"; do
  case "$v" in *'<'*) echo "yarn.sh: '$v' is a placeholder: set INPUT, OUTPUT and MODEL" >&2; exit 2 ;; esac
done

# The application jar, and the jars the job needs that Spark does not ship (moescore's gpu-runtime and arrow-io,
# picocli, the tokenizers library and JNA, JCuda); spark-submit uploads them to the application's staging dir.
app_jar=$(ls "$home"/spark-job/target/moescore-spark-job-*.jar | grep -v -e sources -e tests | head -1)
jars=$(ls "$home"/spark-job/target/lib/*.jar \
  | grep -E '/(moescore-|picocli-|tokenizers-|api-[0-9]|gson-|jna-|jcuda)' | paste -sd, -)
jvm_opts=$(cat "$home/conf/jvm-options")   # the --add-opens Spark, Netty and Arrow need on Java 17

# GPUs: YARN gives each executor container one GPU but does not tell Spark which, so every executor runs the
# discovery script. --files ships conf/get-gpus.sh into each container's working directory, hence ./get-gpus.sh.
# Four tasks share each executor's GPU (task amount 0.25, 4 cores), feeding the executor's one engine; see
# conf/spark-defaults.conf.template. memoryOverhead covers the off-heap Arrow batches and CUDA's host memory.
exec "$SPARK_HOME/bin/spark-submit" \
  --master yarn --deploy-mode cluster --queue "$queue" --name moescore-score \
  --class io.moescore.spark.MoeScoreJob \
  --jars "$jars" \
  --files "$home/conf/get-gpus.sh" \
  --num-executors "$executors" --executor-cores 4 --executor-memory 8g \
  --conf spark.dynamicAllocation.enabled=false \
  --conf spark.executor.memoryOverhead=4g \
  --conf spark.executor.resource.gpu.amount=1 \
  --conf spark.executor.resource.gpu.discoveryScript=./get-gpus.sh \
  --conf spark.task.resource.gpu.amount=0.25 \
  --conf spark.executorEnv.CUDA_DEVICE_ORDER=PCI_BUS_ID \
  --conf "spark.driver.extraJavaOptions=$jvm_opts" \
  --conf "spark.executor.extraJavaOptions=$jvm_opts" \
  "$app_jar" \
  --input "$input" --output "$output" --model "$model" \
  --backend auto --batch-tokens 8192 --partitions "$((executors * 16))"
