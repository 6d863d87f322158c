"""Issue 10: the same 2:4 pruning as ours, in PyTorch, and the perplexities it gives, to hold our numbers against.

Loads the demo model (MixtralForCausalLM) in float32, prunes every routed expert's w1, w3 and w2 2:4 along their
input columns by magnitude, by SparseGPT one-shot and by SparseGPT sequential, and reports the perplexity of each on
the same held-out windows as our SparsityAccuracy (bench/src/main/java/io/moescore/bench/SparsityAccuracy.java):

  - calibration: every row of demo/calibration.jsonl (32 windows of 256 token ids);
  - evaluation: the rows of demo/input.jsonl whose id starts with "code-" (8 windows of 256 token ids), each scored
    on its own; perplexity = exp(-sum of log p(token_i | tokens before it) / number of predicted tokens);
  - SparseGPT as ours (SparseGpt.java; numpy twin sparsegpt_reference.py): fp64, dampening 1% of mean diag(H),
    blocks of 128 columns, in every group of 4 input columns the 2 weights of smallest w^2 / [H^-1]_jj^2 pruned
    (ties: the earlier), errors pushed onto the later columns; H = X^T X of the inputs routed to each expert: the
    normed hidden state (the MoE block's input) for w1 and w3, the SwiGLU product silu(x w1^T) * (x w3^T) for w2;
    one-shot: every layer's H from the dense model; sequential: layer l's H through layers 0..l-1 already pruned
    (fp32, as our partly pruned model copies hold them); experts no calibration token reached fall back to magnitude;
  - magnitude: in every group of 4, the 2 largest |w| kept (ties: the earlier);
  - our compressed checkpoint stores the pruned values in bf16 (the demo model's dtype), so the pruned weights are
    rounded to bf16 here too ("sparsegpt_perplexity"); "sparsegpt_fp32_weights_perplexity" skips that rounding.

The experts run through this script's own MoE forward (router softmax, top-k, renormalised as Mixtral does, SwiGLU
experts from the checkpoint's tensors), patched into each decoder layer's sparse MoE block, so the expert weights
can be swapped whatever layout the installed transformers keeps them in; attention, norms and the head stay
transformers'. The dense perplexity is computed both ways and must agree ("patched_forward_matches_transformers").

    python3 gpu-runtime/src/test/python/sparsegpt_torch_perplexity.py [OUT.json] [--model DIR] [--demo DIR]
        [--ours bench/results/sparsity-accuracy-demo.json]

Prints and writes JSON (default OUT: sparsegpt-torch-perplexity.json): dense, magnitude, sparsegpt and
sparsegpt_sequential perplexities, each over dense, and, where our SparsityAccuracy result is found, ours beside them with the relative difference.
Runs on the GPU when there is one (TF32 off: float32 matmuls), else on the CPU (a few minutes).
"""
import argparse
import glob
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file

BLOCKSIZE = 128
PERCDAMP = 0.01


def read_rows(path, id_prefix=""):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if id_prefix and not str(r.get("id", "")).startswith(id_prefix):
                continue
            rows.append([int(t) for t in r["tokens"]])
    return rows


def load_model(model_dir, device):
    kwargs = dict(attn_implementation="eager")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs)
    except TypeError:  # transformers before 4.56 names it torch_dtype
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, **kwargs)
    return model.to(device).eval()


def checkpoint_tensors(model_dir):
    tensors = {}
    for f in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        tensors.update(load_file(f))
    return tensors


def moe_blocks(model):
    """Each decoder layer's sparse MoE block (block_sparse_moe in transformers 4, mlp in 5)."""
    blocks = []
    for layer in model.model.layers:
        for name in ("block_sparse_moe", "mlp"):
            block = getattr(layer, name, None)
            if block is not None and block.__class__.__name__.endswith("SparseMoeBlock"):
                blocks.append(block)
                break
        else:
            raise SystemExit("no sparse MoE block in decoder layer " + layer.__class__.__name__)
    return blocks


