#!/usr/bin/env bash
# Submit the scoring job to Kubernetes in cluster mode (the driver runs in a pod), one NVIDIA GPU per executor pod.
#
#   INPUT=s3a://... OUTPUT=s3a://... MODEL=s3a://... K8S_MASTER=k8s://https://HOST:6443 IMAGE=REGISTRY/moescore:TAG \
#     submit-scripts/examples/kubernetes.sh
#
# Needs: SPARK_HOME pointing at a Spark 4.2 distribution (only its spark-submit runs here); the NVIDIA device plugin
# on the GPU nodes (pods can request nvidia.com/gpu); a service account the driver may create pods with; and an image
# built from Spark 4.2's (Scala 2.13, Java 17) that holds
#   /opt/spark/jars/        Spark plus the jars of spark-job/target/lib that Spark lacks (moescore-*, picocli,
#                           tokenizers, api, gson, jna, jcuda): they are on every pod's classpath
#   /opt/moescore/moescore-spark-job.jar    the application jar
#   /opt/moescore/conf/get-gpus.sh          conf/get-gpus.sh, executable, with nvidia-smi available in the pod
# Every <...> below is a placeholder: set the variables instead of editing them in.
set -euo pipefail
: "${SPARK_HOME:?set SPARK_HOME to a Spark 4.2 distribution}"

k8s_master=${K8S_MASTER:-k8s://https://<k8s-apiserver-host>:6443}
image=${IMAGE:-<registry>/<moescore-spark-image>:<tag>}
namespace=${NAMESPACE:-default}
service_account=${SERVICE_ACCOUNT:-spark}
input=${INPUT:-s3a://<bucket>/moescore/input.parquet}
output=${OUTPUT:-s3a://<bucket>/moescore/scores}
model=${MODEL:-s3a://<bucket>/models/<model-dir>}   # any Hadoop FS (or a volume mounted at the same path everywhere)
executors=${EXECUTORS:-4}                            # = GPUs used
for v in "$k8s_master" "$image" "$namespace" "$input" "$output" "$model"; do
  case "$v" in *'<'*) echo "kubernetes.sh: '$v' is a placeholder: set the variables named at the top" >&2; exit 2 ;; esac
done

# GPUs: spark.executor.resource.gpu.vendor makes each executor pod request <amount> of the device plugin's resource
# nvidia.com/gpu; the discovery script (a path inside the image) tells the executor which device it got.
# Spark 4 adds the --add-opens Java 17 needs to the JVMs it launches in the pods.
exec "$SPARK_HOME/bin/spark-submit" \
  --master "$k8s_master" --deploy-mode cluster --name moescore-score \
  --class io.moescore.spark.MoeScoreJob \
  --conf spark.kubernetes.container.image="$image" \
  --conf spark.kubernetes.namespace="$namespace" \
  --conf spark.kubernetes.authenticate.driver.serviceAccountName="$service_account" \
  --conf spark.executor.instances="$executors" \
  --conf spark.executor.cores=4 \
  --conf spark.executor.memory=8g \
  --conf spark.executor.memoryOverhead=4g \
  --conf spark.executor.resource.gpu.amount=1 \
  --conf spark.executor.resource.gpu.vendor=nvidia.com \
  --conf spark.executor.resource.gpu.discoveryScript=/opt/moescore/conf/get-gpus.sh \
  --conf spark.task.resource.gpu.amount=0.25 \
  --conf spark.executorEnv.CUDA_DEVICE_ORDER=PCI_BUS_ID \
  local:///opt/moescore/moescore-spark-job.jar \
  --input "$input" --output "$output" --model "$model" \
  --backend auto --batch-tokens 8192 --partitions "$((executors * 16))"
