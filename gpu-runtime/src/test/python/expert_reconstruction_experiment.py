"""Experiment (issue 5, the 15% accuracy goal): does tuning each 2:4 expert's kept weights to reproduce the dense
expert's outputs close the gap SparseGPT leaves?

Sequential SparseGPT as sparsegpt_torch_perplexity.py (same model, windows and algorithm), then, per layer and
before the next layer is calibrated, every expert's kept weights (the 2:4 masks fixed) tuned with Adam so that
the sparse expert's SwiGLU output matches the dense expert's on the calibration tokens routed to it through the
layers already pruned (local reconstruction: gate, up and down together, which per-matrix SparseGPT cannot do).
Weights rounded to bf16 at the end, as our compressed checkpoint stores them. Prints perplexity over dense for each
setting.

    python3 gpu-runtime/src/test/python/expert_reconstruction_experiment.py OUT.json [--calibration FILE]
        [--steps 300] [--lrs 1e-4,3e-4,1e-3] [--max-tokens N] [--batch N] [--no-baseline]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sparsegpt_torch_perplexity as ref  # noqa: E402


def swiglu_expert(x, w1, w3, w2):
    return (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def tune(x, dense, sparse, steps, lr, batch=0):
    """Adam on the kept weights of one expert: min mean |E_sparse(x) - E_dense(x)|^2 (batch: random minibatches)."""
    with torch.no_grad():
        target = swiglu_expert(x, dense["w1"], dense["w3"], dense["w2"])
    params = {p: sparse[p].clone().requires_grad_(True) for p in ("w1", "w3", "w2")}
    masks = {p: (sparse[p] != 0).float() for p in params}
    opt = torch.optim.Adam(params.values(), lr=lr)
    first = last = None
    g = torch.Generator(device=x.device).manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        xb, tb = x, target
        if batch and batch < x.shape[0]:
            pick = torch.randint(0, x.shape[0], (batch,), device=x.device, generator=g)
            xb, tb = x[pick], target[pick]
        loss = F.mse_loss(swiglu_expert(xb, params["w1"], params["w3"], params["w2"]), tb)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p in params:
                params[p].mul_(masks[p])
        first = loss.item() if first is None else first
        last = loss.item()
    return {p: params[p].detach() for p in params}, first, last


def run(model, experts, calibration, evaluation, device, dense_weights, steps, lr, max_tokens, batch):
    """Sequential SparseGPT, each layer then tuned (steps 0: SparseGPT alone); returns the perplexity."""
    losses = []
    for ex in experts:
        ex.hessians = {}
        inputs = {}
        original = ex.forward

        def recording(hidden, _ex=ex, _inputs=inputs, _orig=original):
            x = hidden.reshape(-1, hidden.shape[-1]).float()
            probs = torch.softmax(x @ _ex.router.T, dim=-1)
            top_i = torch.topk(probs, _ex.top_k, dim=-1)[1]
            for e in range(_ex.num_experts):
                token = torch.nonzero((top_i == e).any(-1)).flatten()
                if token.numel():
                    _inputs.setdefault(e, []).append(x[token].detach())
            return _orig(hidden)

        ex.forward = recording
        with torch.no_grad():
            for tokens in calibration:
                model(input_ids=torch.tensor([tokens], device=device))
        ex.forward = original
        hs, ex.hessians = ex.hessians, None
        for e in range(ex.num_experts):
            dense = {p: dense_weights[(ex.layer, (e, p))] for p in ("w1", "w3", "w2")}
            sparse = {}
            for p in ("w1", "w3", "w2"):
                h = hs.get((e, "down" if p == "w2" else "gate_up"))
                w = dense[p].cpu()
                sparse[p] = (ref.magnitude_24(w).double() if h is None else ref.sparsegpt_24(w, h.cpu())).float().to(device)
            if steps and e in inputs:
                x = torch.cat(inputs[e])
                if max_tokens and x.shape[0] > max_tokens:   # an evenly spaced subset
                    x = x[torch.linspace(0, x.shape[0] - 1, max_tokens, device=x.device).long()]
                sparse, first, last = tune(x, dense, sparse, steps, lr, batch)
                losses.append((ex.layer, e, first, last))
            for p in sparse:
                ex.w[(e, p)] = sparse[p].to(torch.bfloat16).float()
                assert ref.zeros_ok(ex.w[(e, p)])
    ppl = ref.perplexity(model, evaluation, device)
    for ex in experts:
        for k in ex.w:
            ex.w[k] = dense_weights[(ex.layer, k)].clone()
    return ppl, losses


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", "..", "..", ".."))
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--model", default=os.path.join(repo, "demo", "tiny-moe-code"))
    ap.add_argument("--calibration", default=os.path.join(repo, "demo", "calibration-128.jsonl"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lrs", default="1e-4,3e-4,1e-3")
    ap.add_argument("--max-tokens", type=int, default=0, help="tune on at most this many routed tokens per expert")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--batch", type=int, default=0, help="random minibatches of this many tokens (0: all)")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    calibration = ref.read_rows(args.calibration)
    evaluation = ref.read_rows(os.path.join(repo, "demo", "input.jsonl"), "code-")
    model = ref.load_model(args.model, device)
    tensors = ref.checkpoint_tensors(args.model)
    experts = [ref.Experts(l, tensors, model.config, device) for l in range(model.config.num_hidden_layers)]
    ref.patch(model, experts)
    dense_weights = {(ex.layer, k): w.clone() for ex in experts for k, w in ex.w.items()}
    dense = ref.perplexity(model, evaluation, device)
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
               "calibration": os.path.relpath(args.calibration, repo), "calibration_rows": len(calibration),
               "dense_perplexity": dense, "runs": []}
    print("dense %.4f" % dense, flush=True)
    for lr in ([] if args.no_baseline else [0.0]) + [float(v) for v in args.lrs.split(",")]:
        steps = args.steps if lr else 0
        ppl, losses = run(model, experts, calibration, evaluation, device, dense_weights, steps, lr, args.max_tokens,
                          args.batch)
        gain = sum(last / first for _, _, first, last in losses) / len(losses) if losses else 1.0
        results["runs"].append({"steps": steps, "lr": lr, "max_tokens": args.max_tokens, "batch": args.batch,
                                "perplexity": ppl, "over_dense": ppl / dense,
                                "mean_final_over_initial_loss": gain})
        print("steps %d lr %g: perplexity %.4f (x%.3f dense), reconstruction loss x%.3f" % (
            steps, lr, ppl, ppl / dense, gain), flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
