#!/usr/bin/env bash
# Issue 9: the scoring job on a standalone cluster of this machine with one executor per GPU, first one executor
# then two (or GPUS): tokens/s of each, the scaling ratio, the scores of the runs compared, each executor's GPU
# (job summary, and nvidia-smi's per-process listing sampled during the runs), then the portability job with an
# executor per GPU. Results and a summary (scale-out.md) in $OUT.
#
#   on the two-GPU device machine, spark-job classpath and bench classes staged (README, developer notes):
#       bash .device/boot/boot.sh bash bench/scale-out.sh
#   on one GPU, the same path with every worker offering address 0 (executors share the GPU; scaling means little):
#       SHARE_GPU=1 ROWS=1024 bash bench/scale-out.sh
#   anywhere, as a check of the orchestration without GPUs (CPU backend, the demo model, worker "GPUs" as labels):
#       BACKEND=cpu MODEL=demo/tiny-moe-code ROWS=48 SEQ=64 SUITE=quick bash bench/scale-out.sh
#
# Environment: OUT (results, default /tmp/moescore-scale-out), GPUS (executors of the second run; default the
# GPUs nvidia-smi lists, at least 2), BACKEND (cuda), MODEL (default: a synthetic OLMoE-1B-7B-shaped checkpoint
# made by bench/python/bench_peer.py), ROWS x SEQ tokens of random ids (8192 x 512 = 4M tokens:
# long enough that executor start and model load do not hide the scaling),
# SUITE (portability suite: full), EXECUTOR_MEMORY (48g), WORK (input, cluster, scores: /tmp/moescore-scale-work),
# MOESCORE_SPARK_LIB (the jars; default: built from
# DEVCP on the device machine, else spark-job/target/lib with the spark-job and bench jars).
set -euo pipefail
home=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$home"
out=${OUT:-/tmp/moescore-scale-out}
backend=${BACKEND:-cuda}
rows=${ROWS:-8192}
seq=${SEQ:-512}
suite=${SUITE:-full}
executor_memory=${EXECUTOR_MEMORY:-48g}
work=${WORK:-/tmp/moescore-scale-work}   # input, cluster state and scores: kept out of $OUT, which returns few files
mkdir -p "$out" "$work"
java=${JAVA:-java}
read -r -a jvm_opts <conf/jvm-options
log() { echo "scale-out: $*" | tee -a "$out/scale-out.log" >&2; }

# The jars: on the device machine DEVCP lists jars and class folders; the cluster wants one folder of jars.
if [ -z "${MOESCORE_SPARK_LIB:-}" ] && [ -n "${DEVCP:-}" ]; then
  export MOESCORE_SPARK_LIB=/tmp/moescore-scale-lib
  rm -rf "$MOESCORE_SPARK_LIB" && mkdir -p "$MOESCORE_SPARK_LIB"
  IFS=':' read -r -a entries <<<"$DEVCP"
  for e in "${entries[@]}"; do
    if [ -d "$e" ]; then   # a class folder: pack it (the staged runtime may have no jar tool)
      python3 -c 'import sys, os, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(src):
        for f in files:
            p = os.path.join(root, f); z.write(p, os.path.relpath(p, src))' "$e" "$MOESCORE_SPARK_LIB/moescore-$(basename "$e").jar"
    elif [[ "$e" == *.jar ]]; then
      ln -sf "$e" "$MOESCORE_SPARK_LIB/"
    fi
  done
fi
lib=${MOESCORE_SPARK_LIB:-$home/spark-job/target/lib}
# the application: spark-job's and bench's classes (the staged folders named ...-classes, not ...-test-classes),
# else their jars; the portability job's main is bench's
app=$(ls "$lib"/moescore-dir-*-classes.jar 2>/dev/null | grep -v test-classes | paste -sd, - || true)
[ -n "$app" ] || app=$(ls "$home"/spark-job/target/moescore-spark-job-*.jar "$home"/bench/target/moescore-bench-*.jar \
  | grep -v -e sources -e tests | paste -sd, -)

gpus=${GPUS:-$( (nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null || true) | wc -l)}
[ "$gpus" -ge 2 ] || gpus=2
model=${MODEL:-}
if [ -z "$model" ]; then
  model=/tmp/olmoe
  [ -f $model/config.json ] || python3 bench/python/bench_peer.py olmoe $model /tmp/peer-olmoe.json save-only
fi
model=$(cd "$model" && pwd)   # executors run in their own work folders
vocab=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1] + "/config.json"))["vocab_size"])' "$model")
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
input="$work/input.jsonl"
python3 - "$input" "$rows" "$seq" "$vocab" <<'EOF'
import json, random, sys
path, rows, seq, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(9)
with open(path, "w") as f:
    for i in range(rows):
        f.write(json.dumps({"id": "row-%05d" % i, "tokens": [rnd.randrange(vocab) for _ in range(seq)]}) + "\n")
EOF
log "input: $rows rows x $seq tokens, model $model, backend $backend, up to $gpus executors, jars from $lib"

