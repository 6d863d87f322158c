#!/usr/bin/env bash
# One device call: attention_check (correctness, then timing of the fa and sm90 variants, the old tensor-core
# kernel and the half conversions) and bench_sdpa.py (torch SDPA flash / cuDNN) on the same GPU. Run from a folder holding
# attention_check (built beforehand: see attention_check.cu), its source tree and bench_sdpa.py; results in $OUT.
set -u
OUT=${OUT:-/tmp/attention-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,memory.used --format=csv > "$OUT/gpu.txt" 2>&1
date -u >> "$OUT/gpu.txt"
# a hung kernel (a ring that never fills) ends the run instead of the lease; the output is line-buffered
timeout "${CHECK_TIMEOUT:-400}" ./attention_check "${SEED:-0}" all > "$OUT/check.txt" 2>&1
echo "attention_check rc $?" >> "$OUT/check.txt"
python3 bench_sdpa.py > "$OUT/sdpa.txt" 2>&1
echo "bench_sdpa rc $?" >> "$OUT/sdpa.txt"
cat "$OUT/gpu.txt"
grep -E "^device|products|FAIL|failures|rc " "$OUT/check.txt"
grep -cE "^check .*PASS" "$OUT/check.txt" | sed 's/^/checks passed: /'
grep -E "^time" "$OUT/check.txt" | sed 's/^time //'
sed -n '/^summary/,/^done/p' "$OUT/check.txt"
cat "$OUT/sdpa.txt"
