#!/usr/bin/env bash
# standalone-cluster.sh: a Spark standalone cluster on this host (127.0.0.1 only) from the Maven-resolved jars in
# spark-job/target/lib, with no Spark download. For trying moescore's Spark job locally, on one GPU machine with
# several GPUs, and in tests.
#
#   standalone-cluster.sh start N [--gpus-per-worker K] [--share-gpus] [--cores C] [--memory M] [--discovery]
#   standalone-cluster.sh status
#   standalone-cluster.sh stop
#
# start: one master and N workers, each a separate JVM bound to 127.0.0.1 on random free ports (web UIs too, on
#   127.0.0.1 only). Waits until every worker has registered, then prints the master URL (spark://127.0.0.1:PORT)
#   on stdout and writes it to $MOESCORE_CLUSTER_DIR/master-url.
#   --gpus-per-worker K  (default 1) worker i offers the `gpu` resource with addresses i*K .. i*K+K-1, through a
#                        worker resources file (spark.worker.resourcesFile). On a GPU machine these are real device
#                        ordinals (nvidia-smi indices; run executors with CUDA_DEVICE_ORDER=PCI_BUS_ID), so keep
#                        N*K <= the number of GPUs there. On a machine without GPUs they are just labels Spark
#                        schedules by, which is what the tests use. K=0: no gpu resource at all.
#   --share-gpus         every worker offers addresses 0 .. K-1 (the same devices): several executors on one GPU,
#                        to exercise the one-executor-per-GPU path on a machine with fewer GPUs than workers.
#   --discovery          offer GPUs through conf/get-gpus.sh (spark.worker.resource.gpu.discoveryScript) instead of
#                        a resources file. With one worker it reports what nvidia-smi lists; with several, each
#                        worker's script gets MOESCORE_GPU_ADDRESSES set to its slice (disjoint, as above).
#   --cores C            (default 1) cores each worker offers; --memory M (default 1g) memory each worker offers to
#                        executors (Spark notation: 512m, 2g).
# status: the recorded processes, whether each is alive, and the master URL.
# stop: stops the executors, workers and master this script started (by recorded pid; never by name).
#
# Submitting to it: the cluster's executors already have every jar of spark-job/target/lib on their classpath
# (including moescore-gpu-runtime and moescore-arrow-io); ship the application jar itself with spark.jars, e.g.
#   --conf spark.jars=$PWD/spark-job/target/moescore-spark-job-0.1.0-SNAPSHOT.jar
# and ask for GPUs with spark.executor.resource.gpu.amount=1 and spark.task.resource.gpu.amount (see
# conf/spark-defaults.conf.template).
#
# Environment:
#   MOESCORE_CLUSTER_DIR      state, logs and the generated SPARK_HOME (default /tmp/moescore-cluster)
#   MOESCORE_SPARK_LIB        the jars to run from (default <repo>/spark-job/target/lib; built with
#                             `mvn -B -ntp install -DskipTests`)
#   MOESCORE_DAEMON_MEMORY    heap of the master and worker JVMs themselves (default 512m)
#   MOESCORE_START_TIMEOUT    seconds to wait for the master and for each worker (default 90)
#   JAVA                      java binary (default: java on PATH)
#
# Layout of $MOESCORE_CLUSTER_DIR: spark-home/jars/ (links to the jars), spark-home/conf/log4j2.properties (copied
# from conf/; standalone executors get SPARK_HOME/conf on their classpath, so they log with it), daemon-log4j2.properties
# (the master's and workers' logging), master.log, master.pid, master-url, master-webui-url,
# worker-<i>/{worker.log,worker.pid,resources.json,work/,local/}. Executor logs: worker-<i>/work/<app>/<exec>/stderr.
set -euo pipefail

