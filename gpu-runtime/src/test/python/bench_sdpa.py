"""Times torch.nn.functional.scaled_dot_product_attention (flash and cuDNN backends, causal, bf16) at the shapes
attention_check.cu times: 8192 tokens of 512- and 2048-token sequences, heads 16/16, 32/8, 32/4 at head dim 128 and
64.
Sequences of equal length are batched; q, k, v are views of packed [tokens, heads, d] tensors, like the engine's.
GQA through enable_gqa where the backend takes it, else K/V expanded to all heads before timing (said per line).
TFLOP/s counts causal FLOPs once: 4 * sum over sequences of L (L + 1) / 2 * D * heads. CUDA events, 5 warm-ups,
median of 20. Also one bf16 matmul (8192^3) as the device's tensor-core ceiling through cuBLAS.
    python3 bench_sdpa.py [seed]
"""
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(fn, warm=5, reps=20):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else torch.seed() % 1000000007
    torch.manual_seed(seed)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}, seed {seed}")
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = median_ms(lambda: a @ b)
    print(f"matmul bf16 {n}^3: {ms:.3f} ms {2 * n ** 3 / ms / 1e9:.1f} TFLOP/s")
    del a, b
    tokens = 8192
    for L, d, heads, kv in ((L, d, h, kv) for L in (512, 2048) for d in (128, 64)
                            for h, kv in ((16, 16), (32, 8), (32, 4))):
        batch = tokens // L
        q = (torch.rand(batch, L, heads, d, device="cuda") * 4 - 2).to(torch.bfloat16).transpose(1, 2)
        k = (torch.rand(batch, L, kv, d, device="cuda") * 4 - 2).to(torch.bfloat16).transpose(1, 2)
        v = (torch.rand(batch, L, kv, d, device="cuda") * 2 - 1).to(torch.bfloat16).transpose(1, 2)
        flops = 4 * batch * L * (L + 1) / 2 * d * heads
        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            shape = f"L={L:4d} heads {heads:2d}/{kv} d{d} sdpa {name}"
            done = False
            for gqa in ((True, False) if kv != heads else (False,)):
                try:
                    if gqa:
                        kk, vv = k, v
                    else:
                        kk = k.repeat_interleave(heads // kv, dim=1)
                        vv = v.repeat_interleave(heads // kv, dim=1)
                    with sdpa_kernel(backend):
                        fn = lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=True, enable_gqa=gqa)
                        ms = median_ms(fn)
                    how = "enable_gqa" if gqa else ("MHA" if kv == heads else "K/V expanded")
                    print(f"{shape}: {ms:8.4f} ms {flops / ms / 1e9:7.1f} TFLOP/s ({how})")
                    done = True
                    break
                except Exception as e:  # noqa: BLE001 - a backend refusing a shape is reported, not fatal
                    err = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            if not done:
                print(f"{shape}: not run ({err})")
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