export MOESCORE_CLUSTER_DIR=$work/cluster
cluster() { MOESCORE_SPARK_LIB=$lib bash submit-scripts/standalone-cluster.sh "$@"; }
trap 'cluster stop >/dev/null 2>&1 || true; kill ${sampler:-0} 2>/dev/null || true' EXIT
share=()
[ -n "${SHARE_GPU:-}" ] && share=(--share-gpus)
master=$(cluster start "$gpus" --gpus-per-worker 1 "${share[@]}" --cores 2 --memory "$executor_memory")
log "cluster: $master, $gpus workers, one GPU address each${SHARE_GPU:+ (all address 0: one shared GPU)}"

# submit N MAIN ARGS...: spark-submit in client mode with N executors of 2 cores sharing their one GPU by two tasks
submit() {
  local n=$1 main=$2; shift 2
  "$java" "${jvm_opts[@]}" -Dlog4j2.configurationFile=conf/log4j2.properties -cp "$lib/*" \
    org.apache.spark.deploy.SparkSubmit --master "$master" --deploy-mode client --class "$main" \
    --conf spark.jars="$app" --conf spark.cores.max=$((2 * n)) --conf spark.executor.cores=2 \
    --conf spark.executor.memory="$executor_memory" --conf spark.executor.resource.gpu.amount=1 \
    --conf spark.task.resource.gpu.amount=0.5 --conf spark.executorEnv.CUDA_DEVICE_ORDER=PCI_BUS_ID \
    --conf spark.executor.extraJavaOptions="${jvm_opts[*]}" --conf spark.ui.enabled=false \
    --conf spark.moescore.progressSeconds=10 "${app%%,*}" "$@"
}
sample_gpus() {  # per-process GPU listing every 2 s while a run goes on
  while true; do
    date +%T
    nvidia-smi --query-compute-apps=pid,gpu_bus_id,used_memory --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
    sleep 2
  done >"$1"
}

for n in 1 "$gpus"; do
  sample_gpus "$out/nvidia-smi-$n.log" & sampler=$!
  start=$(date +%s.%N)
  submit "$n" io.moescore.spark.MoeScoreJob --input "$input" --output "$work/scores-$n" --output-format json \
    --model "$model" --backend "$backend" --batch-tokens 8192 --partitions $((8 * n)) --mode overwrite \
    --summary "$out/summary-$n.json" >"$out/job-$n.log" 2>&1 || { log "job with $n executor(s) failed:"; tail -30 "$out/job-$n.log"; exit 1; }
  end=$(date +%s.%N)
  kill $sampler 2>/dev/null || true
  log "$n executor(s): $(python3 -c 'import sys; print("%.1f s wall" % (float(sys.argv[2]) - float(sys.argv[1])))' "$start" "$end")"
done

python3 - "$out" 1 "$gpus" "$work" <<'EOF' | tee "$out/scale-out.md"
import glob, json, os, sys
out, a, b, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def summary(n): return json.load(open(os.path.join(out, "summary-%s.json" % n)))
def scores(n):
    rows = {}
    for path in glob.glob(os.path.join(work, "scores-%s" % n, "part-*")):
        for line in open(path):
            r = json.loads(line); rows[r["id"]] = r
    return rows
sa, sb = summary(a), summary(b)
print("| executors | tokens | wall s | tokens/s | per executor (device: tokens/s, busy s) |")
print("| --- | --- | --- | --- | --- |")
for n, s in ((a, sa), (b, sb)):
    per = "; ".join("%s on %s: %.0f, %.1f" % (e["executor"], e["device"], e["tokens_per_second"], e["busy_seconds"])
                    for e in s["executors"])
    print("| %s | %d | %.1f | %.0f | %s |" % (n, s["tokens"], s["seconds"], s["tokens_per_second"], per))
print()
print("scaling, %s executors over 1: %.2fx tokens/s (target 1.9x)" % (b, sb["tokens_per_second"] / sa["tokens_per_second"]))
ra, rb = scores(a), scores(b)
common = ra.keys() & rb.keys()
worst = max(abs(ra[k]["sum_logprob"] - rb[k]["sum_logprob"]) / max(1, ra[k]["num_tokens"] - 1) for k in common)
print("scores: %d rows in the 1-executor run, %d in the %s-executor run, %d in both; worst mean per-token |difference| %.2e"
      % (len(ra), len(rb), b, len(common), worst))
devices = {e["device"] for e in sb["executors"]}
print("devices of the %s-executor run: %s" % (b, sorted(devices)))
EOF

submit "$gpus" io.moescore.bench.portability.PortabilityJob --output "$out/portability" --mode overwrite \
  --suite "$suite" --backend "$backend" --executors "$gpus" --label "scale-out-$(hostname)" >"$out/portability.log" 2>&1 \
  || { log "portability job failed:"; tail -30 "$out/portability.log"; exit 1; }
log "portability report: $out/portability/report.html"
grep -c '<tr>' "$out/portability/report.html" | xargs -I{} echo "scale-out: report table rows (header included): {}" >&2
