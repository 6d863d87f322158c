#!/usr/bin/env bash
# On a GPU machine staged with ../shared/device/pack (spark-job's classpath and test classes, plus
# bench/target/classes: README, developer notes): the Spark job's GPU tests, then the job-vs-single-process
# benchmark on a synthetic OLMoE-1B-7B-shaped checkpoint (made by bench/python/bench_peer.py).
#   bash .device/boot/boot.sh bash bench/spark-device-run.sh [tests|bench|all|portability]
# portability: the portability job in local mode, full suite, on every GPU of this machine (one after the other),
# report and tables into $OUT/portability (commit them under bench/results/).
set -uo pipefail
what=${1:-all}
out=${OUT:-/tmp/moescore-out}
mkdir -p "$out"
opts="$DEVJAVAOPTS $(cat conf/jvm-options) -Dlog4j2.configurationFile=conf/log4j2.properties"
if [ "$what" = portability ]; then
  java -Xmx48g -Dspark.master='local[1]' -Dspark.ui.enabled=false $opts -cp "$DEVCP" \
    io.moescore.bench.portability.PortabilityJob --output "$out/portability" --mode overwrite --suite full \
    --model demo/tiny-moe-code --label "device-$(hostname)" 2>&1 | grep -v " WARN \| INFO " | tail -30
  exit 0
fi
if [ "$what" != bench ]; then
  java $opts -cp "$DEVCP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary \
    --include-tag gpu --select-class io.moescore.job.CudaScoreJobTest 2>&1 | grep -v "^\s*$" | grep -v " WARN \| INFO " | tail -40
fi
if [ "$what" != tests ]; then
  [ -f /tmp/olmoe/config.json ] || python3 bench/python/bench_peer.py olmoe /tmp/olmoe /tmp/peer.json save-only
  java -Xmx32g $opts -cp "$DEVCP" io.moescore.bench.spark.JobOverheadBenchmark /tmp/olmoe /tmp/jobwork \
    "$out/job-overhead-olmoe.json" rows=512 seq=512 master=local[2] 2>&1 | grep -v " WARN \| INFO " | tail -30
fi
