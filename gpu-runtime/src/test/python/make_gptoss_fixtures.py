# Makes the gpt_oss reference fixtures (issue 24), the way make_hf_fixtures.py makes the others: tiny random
# GptOssForCausalLM checkpoints saved by transformers' save_pretrained, with next-token log-probs computed by
# transformers in float32 for sequences of 1..130 tokens (sliding_window 32, shorter than the longest), and one
# checkpoint whose experts are MXFP4-packed as the released gpt-oss-20b/120b store them.
# Runs on the GPU machine (torch, transformers 5.x, safetensors); NOT run yet (written without transformers at hand):
#   python3 gpu-runtime/src/test/python/make_gptoss_fixtures.py /tmp/hf && cp -r /tmp/hf/gptoss-* \
#       gpu-runtime/src/test/resources/hf/
# Folders: gptoss-fp32, gptoss-bf16 (rope_scaling yarn), gptoss-mxfp4 (the bf16 weights with their experts quantized to
# MXFP4; reference from transformers' own dequantization, convert_moe_packed_tensors). Each gets config.json,
# model.safetensors and reference.json ({"model_type", "dtype", "sequences": [{"tokens", "next_token_logprobs",
# "sum_logprob", "last_top5"}]}); gptoss-mxfp4 also mxfp4_check.json (see check_layout below).
#
# Layouts this script asserts (it stops with a message if transformers disagrees, rather than writing a fixture the
# Java loader reads otherwise):
#   mlp.experts.gate_up_proj [E, H, 2F] used as x @ W, gate = [..., ::2], up = [..., 1::2]; gate_up_proj_bias [E, 2F]
#   mlp.experts.down_proj [E, F, H], down_proj_bias [E, H]; mlp.router.weight [E, H], .bias [E]; self_attn.sinks [heads]
#   MXFP4: NAME_blocks U8 [E, out, in/32, 16], NAME_scales U8 [E, out, in/32]; low nibble first; scale 2^(s-127);
#   convert_moe_packed_tensors(blocks, scales) -> [E, in, out] = NAME.
import inspect, json, os, sys, math
import torch, transformers
from safetensors.torch import load_file, save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
LENGTHS = (1, 2, 5, 17, 64, 130)
V, H, F, E = 512, 64, 64, 8   # F a multiple of 32 (down_proj's MXFP4 blocks run along F); H too (gate_up's)
FP4 = [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def config(**kw):
    cls = transformers.GptOssConfig
    base = dict(vocab_size=V, hidden_size=H, intermediate_size=F, num_hidden_layers=4, num_attention_heads=8,
                num_key_value_heads=2, head_dim=16, num_local_experts=E, num_experts_per_tok=2, sliding_window=32,
                layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
                max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False, swiglu_limit=7.0)
    # factor = max_position_embeddings / original_max_position_embeddings (256 / 64): some transformers versions take
    # that ratio instead of `factor` when original_max_position_embeddings is given; equal, the fixture holds for both
    scaling = dict(rope_type="yarn", factor=4.0, beta_fast=32.0, beta_slow=1.0, truncate=False,
                   original_max_position_embeddings=64)
    if "rope_parameters" in inspect.signature(cls.__init__).parameters:
        base["rope_parameters"] = dict(rope_theta=150000.0, **scaling)
    else:
        base.update(rope_theta=150000.0, rope_scaling=scaling)
    base.update(kw)
    return cls(**base)


def spread_init(model, seed):
    """As make_hf_fixtures.py's: weights that give decisive routing, separated logits, sinks that matter, and gate/up
    pre-activations that reach swiglu_limit (the clamp) on some entries."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("sinks"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1 or name.endswith("_bias"):
                base = 0.0 if name.endswith("bias") else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("gate_up_proj") or name.endswith("down_proj"):
                fan_in = p.shape[1]   # x @ W: W [E, in, out]
                p.copy_(torch.randn(p.shape, generator=g) * 3.0 / math.sqrt(fan_in))
            else:
                fan_in = p.shape[-1]
                scale = 2.0 if ("lm_head" in name or name.endswith("router.weight")) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / math.sqrt(fan_in))


def check_layout(model):
    ex = model.model.layers[0].mlp.experts
    assert tuple(ex.gate_up_proj.shape) == (E, H, 2 * F), f"gate_up_proj is {tuple(ex.gate_up_proj.shape)}, " \
        f"the Java loader expects [E, H, 2F] = {(E, H, 2 * F)}: update ModelWeights.gptOssExperts"
    assert tuple(ex.down_proj.shape) == (E, F, H), f"down_proj is {tuple(ex.down_proj.shape)}, expected {(E, F, H)}"
    # transformers 4.x de-interleaves in forward; 5.x moved it into _apply_gate (forward calls it on gate_up)
    src = "".join(inspect.getsource(getattr(type(ex), f)) for f in ("forward", "_apply_gate") if hasattr(type(ex), f))
    assert "::2" in src and "1::2" in src, "GptOssExperts no longer interleaves gate/up:\n" + src
    print("GptOssExperts (transformers %s):\n%s" % (transformers.__version__, src))


def log_probs(model, seed):
    g = torch.Generator().manual_seed(seed + 1000)
    seqs = []
    with torch.no_grad():
        for L in LENGTHS:
            x = torch.randint(0, V, (L,), generator=g)
            lp = torch.log_softmax(model(x[None]).logits[0].double(), -1)
            t = [float(lp[j, x[j + 1]]) for j in range(L - 1)]
            seqs.append(dict(tokens=x.tolist(), next_token_logprobs=t, sum_logprob=sum(t),
                             last_top5=torch.topk(lp[-1], 5).indices.tolist()))
    return seqs


def write_reference(folder, dtype, seqs):
    json.dump(dict(model_type="gpt_oss", dtype=dtype, sequences=seqs), open(os.path.join(folder, "reference.json"), "w"))


def make(name, cfg, dtype, seed):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    spread_init(model, seed)
    check_layout(model)
    model = model.to(getattr(torch, dtype))
    folder = os.path.join(out, name)
    model.save_pretrained(folder, safe_serialization=True)
    saved = load_file(os.path.join(folder, "model.safetensors"))
    k = "model.layers.0.mlp.experts.gate_up_proj"
    assert k in saved and tuple(saved[k].shape) == (E, H, 2 * F), \
        f"save_pretrained wrote {k} as {tuple(saved[k].shape) if k in saved else 'absent'}: {sorted(saved)[:12]}"
    ref = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                            attn_implementation="eager").eval()
    write_reference(folder, dtype, log_probs(ref, seed))
    print(name, sum(p.numel() for p in model.parameters()), sorted(os.listdir(folder)), flush=True)
    return folder


def quantize(w):
    """w [E, in, out] (x @ w) to MXFP4 blocks [E, out, in/32, 16] and scales [E, out, in/32]: per block of 32 inputs
    the smallest power-of-two scale that puts the largest |value| within 6, then the nearest E2M1 value."""
    wt = w.float().transpose(1, 2).contiguous()                      # [E, out, in]
    e, o, i = wt.shape
    blocks = wt.reshape(e, o, i // 32, 32)
    amax = blocks.abs().amax(-1).clamp(min=2.0 ** -126)
    exp = torch.ceil(torch.log2(amax / 6.0)).clamp(-127, 127)
    scaled = blocks / torch.pow(2.0, exp)[..., None]
    lut = torch.tensor(FP4)
    idx = (scaled[..., None] - lut).abs().argmin(-1)                 # ties: the lower index (the + half)
    lo, hi = idx[..., 0::2], idx[..., 1::2]
    packed = (lo | (hi << 4)).to(torch.uint8)                         # low nibble first
    return packed.contiguous(), (exp + 127).to(torch.uint8).contiguous()


def independent_decode(blocks, scales):
    """The layout ModelWeights / Mxfp4.java implement, written apart from transformers: [E, out, in] -> [E, in, out]."""
    lut = torch.tensor(FP4, dtype=torch.float64)
    lo = lut[(blocks & 0x0F).long()]
    hi = lut[(blocks >> 4).long()]
    vals = torch.stack([lo, hi], -1).reshape(*blocks.shape[:-1], 32)
    vals = vals * torch.pow(2.0, scales.double() - 127)[..., None]
    e, o, g, _ = blocks.shape
    return vals.reshape(e, o, g * 32).transpose(1, 2)


def make_mxfp4(src, name, seed):
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    sd = load_file(os.path.join(src, "model.safetensors"))
    new = {}
    dequant = {}
    worst = 0.0
    for key, t in sd.items():
        if key.endswith("mlp.experts.gate_up_proj") or key.endswith("mlp.experts.down_proj"):
            blocks, scales = quantize(t)
            new[key + "_blocks"], new[key + "_scales"] = blocks, scales
            theirs = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)
            assert tuple(theirs.shape) == tuple(t.shape), f"{key}: transformers dequantizes to {tuple(theirs.shape)}"
            mine = independent_decode(blocks, scales)
            worst = max(worst, float((theirs.double() - mine).abs().max()))
            dequant[key] = theirs
        else:
            new[key] = t
    save_file(new, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=2)
    json.dump(dict(max_abs_transformers_vs_documented_layout=worst, blocks=sorted(k for k in new if "_blocks" in k)),
              open(os.path.join(folder, "mxfp4_check.json"), "w"), indent=2)
    print(name, "transformers' convert_moe_packed_tensors vs the documented layout: max |diff|", worst, flush=True)
    assert worst == 0.0, "Mxfp4.java's layout disagrees with transformers: see mxfp4_check.json"
    # the reference: the fp32 model with transformers' dequantized experts in place
    ref = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32,
                                                            attn_implementation="eager").eval()
    with torch.no_grad():
        params = dict(ref.named_parameters())
        for key, w in dequant.items():
            params[key].copy_(w)
    write_reference(folder, "mxfp4", log_probs(ref, seed))
    print(name, sorted(os.listdir(folder)), flush=True)


make("gptoss-fp32", config(), "float32", 31)
bf16 = make("gptoss-bf16", config(swiglu_limit=3.0), "bfloat16", 32)
make_mxfp4(bf16, "gptoss-mxfp4", 32)