home=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${MOESCORE_CLUSTER_DIR:-/tmp/moescore-cluster}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac   # absolute: it marks our processes' command lines
lib=${MOESCORE_SPARK_LIB:-$home/spark-job/target/lib}
java=${JAVA:-java}
daemon_mem=${MOESCORE_DAEMON_MEMORY:-512m}
timeout=${MOESCORE_START_TIMEOUT:-90}

# The --add-opens Spark needs on Java 17 (conf/jvm-options; Spark's org.apache.spark.launcher.JavaModuleOptions).
read -r -a jvm_opts <"$home/conf/jvm-options"

die() { echo "standalone-cluster.sh: $*" >&2; exit 1; }
note() { echo "standalone-cluster.sh: $*" >&2; }

usage() {
  cat >&2 <<'EOF'
usage: standalone-cluster.sh start N [--gpus-per-worker K] [--share-gpus] [--cores C] [--memory M] [--discovery]
       standalone-cluster.sh status
       standalone-cluster.sh stop
(the comment at the top of this script explains each)
EOF
  exit 2
}

# is_ours PID: the pid is alive and still one of our Spark daemons (guards against reused pids).
is_ours() {
  local pid=$1 args
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$args" in
    *org.apache.spark.deploy.master.Master*|*org.apache.spark.deploy.worker.Worker*) [[ "$args" == *"$dir"* ]] ;;
    *) return 1 ;;
  esac
}

