# The cuBLAS peer of GemmBenchmark: x [M, K] bf16 @ W[N, K]^T -> fp32 out, through torch (cuBLAS), at the same
# shapes; the fp32 -> bf16 rounding of x and the fp32 output are included like ours. Median of 20 after 3
# warm-ups, CUDA events.   python3 bench_gemm.py OUT.json [m=8192]
import json, sys, torch
out = sys.argv[1]
m = int(sys.argv[2].replace("m=", "")) if len(sys.argv) > 2 else 8192
# the fused q/k/v products last: Mixtral's (4096 + 2 x 1024 rows), OLMoE's (3 x 2048)
WEIGHTS = [(4096, 4096), (1024, 4096), (28672, 4096), (4096, 14336), (32000, 4096), (2048, 2048), (50304, 2048),
           (6144, 4096), (6144, 2048)]
runs = []
for n, k in WEIGHTS:
    x = torch.randn(m, k, device="cuda")
    w = (torch.randn(n, k, device="cuda") / k ** 0.5).bfloat16()
    for name, fn in [("cublas bf16 out", lambda: x.bfloat16() @ w.t()),
                     ("cublas fp32 out", lambda: torch.mm(x.bfloat16(), w.t(), out_dtype=torch.float32)
                      if hasattr(torch.mm, "__call__") else None)]:
        try:
            fn()
        except Exception as e:  # out_dtype needs a recent torch
            print(name, "unavailable:", e)
            continue
        times = []
        for r in range(23):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); torch.cuda.synchronize()
            if r >= 3:
                times.append(s.elapsed_time(e))
        times.sort()
        ms = times[len(times) // 2]
        tf = 2 * m * n * k / (ms * 1e-3) / 1e12
        runs.append(dict(m=m, n=n, k=k, kernel=name, median_ms=ms, tflops=tf))
        print(f"{m:6d} {n:6d} {k:6d} {name:15s} {ms:9.3f} {tf:9.1f}")
json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, runs=runs), open(out, "w"), indent=1)
