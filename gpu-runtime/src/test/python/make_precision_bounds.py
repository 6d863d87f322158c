# What the reduced-precision GPU fixture tests may expect of a fixture, measured by transformers on the GPU machine,
# written beside each fixture's reference.json as reference-precision.json:
#   routing margins: for every reference token position, the smallest margin over the MoE layers between the k-th
#     and the (k+1)-th router logit of the float32 reference (transformers' own hidden states, the router's product
#     taken in float64), relative to max(1, |k-th logit|). Where it is tiny the token's expert choice is a tie that
#     any other summation order may break either way (the demo model's layer 0 has near-duplicate untrained
#     experts), so a bf16/fp16 run may route that token differently from the reference without being wrong.
#   transformers' own drift: the same fixture run by transformers in bf16 and in fp16 against its float32 reference
#     (worst per-token |log-prob error| and tokens over 2e-2): how far the library everyone compares with moves.
# The families the CUDA backend runs: softmax top-k (Mixtral, OLMoE, Qwen2/3-MoE, Granite MoE) and GLM-4.5's and
# DeepSeek-V3's group-limited sigmoid router; others are
# skipped with a line saying so. From the repository root, on the GPU machine:
#   python3 gpu-runtime/src/test/python/make_precision_bounds.py gpu-runtime/src/test/resources/hf/* demo/tiny-moe-code
import json, os, sys
import torch, transformers

SOFTMAX_TOP_K = {"mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "granitemoe"}
GROUP_LIMITED = {"glm4_moe", "deepseek_v3"}  # sigmoid scores + correction bias, top-k of the topk_group best groups


def moe_blocks(model, cfg):
    experts = (getattr(cfg, "num_local_experts", None) or getattr(cfg, "num_experts", None)
               or getattr(cfg, "n_routed_experts", None))
    blocks = []
    for name, m in model.named_modules():
        for attr in ("gate", "router"):  # Granite MoE: router.layer is the linear
            gate = getattr(m, attr, None)
            w = getattr(gate, "weight", None)
            if w is None:
                w = getattr(getattr(gate, "layer", None), "weight", None)
            if isinstance(w, torch.Tensor) and w.dim() == 2 and w.shape == (experts, cfg.hidden_size):
                blocks.append((name, m, w))
                break
    if not blocks:
        raise SystemExit(f"no MoE router with weight [{experts}, {cfg.hidden_size}] found in {type(model).__name__}")
    return blocks


def routing_margins(model, cfg, tokens):
    """Per position: min over MoE layers of (l_k - l_{k+1}) / max(1, |l_k|), router logits in float64."""
    k = cfg.num_experts_per_tok
    seen = []

    def rel(a, b):
        return (a - b) / a.abs().clamp(min=1.0)

    def hook(module, args, kwargs, w):
        h = args[0] if args else kwargs["hidden_states"]
        logits = h.reshape(-1, h.shape[-1]).double() @ w.double().t()
        if cfg.model_type not in GROUP_LIMITED:
            top = torch.sort(logits, dim=-1, descending=True).values
            seen.append(rel(top[:, k - 1], top[:, k]))
            return
        # group-limited sigmoid (noaux_tc): the choices c = sigmoid + correction bias; the margin of the last
        # eligible group over the next, and of the k-th eligible choice over the (k+1)-th
        bias = module.gate.e_score_correction_bias.double()
        c = torch.sigmoid(logits) + bias
        groups, topk_groups = cfg.n_group, cfg.topk_group
        per = c.shape[-1] // groups
        gscore = c.view(-1, groups, per).topk(2, dim=-1).values.sum(-1)
        gs = torch.sort(gscore, dim=-1, descending=True)
        margin = rel(gs.values[:, topk_groups - 1], gs.values[:, topk_groups]) if topk_groups < groups \
            else torch.full_like(gs.values[:, 0], float("inf"))
        mask = torch.zeros_like(gscore).scatter(1, gs.indices[:, :topk_groups], 1.0)
        eligible = c.masked_fill(mask.repeat_interleave(per, dim=1) == 0, float("-inf"))
        top = torch.sort(eligible, dim=-1, descending=True).values
        seen.append(torch.minimum(margin, rel(top[:, k - 1], top[:, k])))

    handles = [m.register_forward_pre_hook(lambda mod, a, kw, w=w: hook(mod, a, kw, w), with_kwargs=True)
               for _, m, w in moe_blocks(model, cfg)]
    try:
        model(torch.tensor(tokens)[None].to(model.device))
    finally:
        for h in handles:
            h.remove()
    return torch.stack(seen).min(dim=0).values.tolist()


def drift(folder, ref, dtype):
    m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).cuda().eval()
    worst, over, total = 0.0, 0, 0
    with torch.no_grad():
        for s in ref["sequences"]:
            x = torch.tensor(s["tokens"])[None].cuda()
            lp = torch.log_softmax(m(x).logits[0].double(), -1)
            for j, r in enumerate(s["next_token_logprobs"]):
                e = abs(float(lp[j, s["tokens"][j + 1]]) - r)
                e = float("inf") if e != e else e
                worst = max(worst, e); over += e > 2e-2; total += 1
    return dict(worst=worst, over=over, total=total)


for folder in sys.argv[1:]:
    folder = folder.rstrip("/")
    name = os.path.basename(folder)
    ref = json.load(open(os.path.join(folder, "reference.json")))
    cfg = transformers.AutoConfig.from_pretrained(folder)
    if cfg.model_type not in SOFTMAX_TOP_K | GROUP_LIMITED:
        print(f"{name}: {cfg.model_type} skipped (not a router the CUDA backend runs)", flush=True)
        continue
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        margins = [routing_margins(model, cfg, s["tokens"]) for s in ref["sequences"]]
    del model
    out = dict(transformers_version=transformers.__version__, torch_version=torch.__version__,
               device=torch.cuda.get_device_name(0),
               drift={"bf16": drift(folder, ref, torch.bfloat16), "fp16": drift(folder, ref, torch.float16)},
               sequences=[dict(routing_margin=m) for m in margins])
    json.dump(out, open(os.path.join(folder, "reference-precision.json"), "w"))
    flat = [x for m in margins for x in m]
    print(f"{name}: {len(flat)} positions, margin min {min(flat):.2e}, under 2^-6 {sum(x < 2 ** -6 for x in flat)}, "
          f"transformers bf16 {out['drift']['bf16']}, fp16 {out['drift']['fp16']}", flush=True)