class Experts:
    """One layer's router and experts as plain tensors (w1 = gate, w3 = up, w2 = down), and its MoE forward."""

    def __init__(self, layer, tensors, config, device):
        prefix = "model.layers.%d.block_sparse_moe." % layer
        self.layer = layer
        self.router = tensors[prefix + "gate.weight"].float().to(device)
        self.top_k = config.num_experts_per_tok
        self.w = {}
        for e in range(config.num_local_experts):
            for p in ("w1", "w2", "w3"):
                self.w[(e, p)] = tensors[prefix + "experts.%d.%s.weight" % (e, p)].float().to(device)
        self.num_experts = config.num_local_experts
        self.hessians = None   # (expert, "gate_up" | "down") -> fp64 X^T X, while calibrating

    def forward(self, hidden):
        shape = hidden.shape
        x = hidden.reshape(-1, shape[-1]).float()
        logits = x @ self.router.T
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        top_w, top_i = torch.topk(probs, self.top_k, dim=-1)
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        for e in range(self.num_experts):
            token, slot = torch.nonzero(top_i == e, as_tuple=True)
            if token.numel() == 0:
                continue
            xe = x[token]
            swiglu = F.silu(xe @ self.w[(e, "w1")].T) * (xe @ self.w[(e, "w3")].T)
            if self.hessians is not None:
                xd = xe.double()
                sd = swiglu.double()
                self.add(e, "gate_up", xd.T @ xd)
                self.add(e, "down", sd.T @ sd)
            y = swiglu @ self.w[(e, "w2")].T
            out.index_add_(0, token, y * top_w[token, slot].unsqueeze(1))
        return out.reshape(shape).to(hidden.dtype), logits

    def add(self, e, kind, h):
        key = (e, kind)
        self.hessians[key] = h if key not in self.hessians else self.hessians[key] + h


def patch(model, experts):
    """Routes each MoE block's forward through Experts.forward, returning what the original returns."""
    for block, ex in zip(moe_blocks(model), experts):
        probe = torch.zeros(1, 2, ex.router.shape[1], device=ex.router.device)
        with torch.no_grad():
            returns_tuple = isinstance(block(probe), tuple)

        def forward(hidden_states, *args, _ex=ex, _tuple=returns_tuple, **kwargs):
            out, logits = _ex.forward(hidden_states)
            return (out, logits) if _tuple else out

        block.forward = forward


@torch.no_grad()
def log_likelihood(model, rows, device):
    total, predicted = 0.0, 0
    for tokens in rows:
        ids = torch.tensor([tokens], device=device)
        logits = model(input_ids=ids).logits.float()[0]
        lp = torch.log_softmax(logits[:-1], dim=-1).gather(1, ids[0, 1:].unsqueeze(1))
        total += lp.double().sum().item()
        predicted += len(tokens) - 1
    return total, predicted


def perplexity(model, rows, device):
    total, predicted = log_likelihood(model, rows, device)
    return math.exp(-total / predicted)


def magnitude_24(w):
    rows, cols = w.shape
    groups = w.reshape(rows, cols // 4, 4)
    order = torch.argsort(-groups.abs(), dim=-1, stable=True)   # ties: the earlier column ranks first
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order[..., :2], True)
    return (groups * keep).reshape(rows, cols)