# descendants PID: every process below PID (executors are the workers' children). Reads /proc directly: ps and
# pgrep are missing from slim images.
descendants() {
  local p stat rest f child children=()
  for p in /proc/[0-9]*; do
    read -r stat <"$p/stat" 2>/dev/null || continue
    rest=${stat##*) }           # after "pid (comm) ": state ppid ...
    read -r -a f <<<"$rest"
    [ "${f[1]:-}" = "$1" ] && children+=("${p#/proc/}")
  done
  for child in "${children[@]+"${children[@]}"}"; do
    echo "$child"
    descendants "$child"
  done
}

recorded_pids() { # worker pids first, the master last
  local f
  for f in "$dir"/worker-*/worker.pid "$dir"/master.pid; do
    [ -f "$f" ] && cat "$f"
  done
  return 0
}

log_tail() { # log_tail FILE: the end of a log, for error messages
  if [ -f "$1" ]; then
    echo "---- last lines of $1 ----" >&2
    tail -n 30 "$1" >&2
  fi
}

stop_cluster() {
  local pids=() victims=() pid
  for pid in $(recorded_pids); do
    if is_ours "$pid"; then pids+=("$pid"); fi
  done
  if [ "${#pids[@]}" -eq 0 ]; then
    note "nothing running (cluster dir $dir)"
  else
    # Executors first learn of the stop from their worker; remember them so none outlives it.
    for pid in "${pids[@]}"; do
      victims+=("$pid")
      for d in $(descendants "$pid"); do victims+=("$d"); done
    done
    kill -TERM "${victims[@]}" 2>/dev/null || true
    for _ in $(seq 1 50); do
      local alive=0
      for pid in "${victims[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.2
    done
    for pid in "${victims[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then
        note "pid $pid ignored SIGTERM for 10 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    note "stopped ${#victims[@]} process(es): ${victims[*]}"
  fi
  rm -f "$dir"/master.pid "$dir"/worker-*/worker.pid "$dir"/master-url "$dir"/master-webui-url
}

status_cluster() {
  local any=0 f pid name
  for f in "$dir"/master.pid "$dir"/worker-*/worker.pid; do
    [ -f "$f" ] || continue
    any=1
    pid=$(cat "$f")
    name=$(basename "$(dirname "$f")")
    [ "$f" = "$dir/master.pid" ] && name=master
    if is_ours "$pid"; then
      local execs
      execs=$(descendants "$pid" | tr '\n' ' ')
      echo "$name pid $pid running${execs:+, child processes (executors): $execs}"
    else
      echo "$name pid $pid NOT running (log: $(dirname "$f")/$( [ "$name" = master ] && echo master.log || echo worker.log))"
    fi
  done
  if [ "$any" = 0 ]; then
    echo "no cluster recorded in $dir"
    return 3
  fi
  [ -f "$dir/master-url" ] && echo "master $(cat "$dir/master-url")"
  [ -f "$dir/master-webui-url" ] && echo "master web UI $(cat "$dir/master-webui-url") (JSON: $(cat "$dir/master-webui-url")/json/)"
  return 0
}

# wait_for_line FILE REGEX PID WHAT: wait until FILE has a line matching REGEX; fail if PID dies or time runs out.
wait_for_line() {
  local file=$1 regex=$2 pid=$3 what=$4 deadline=$((SECONDS + timeout))
  while ! grep -Eq "$regex" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail "$file"
      stop_cluster
      die "$what (pid $pid) exited during start-up; log: $file"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log_tail "$file"
      stop_cluster
      die "$what did not get ready within ${timeout}s (waited for /$regex/ in $file)"
    fi
    sleep 0.3
  done
}

start_cluster() {
  local n=${1:-}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
  shift
  local k=1 cores=1 mem=1g discovery=0 share=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --gpus-per-worker) k=${2:-}; shift 2 || usage ;;
      --share-gpus) share=1; shift ;;
      --cores) cores=${2:-}; shift 2 || usage ;;
      --memory) mem=${2:-}; shift 2 || usage ;;
      --discovery) discovery=1; shift ;;
      *) usage ;;
    esac
  done
  [[ "$k" =~ ^[0-9]+$ ]] || die "--gpus-per-worker wants a whole number, got '$k'"
  [[ "$cores" =~ ^[1-9][0-9]*$ ]] || die "--cores wants a positive number, got '$cores'"
  [[ "$mem" =~ ^[1-9][0-9]*[mMgG]$ ]] || die "--memory wants e.g. 512m or 2g, got '$mem'"
  ls "$lib"/spark-core_*.jar >/dev/null 2>&1 \
    || die "no Spark jars in $lib: build first (cd $home && mvn -B -ntp install -DskipTests)"

  for pid in $(recorded_pids); do
    is_ours "$pid" && die "a cluster is already running from $dir (pid $pid): run '$0 stop' first"
  done
  if [ "$k" -gt 0 ] && [ "$discovery" = 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
    local gpus
    gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | grep -c '[0-9]' || true)
    [ "$share" = 0 ] && [ "$((n * k))" -gt "$gpus" ] && note "warning: $((n * k)) gpu addresses offered but nvidia-smi lists $gpus GPU(s)"
  fi

  # A fresh SPARK_HOME whose jars/ links the Maven-resolved jars: workers build executor command lines from it.
  mkdir -p "$dir"
  rm -rf "$dir/spark-home" "$dir"/worker-* "$dir"/master.log
  mkdir -p "$dir/spark-home/jars" "$dir/spark-home/conf"
  ln -s "$lib"/*.jar "$dir/spark-home/jars/"
  cp "$home/conf/log4j2.properties" "$dir/spark-home/conf/log4j2.properties"
  # The daemons log their lifecycle at INFO: this script reads the ports and registrations from those lines.
  cat >"$dir/daemon-log4j2.properties" <<'EOF'
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss.SSS} %-5p %c: %m%n%ex
logger.deploy.name = org.apache.spark.deploy
logger.deploy.level = info
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = info
logger.resource.name = org.apache.spark.resource
logger.resource.level = info
EOF

  # A developer's own Spark settings would change executor command lines: drop them.
  unset SPARK_DIST_CLASSPATH SPARK_PREPEND_CLASSES SPARK_TESTING SPARK_SQL_TESTING SPARK_WORKER_OPTS \
    SPARK_DAEMON_JAVA_OPTS SPARK_LOCAL_DIRS SPARK_WORKER_DIR
  # Loopback only: SPARK_LOCAL_IP also binds the web UIs, SPARK_PUBLIC_DNS is what URLs say.
  export SPARK_HOME="$dir/spark-home" SPARK_CONF_DIR="$dir/spark-home/conf" SPARK_SCALA_VERSION=2.13 \
    SPARK_LOCAL_IP=127.0.0.1 SPARK_PUBLIC_DNS=127.0.0.1
  local common=(-Xmx"$daemon_mem" "${jvm_opts[@]}" -Dlog4j2.configurationFile="$dir/daemon-log4j2.properties"
    -Dmoescore.clusterDir="$dir" -cp "$SPARK_HOME/jars/*")

  # Port 0 everywhere: the OS picks free ports and the logs say which.
  nohup "$java" "${common[@]}" -Dspark.master.rest.enabled=false \
    org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 0 --webui-port 0 \
    >"$dir/master.log" 2>&1 </dev/null &
  local master_pid=$!
  echo "$master_pid" >"$dir/master.pid"
  wait_for_line "$dir/master.log" 'Starting Spark master at spark://' "$master_pid" "master"
  wait_for_line "$dir/master.log" 'MasterWebUI.*started at http' "$master_pid" "master web UI"
  local url webport
  url=$(grep -Eo 'Starting Spark master at spark://[0-9.]+:[0-9]+' "$dir/master.log" | head -n 1 | grep -Eo 'spark://.*')
  webport=$(grep -E 'MasterWebUI.*started at http' "$dir/master.log" | head -n 1 | grep -Eo '[0-9]+$')
  echo "http://127.0.0.1:$webport" >"$dir/master-webui-url"

  local i pids=()
  for ((i = 0; i < n; i++)); do
    local w="$dir/worker-$i" res=() addrs=() a
    mkdir -p "$w/work" "$w/local"
    local first=$((share ? 0 : i * k))
    for ((a = first; a < first + k; a++)); do addrs+=("$a"); done
    if [ "$k" -gt 0 ] && [ "$discovery" = 0 ]; then
      local json='' sep=''
      for a in "${addrs[@]}"; do json+="$sep\"$a\""; sep=','; done
      printf '[{"id":{"componentName":"spark.worker","resourceName":"gpu"},"addresses":[%s]}]\n' "$json" >"$w/resources.json"
      res=(-Dspark.worker.resource.gpu.amount="$k" -Dspark.worker.resourcesFile="$w/resources.json")
    elif [ "$k" -gt 0 ]; then
      res=(-Dspark.worker.resource.gpu.amount="$k" -Dspark.worker.resource.gpu.discoveryScript="$home/conf/get-gpus.sh")
    fi
    (
      [ "$discovery" = 1 ] && [ "$n" -gt 1 ] && export MOESCORE_GPU_ADDRESSES="$(IFS=,; echo "${addrs[*]}")"
      # Executors put their shuffle and block files under SPARK_LOCAL_DIRS, inside the cluster dir.
      export SPARK_LOCAL_DIRS="$w/local"
      exec nohup "$java" "${common[@]}" "${res[@]+"${res[@]}"}" \
        org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --port 0 --webui-port 0 \
        --cores "$cores" --memory "$mem" --work-dir "$w/work" "$url" >"$w/worker.log" 2>&1 </dev/null
    ) &
    pids+=($!)
    echo "$!" >"$w/worker.pid"
  done
  for ((i = 0; i < n; i++)); do
    wait_for_line "$dir/worker-$i/worker.log" 'Successfully registered with master' "${pids[$i]}" "worker $i"
  done

  echo "$url" >"$dir/master-url"
  note "master $url (web UI $(cat "$dir/master-webui-url")), $n worker(s) with $cores core(s), $mem and" \
    "$k gpu address(es) each; logs in $dir; stop with: $0 stop"
  echo "$url"
}

case "${1:-}" in
  start) shift; start_cluster "$@" ;;
  stop) stop_cluster ;;
  status) status_cluster ;;
  *) usage ;;
esac
