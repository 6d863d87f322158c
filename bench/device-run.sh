#!/usr/bin/env bash
# On a GPU machine staged with ../shared/device/pack (gpu-runtime's classpath and test classes, plus
# bench/target/classes for the benchmark mains: README, developer notes): gpu-runtime's GPU tests and the benchmarks
# of NOTES.md, ours and the PyTorch peers in the same call. Results under $OUT (the device tool brings them back).
#   bash .device/boot/boot.sh bash bench/device-run.sh tests|kernel-tests|fixture-tests|test:CLASS|gemm|experts|...
# Each step's seconds go to $OUT/steps.txt; `tarout` last packs $OUT into all.tgz.
set -uo pipefail
out=${OUT:-/tmp/moescore-out}
mkdir -p "$out"
py=bench/python
# the benchmark mains are in the bench module: say so before java says ClassNotFoundException
bench_staged() {
  local e; IFS=':' read -r -a entries <<<"$DEVCP"
  for e in "${entries[@]}"; do [ -d "$e/io/moescore/bench" ] && return 0; done
  echo "device-run: bench/target/classes is not staged: pack it with gpu-runtime's classpath (README, developer notes)" >&2
  return 1
}
run() {
  case "$1" in io.moescore.bench.*) bench_staged || return 1;; esac
  java -Xmx48g $DEVJAVAOPTS -Dmoescore.kernelCache="$out/kernels-cache.json" -cp "$DEVCP" "$@"
}
checkpoint() { [ -f /tmp/$1/config.json ] || python3 $py/bench_peer.py $1 /tmp/$1 /tmp/peer-$1.json save-only 2>&1 | tail -1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1
for what in "$@"; do
  started=$(date +%s)
  case "$what" in
    tests)  # every GPU test; SUITE_TIMEOUT seconds at most (default 420), so later steps of the call still run
      timeout "${SUITE_TIMEOUT:-420}" java -Xmx48g $DEVJAVAOPTS -Dmoescore.kernelCache="$out/kernels-cache.json" \
        -cp "$DEVCP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary \
        --scan-classpath --include-tag gpu 2>&1 | grep -v "^\s*$" > "$out/gpu-tests.log"
      grep -vE "^\s+(org|java|jdk|sun)\." "$out/gpu-tests.log" | tail -70 ;;
    tarout)  # everything under $OUT as one all.tgz (fewer, smaller files to bring back); last step of a call
      (cd "$out" && tar czf /tmp/moescore-all.tgz --exclude=all.tgz . && find . -mindepth 1 -maxdepth 1 \
        ! -name steps.txt -exec rm -rf {} + && mv /tmp/moescore-all.tgz all.tgz) ;;
    kernel-tests)  # CudaBackendTest alone: every kernel family against the CPU (minutes, not the whole suite)
      timeout 300 java -Xmx48g $DEVJAVAOPTS -cp "$DEVCP" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --select-class io.moescore.backend.cuda.CudaBackendTest 2>&1 \
        | grep -v "^\s*$" > "$out/kernel-tests.log"; grep -vE "^\s+(org|java|jdk|sun)\." "$out/kernel-tests.log" | tail -40 ;;
    test:*)  # one GPU test class, e.g. test:io.moescore.engine.CudaVectorSparseModelTest
      cls=${what#test:}
      timeout 300 java -Xmx48g $DEVJAVAOPTS -cp "$DEVCP" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --select-class "$cls" 2>&1 \
        | grep -v "^\s*$" > "$out/${cls##*.}.log"; grep -vE "^\s+(org|java|jdk|sun)\." "$out/${cls##*.}.log" | tail -30 ;;
    fixture-tests)  # the whole model against transformers' fixtures, every precision
      timeout 300 java -Xmx48g $DEVJAVAOPTS -cp "$DEVCP" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --select-class io.moescore.engine.CudaReferenceFixtureTest 2>&1 \
        | grep -v "^\s*$" > "$out/fixture-tests.log"; grep -vE "^\s+(org|java|jdk|sun)\." "$out/fixture-tests.log" | tail -30 ;;
    precision-olmoe|precision-mixtral)  # full forward, bf16 vs fp16 precision (same kernels, other operand type)
      shape=${what#precision-}; checkpoint $shape
      for e in dense 2:4; do
        for p in bf16 fp16; do
          run io.moescore.bench.ForwardBenchmark /tmp/$shape "$out/precision-$shape-${e/:/}-$p.json" tokens=8192 \
            experts=$e precision=$p 2>&1 | tail -3
        done
      done ;;
    gemm)
      run io.moescore.bench.GemmBenchmark "$out/ours-gemm.json"
      python3 $py/bench_gemm.py "$out/peer-gemm.json" ;;
    experts)
      run io.moescore.bench.ExpertLayerBenchmark "$out/ours-expert-layer.json"
      python3 $py/bench_expert_layer.py "$out/peer-expert-layer.json" ;;
    experts-fast)  # without the cuSPARSELt per-expert loop (minutes; it loses everywhere)
      run io.moescore.bench.ExpertLayerBenchmark "$out/ours-expert-layer.json"
      python3 $py/bench_expert_layer.py "$out/peer-expert-layer.json" peers=cublas_loop,grouped_mm
      python3 bench/plot_expert_layer.py "$out/ours-expert-layer.json" "$out/peer-expert-layer.json" \
        "$out/expert-layer.svg" ;;
    experts-ours)  # ours only (every kernel family) at the issue's target sizes, for A/B between calls
      run io.moescore.bench.ExpertLayerBenchmark "$out/ours-expert-layer.json" tokens=4096,16384 ;;
    forward-olmoe|forward-mixtral|forward-qwen3|forward-deepseek|forward2k-olmoe|forward2k-mixtral|forward2k-qwen3)
      # issue 28's protocol: 8k tokens of 512-token sequences (forward2k-: of 2048-token ones), the three peers,
      # ours dense and 2:4, then each op's roofline (bench/NOTES.md)
      shape=${what#forward*-}; seq=512; [[ $what == forward2k-* ]] && seq=2048
      checkpoint $shape
      python3 $py/bench_peer.py $shape /tmp/$shape "$out/peer-$shape-s$seq.json" tokens=8192 seq=$seq compile 2>&1 \
        | grep -v -i warn | tail -4
      for e in dense 2:4; do
        run io.moescore.bench.ForwardBenchmark /tmp/$shape "$out/ours-$shape-s$seq-${e/:/}.json" tokens=8192 \
          seq=$seq experts=$e 2>&1 | tail -3
        run io.moescore.bench.roofline.Roofline "$out/ours-$shape-s$seq-${e/:/}.json" \
          "$out/roofline-$shape-s$seq-${e/:/}.md"
      done ;;
    forwardws-olmoe|forwardws-mixtral|forwardws-qwen3)
      # ours, dense experts, every linear layer and expert on the warp-specialized wgmma kernel (_sm90w) pinned: the
      # A/B against forward-SHAPE's tuned run, in the same call
      shape=${what#forwardws-}; checkpoint $shape
      run io.moescore.bench.ForwardBenchmark /tmp/$shape "$out/ours-$shape-s512-dense-ws.json" tokens=8192 seq=512 \
        experts=dense kernels=wgmma_ws 2>&1 | tail -3
      run io.moescore.bench.roofline.Roofline "$out/ours-$shape-s512-dense-ws.json" "$out/roofline-$shape-s512-dense-ws.md" ;;
    pyarrow-fixtures)  # issue 23: the Arrow / Parquet files pyarrow and Polars-style writers make (commit them)
      python3 spark-job/src/test/python/make_arrow_fixtures.py "$out/pyarrow-layouts" 2>&1 | tail -3 ;;
    model-olmoe|model-mixtral)  # full forward, dense vs 2:4 vs 128:2:8 experts (pruned on load)
      shape=${what#model-}; checkpoint $shape
      for e in dense 2:4 128:2:8; do
        name=${e/128:2:8/vnm}
        run io.moescore.bench.ForwardBenchmark /tmp/$shape "$out/model-$shape-${name/:/}.json" tokens=8192,32768 experts=$e 2>&1 | tail -5
      done ;;
    deterministic-olmoe|deterministic-mixtral)  # full forward, default vs deterministic (batch-invariant) mode
      shape=${what#deterministic-}; checkpoint $shape
      for d in false true; do
        run io.moescore.bench.ForwardBenchmark /tmp/$shape "$out/deterministic-$shape-$d.json" tokens=8192,32768 \
          deterministic=$d 2>&1 | tail -4
      done ;;
    capacity)  # largest batch next to a 32-layer Mixtral-8x7B-shaped stack, dense vs 2:4 vs 128:2:8
      bench_staged || continue
      checkpoint mixtral
      for e in 128:2:8 2:4 dense; do  # one JVM each: a run's leftovers shrink the next one's room
        name=${e/128:2:8/vnm}
        java -Xmx100g $DEVJAVAOPTS -Dmoescore.kernelCache="$out/kernels-cache.json" -cp "$DEVCP" \
          io.moescore.bench.CapacityBenchmark /tmp/mixtral "$out/capacity-mixtral-${name/:/}.json" experts=$e 2>&1 | tail -3
      done ;;
    bounds-new)  # reference-precision.json (transformers' bf16/fp16 drift, routing margins) for the family fixtures
      # the CUDA backend runs beyond the first four (Granite MoE, GLM-4.5, DeepSeek-V3): the GPU fixture tests read
      # it; commit it
      python3 gpu-runtime/src/test/python/make_precision_bounds.py gpu-runtime/src/test/resources/hf/granitemoe-* \
        gpu-runtime/src/test/resources/hf/glm4moe-* gpu-runtime/src/test/resources/hf/deepseekv3-* 2>&1 | tail -8
      for f in gpu-runtime/src/test/resources/hf/*/reference-precision.json; do
        mkdir -p "$out/bounds/$(dirname "$f")" && cp "$f" "$out/bounds/$f"; done ;;
    gptoss-fixtures)  # issue 24: gpt-oss fixtures by transformers (copied into the test resources; commit them)
      python3 gpu-runtime/src/test/python/make_gptoss_fixtures.py "$out/gptoss-hf" 2>&1 | tail -4
      cp -r "$out"/gptoss-hf/gptoss-* gpu-runtime/src/test/resources/hf/ ;;
    ncu-experts)  # Nsight Compute on the tiled dense expert kernels (_sm90t), OLMoE and Mixtral shapes, 8192 tokens
      for shape in ${NCU_SHAPES:-olmoe mixtral}; do
        /usr/local/cuda/bin/ncu --target-processes all -k "regex:experts_bf16_(gate_up|down)_sm90t\$" \
          --launch-count "${NCU_COUNT:-6}" --section SpeedOfLight --section ComputeWorkloadAnalysis \
          --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy \
          --section LaunchStats -o "$out/prof-$shape" java -Xmx48g $DEVJAVAOPTS -Dmoescore.kernelCache=none \
          -cp "$DEVCP" io.moescore.bench.ExpertLayerBenchmark "$out/ncu-$shape.json" shapes=$shape tokens=8192 \
          > "$out/ncu-$shape.log" 2>&1
        /usr/local/cuda/bin/ncu -i "$out/prof-$shape.ncu-rep" --page details > "$out/prof-$shape.txt" 2>&1
        grep -E "^  [a-z_0-9]+|Duration|Compute \(SM\) Throughput|Issue Slots Busy|Achieved Occupancy" \
          "$out/prof-$shape.txt" | head -30
      done ;;
    *) echo "unknown step $what" ;;
  esac
  echo "$what: $(( $(date +%s) - started )) s" | tee -a "$out/steps.txt"
done