def sparsegpt_24(W, H, blocksize=BLOCKSIZE, percdamp=PERCDAMP):
    """sparsegpt_reference.py's algorithm in torch, fp64."""
    W = W.double().clone()
    H = H.double().clone()
    cols = W.shape[1]
    dead = torch.nonzero(torch.diag(H) == 0).flatten()
    H[dead, dead] = 1
    W[:, dead] = 0
    diag = torch.arange(cols)
    H[diag, diag] += percdamp * torch.mean(torch.diag(H))
    L = torch.linalg.cholesky(H)
    Linv = torch.linalg.inv(L)
    Hinv = torch.linalg.cholesky(Linv.T @ Linv).T   # the upper Cholesky factor of H^-1
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        mask1 = torch.zeros(W1.shape, dtype=torch.bool)
        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            if i % 4 == 0:
                tmp = W1[:, i:i + 4] ** 2 / (torch.diag(Hinv1)[i:i + 4].reshape(1, -1)) ** 2
                smallest = torch.argsort(tmp, dim=1, stable=True)[:, :2]
                mask1.scatter_(1, i + smallest, True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= torch.outer(err1, Hinv1[i, i:])
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W


@torch.no_grad()
def sequential(model, experts, calibration, device, dense_weights):
    """SparseGPT layer by layer, each calibrated through the layers before it pruned; the weights bf16-rounded."""
    out = {}
    for ex in experts:
        ex.hessians = {}
        for tokens in calibration:
            model(input_ids=torch.tensor([tokens], device=device))
        hs, ex.hessians = ex.hessians, None
        for e in range(ex.num_experts):
            for p in ("w1", "w3", "w2"):
                w = dense_weights[(ex.layer, (e, p))].cpu()
                h = hs.get((e, "down" if p == "w2" else "gate_up"))
                sparse = magnitude_24(w).double() if h is None else sparsegpt_24(w, h.cpu())
                out[(ex.layer, e, p)] = sparse.to(torch.bfloat16).float()
                if h is not None:   # unreached experts see no calibration token: their weights change nothing
                    ex.w[(e, p)] = sparse.float().to(device)
    for ex in experts:
        for k in ex.w:
            ex.w[k] = dense_weights[(ex.layer, k)].clone()
    return out


def zeros_ok(w):
    """Every group of 4 holds at least 2 zeros."""
    return bool(((w.reshape(w.shape[0], -1, 4) == 0).sum(-1) >= 2).all())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "..", "..", "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default="sparsegpt-torch-perplexity.json")
    ap.add_argument("--model", default=os.path.join(repo, "demo", "tiny-moe-code"))
    ap.add_argument("--demo", default=os.path.join(repo, "demo"), help="folder of calibration.jsonl and input.jsonl")
    ap.add_argument("--ours", default=os.path.join(repo, "bench", "results",
                                                   "sparsity-accuracy-demo.json"))
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    calibration = read_rows(os.path.join(args.demo, "calibration.jsonl"))
    evaluation = read_rows(os.path.join(args.demo, "input.jsonl"), "code-")
    print("calibration: %d rows, %d tokens; evaluation: %d rows, %d tokens; device %s" % (
        len(calibration), sum(map(len, calibration)), len(evaluation), sum(map(len, evaluation)), device))

    model = load_model(args.model, device)
    config = model.config
    dense_hf = perplexity(model, evaluation, device)
    tensors = checkpoint_tensors(args.model)
    experts = [Experts(l, tensors, config, device) for l in range(config.num_hidden_layers)]
    patch(model, experts)
    dense = perplexity(model, evaluation, device)
    matches = abs(dense - dense_hf) <= 1e-4 * dense_hf
    print("dense perplexity %.4f (transformers' own MoE forward: %.4f)%s" % (
        dense, dense_hf, "" if matches else "  WARNING: the patched forward disagrees"))

    for ex in experts:   # one-shot: every layer's Hessians from the dense model
        ex.hessians = {}
    with torch.no_grad():
        for tokens in calibration:
            model(input_ids=torch.tensor([tokens], device=device))
    hessians = [ex.hessians for ex in experts]
    for ex in experts:
        ex.hessians = None

    dense_weights = {(ex.layer, k): w.clone() for ex in experts for k, w in ex.w.items()}
    fell_back = {}
    pruned = {"magnitude": {}, "sparsegpt": {}, "sparsegpt_fp32_weights": {},
              "sparsegpt_sequential": sequential(model, experts, calibration, device, dense_weights)}
    for ex, hs in zip(experts, hessians):
        for e in range(ex.num_experts):
            for p in ("w1", "w3", "w2"):
                w = dense_weights[(ex.layer, (e, p))].cpu()
                pruned["magnitude"][(ex.layer, e, p)] = magnitude_24(w)
                h = hs.get((e, "down" if p == "w2" else "gate_up"))
                if h is None:
                    fell_back.setdefault(ex.layer, set()).add(e)
                    sparse = magnitude_24(w).double()
                else:
                    sparse = sparsegpt_24(w, h.cpu())
                pruned["sparsegpt_fp32_weights"][(ex.layer, e, p)] = sparse.float()
                pruned["sparsegpt"][(ex.layer, e, p)] = sparse.to(torch.bfloat16).float()

    results = {"model": os.path.relpath(args.model, repo), "device": device if device == "cpu" else torch.cuda.get_device_name(0),
               "torch": torch.__version__, "transformers": transformers.__version__,
               "calibration_rows": len(calibration), "calibration_tokens": sum(map(len, calibration)),
               "eval_rows": len(evaluation), "eval_predicted_tokens": sum(len(r) - 1 for r in evaluation),
               "dense_perplexity": dense, "dense_perplexity_transformers_forward": dense_hf,
               "patched_forward_matches_transformers": matches}
    for method, weights in pruned.items():
        for (layer, e, p), w in weights.items():
            assert zeros_ok(w), "%s layer %d expert %d %s keeps more than 2 of 4" % (method, layer, e, p)
            experts[layer].w[(e, p)] = w.to(device)
        results[method + "_perplexity"] = perplexity(model, evaluation, device)
        print("%s perplexity %.4f (x%.3f dense)" % (method, results[method + "_perplexity"],
                                                   results[method + "_perplexity"] / dense))
    for method in pruned:
        results[method + "_over_dense"] = results[method + "_perplexity"] / dense
    results["experts_fell_back_to_magnitude"] = {str(l): sorted(s) for l, s in sorted(fell_back.items())}

    if os.path.exists(args.ours):
        ours = json.load(open(args.ours))
        results["ours"] = {"source": os.path.relpath(args.ours, repo)}
        for key in ("dense_perplexity", "magnitude_perplexity", "sparsegpt_perplexity",
                    "sparsegpt_sequential_perplexity"):
            if key in ours:
                results["ours"][key] = ours[key]
                results["ours"][key.replace("_perplexity", "_relative_difference")] = \
                    results[key] / ours[key] - 1
        print("ours: %s" % json.dumps(results["ours"]))

    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    print("wrote", args.out)
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
