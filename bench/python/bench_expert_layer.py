# PyTorch peers of ExpertLayerBenchmark on the same GPU: one MoE expert layer (routing, gate+up, SwiGLU, down,
# weighted combine) with random routing, as (a) a per-expert cuBLAS loop, (b) torch._grouped_mm (CUTLASS
# grouped GEMM), (c) a per-expert loop over 2:4 weights through to_sparse_semi_structured (cuSPARSELt).
# Median of 10 CUDA-event timings after 3 warm-ups; dense-equivalent TFLOP/s = 2 T k 3 H F / time.
#   python3 bench/python/bench_expert_layer.py OUT.json [shapes=mixtral,olmoe,qwen15,qwen3] [tokens=512,4096,16384]
import json, sys, torch
import torch.nn.functional as Fn
from torch.sparse import to_sparse_semi_structured, SparseSemiStructuredTensor

SHAPES = {"mixtral": ("Mixtral-8x7B", 4096, 14336, 8, 2), "olmoe": ("OLMoE-1B-7B", 2048, 1024, 64, 8),
          "qwen15": ("Qwen1.5-MoE-A2.7B", 2048, 1408, 60, 4), "qwen3": ("Qwen3-30B-A3B", 2048, 768, 128, 8)}
opts = dict(a.split("=", 1) for a in sys.argv[2:])
shapes = opts.get("shapes", "mixtral,olmoe,qwen15,qwen3").split(",")
tokens_list = [int(t) for t in opts.get("tokens", "512,4096,16384").split(",")]
wanted = opts.get("peers", "cublas_loop,grouped_mm,cusparselt_loop").split(",")  # the cuSPARSELt loop is slow
dev, dt = "cuda", torch.bfloat16
SparseSemiStructuredTensor._FORCE_CUTLASS = False

def prune24(w):
    g = w.reshape(-1, 4); keep = g.abs().topk(2, dim=1).indices
    return (g * torch.zeros_like(g).scatter_(1, keep, 1)).reshape(w.shape)

def timed(fn):
    for _ in range(3): fn()
    ts = []
    for _ in range(10):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize(); ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]

def route(logits, k):
    p = torch.softmax(logits.float(), -1); g, e = p.topk(k, -1); return g / g.sum(-1, keepdim=True), e

results = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, runs=[])
for key in shapes:
    name, H, F, E, K = SHAPES[key]
    torch.manual_seed(0)
    wg = torch.randn(E, F, H, device=dev, dtype=dt) / H ** 0.5
    wu = torch.randn(E, F, H, device=dev, dtype=dt) / H ** 0.5
    wd = torch.randn(E, H, F, device=dev, dtype=dt) / F ** 0.5
    w_gu_t = torch.cat([wg, wu], 1).transpose(1, 2).contiguous()  # [E, H, 2F] for grouped_mm
    wd_t = wd.transpose(1, 2).contiguous()                        # [E, F, H]
    try:
        sg = [to_sparse_semi_structured(prune24(wg[e])) for e in range(E)]
        su = [to_sparse_semi_structured(prune24(wu[e])) for e in range(E)]
        sd = [to_sparse_semi_structured(prune24(wd[e])) for e in range(E)]
        sparse_ok = True
    except Exception as ex:
        sparse_ok = False; print("cuSPARSELt unavailable:", ex, flush=True)
    for T in tokens_list:
        x = torch.randn(T, H, device=dev, dtype=dt); logits = torch.randn(T, E, device=dev)
        flops = 2.0 * T * K * 3 * H * F

        def loop(sparse=False):
            gates, experts = route(logits, K)
            out = torch.zeros(T, H, device=dev, dtype=torch.float32)
            flat = experts.reshape(-1); order = flat.argsort(); counts = torch.bincount(flat, minlength=E).tolist()
            tok = order // K; gw = gates.reshape(-1)[order]; start = 0
            for e in range(E):
                n = counts[e]
                if n == 0: continue
                idx = tok[start:start + n]; h = x[idx]
                if sparse:  # cuSPARSELt: sparse operand first, so compute W h^T
                    pad = (-n) % 8
                    hp = Fn.pad(h, (0, 0, 0, pad)) if pad else h
                    a = (sg[e] @ hp.t()).t()[:n]; b = (su[e] @ hp.t()).t()[:n]
                    y = (sd[e] @ Fn.pad(Fn.silu(a) * b, (0, 0, 0, pad)).t()).t()[:n] if pad else (sd[e] @ (Fn.silu(a) * b).t()).t()
                else:
                    y = (Fn.silu(h @ wg[e].t()) * (h @ wu[e].t())) @ wd[e].t()
                out.index_add_(0, idx, y.float() * gw[start:start + n, None])
                start += n
            return out

        def grouped():
            gates, experts = route(logits, K)
            flat = experts.reshape(-1); order = flat.argsort()
            offs = torch.cumsum(torch.bincount(flat, minlength=E), 0).to(torch.int32)
            h = x[order // K]
            gu = torch._grouped_mm(h, w_gu_t, offs=offs)
            y = torch._grouped_mm(Fn.silu(gu[:, :F]) * gu[:, F:], wd_t, offs=offs)
            out = torch.zeros(T, H, device=dev, dtype=torch.float32)
            out.index_add_(0, order // K, y.float() * gates.reshape(-1)[order, None])
            return out

        peers = [("cublas_loop", loop), ("grouped_mm", grouped)] + ([("cusparselt_loop", lambda: loop(True))] if sparse_ok else [])
        for label, fn in [(l, f) for l, f in peers if l in wanted]:
            try:
                ms = timed(fn)
                row = dict(shape=name, tokens=T, kernel=label, median_ms=ms, dense_equivalent_tflops=flops / (ms * 1e-3) / 1e12)
            except Exception as ex:
                row = dict(shape=name, tokens=T, kernel=label, error=str(ex)[:200])
            results["runs"].append(row); print(json.dumps(row), flush=True)
    del wg, wu, wd, w_gu_t, wd_t
    if sparse_ok: del sg, su, sd
    torch.cuda.empty_cache()
json.dump(results, open(sys.argv[1], "w"), indent=1)
