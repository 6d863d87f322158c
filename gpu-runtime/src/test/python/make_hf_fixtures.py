# Makes the reference fixtures the engine tests compare against: tiny random
# checkpoints of each supported model family, saved by Hugging Face transformers'
# save_pretrained, with next-token log-probs computed by transformers in float32.
# Runs on the GPU machine (its Python has torch, transformers 5.x, safetensors, pyarrow):
#   python3 gpu-runtime/src/test/python/make_hf_fixtures.py OUT_DIR [NAME_PREFIX ...]
# With name prefixes only the fixtures whose names start with one of them are made, e.g.
#   python3 gpu-runtime/src/test/python/make_hf_fixtures.py /tmp/hf granitemoe deepseekv3 glm4moe
# makes the issue-24 families only; copy the folders into gpu-runtime/src/test/resources/hf/.
# Each checkpoint folder gets config.json, safetensors, and reference.json:
#   {"model_type", "dtype", "sequences": [{"tokens", "next_token_logprobs", "sum_logprob", "last_top5"}]}
import inspect, json, os, sys, math
import torch, transformers
from safetensors.torch import load_file, save_file

out = sys.argv[1]
only = sys.argv[2:]
os.makedirs(out, exist_ok=True)
LENGTHS = (1, 2, 5, 17, 64, 130)
V, H = 512, 64

def spread_init(model, seed):
    """Replace the tiny default init (std 0.02: near-uniform log-probs, near-tied routing and
    top-5) with weights that give decisive routing and well separated logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                # norm weights around 1, biases around 0: both must be applied to match
                base = 0.0 if name.endswith("bias") else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                router = name.endswith("gate.weight") or name.endswith("router.layer.weight")
                scale = 2.0 if ("lm_head" in name or router) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / math.sqrt(fan_in))

def reference(folder, model_type, dtype, seed):
    ref = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed + 1000)
    seqs = []
    with torch.no_grad():
        for L in LENGTHS:
            x = torch.randint(0, V, (L,), generator=g)
            lp = torch.log_softmax(ref(x[None]).logits[0].double(), -1)
            t = [float(lp[j, x[j + 1]]) for j in range(L - 1)]
            seqs.append(dict(tokens=x.tolist(), next_token_logprobs=t, sum_logprob=sum(t),
                             last_top5=torch.topk(lp[-1], 5).indices.tolist()))
    json.dump(dict(model_type=model_type, dtype=dtype, sequences=seqs), open(os.path.join(folder, "reference.json"), "w"))

def wanted(name):
    return not only or any(name.startswith(o) for o in only)

def make(name, cfg, dtype, seed, shard=None):
    if not wanted(name):
        return None
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    spread_init(model, seed)
    # DeepSeek-V3 / GLM-4.5 routers: e_score_correction_bias is a buffer in most transformers versions (zero at
    # init, so spread_init leaves it), a parameter in some: give it values that change the choice. Non-negative, so
    # every corrected score stays positive and transformers' 0.0 mask of the groups not chosen equals the -inf mask
    # (DeepSeek's, vLLM's, moescore's).
    g = torch.Generator().manual_seed(seed + 500)
    with torch.no_grad():
        for bname, b in list(model.named_buffers()) + list(model.named_parameters()):
            if bname.endswith("e_score_correction_bias"):
                b.copy_(0.15 * torch.rand(b.shape, generator=g))
    model = model.to(getattr(torch, dtype))
    folder = os.path.join(out, name)
    kw = dict(safe_serialization=True)
    if shard: kw["max_shard_size"] = shard
    model.save_pretrained(folder, **kw)
    reference(folder, cfg.model_type, dtype, seed)
    print(name, sum(p.numel() for p in model.parameters()), sorted(os.listdir(folder)), flush=True)
    return folder

def rope(cls, theta, **scaling):
    """rope_theta and a scaling as this transformers version takes them: rope_parameters (5.x) or rope_theta and
    rope_scaling (4.x)."""
    if "rope_parameters" in inspect.signature(cls.__init__).parameters:
        return dict(rope_parameters=dict(rope_type=scaling.pop("rope_type", "default"), rope_theta=theta, **scaling))
    kw = dict(rope_theta=theta)
    if scaling:
        kw["rope_scaling"] = scaling
    return kw

common = dict(vocab_size=V, hidden_size=H, num_hidden_layers=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, tie_word_embeddings=False)

make("mixtral-bf16", transformers.MixtralConfig(**common, intermediate_size=48, num_attention_heads=4,
     num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2, rope_theta=10000.0), "bfloat16", 1)

make("qwen2moe-fp32", transformers.Qwen2MoeConfig(**{**common, "tie_word_embeddings": True}, intermediate_size=96,
     moe_intermediate_size=32, shared_expert_intermediate_size=80, num_attention_heads=4, num_key_value_heads=2,
     num_experts=6, num_experts_per_tok=3, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1],
     rope_theta=50000.0), "float32", 2)

make("qwen3moe-bf16-sharded", transformers.Qwen3MoeConfig(**common, intermediate_size=96, moe_intermediate_size=40,
     num_attention_heads=4, num_key_value_heads=2, head_dim=24, num_experts=8, num_experts_per_tok=2,
     norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[], rope_theta=1000000.0), "bfloat16", 3, shard="150KB")

olmoe = make("olmoe-fp32", transformers.OlmoeConfig(**common, intermediate_size=32, num_attention_heads=4,
     num_key_value_heads=4, num_experts=8, num_experts_per_tok=3, norm_topk_prob=False, clip_qkv=None,
     rope_theta=10000.0), "float32", 4)

# The same OLMoE weights with experts stored as fused 3-D tensors (gate_up_proj [E, 2I, H], down_proj [E, H, I]),
# the layout transformers 5 uses in memory and some checkpoints store: the same reference applies.
if olmoe is not None:
    fused = os.path.join(out, "olmoe-fp32-fused")
    os.makedirs(fused, exist_ok=True)
    sd = load_file(os.path.join(olmoe, "model.safetensors"))
    E = 8
    new = {k: v for k, v in sd.items() if ".experts." not in k}
    for layer in range(2):
        p = f"model.layers.{layer}.mlp.experts."
        gate = torch.stack([sd[f"{p}{e}.gate_proj.weight"] for e in range(E)])
        up = torch.stack([sd[f"{p}{e}.up_proj.weight"] for e in range(E)])
        new[p + "gate_up_proj"] = torch.cat([gate, up], dim=1).contiguous()
        new[p + "down_proj"] = torch.stack([sd[f"{p}{e}.down_proj.weight"] for e in range(E)]).contiguous()
    save_file(new, os.path.join(fused, "model.safetensors"), metadata={"format": "pt"})
    for f in ("config.json", "reference.json"):
        open(os.path.join(fused, f), "w").write(open(os.path.join(olmoe, f)).read())
    print("fused", sorted(new)[:6], flush=True)

# ---- issue 24: the MoE families of 2026 -------------------------------------------------------------------------
# Granite MoE: embedding, attention (softmax scale), residual and logits multipliers; tied and untied embeddings.
granite = dict(common, intermediate_size=32, num_attention_heads=4, num_key_value_heads=2, num_local_experts=8,
               num_experts_per_tok=2, embedding_multiplier=12.0, attention_multiplier=0.2, residual_multiplier=0.22,
               logits_scaling=6.0)
make("granitemoe-bf16-tied", transformers.GraniteMoeConfig(**{**granite, "tie_word_embeddings": True},
     **rope(transformers.GraniteMoeConfig, 10000.0)), "bfloat16", 9)
make("granitemoe-fp32", transformers.GraniteMoeConfig(**granite, attention_bias=True,
     **rope(transformers.GraniteMoeConfig, 50000.0)), "float32", 10)

# DeepSeek-V3: latent attention (q_lora_rank set, and null: q_proj), the group-limited sigmoid router with shared
# experts and a dense first layer, YaRN with mscale != mscale_all_dim (a cos/sin factor and a softmax correction),
# interleaved and rotate-half rotary pairs.
deepseek = dict(common, num_hidden_layers=3, intermediate_size=96, moe_intermediate_size=32, num_attention_heads=4,
                num_key_value_heads=4, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=3, n_group=4,
                topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True, first_k_dense_replace=1,
                kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12)
make("deepseekv3-bf16-yarn", transformers.DeepseekV3Config(**deepseek, q_lora_rank=24, rope_interleave=True,
     **rope(transformers.DeepseekV3Config, 10000.0, rope_type="yarn", factor=4.0,
            original_max_position_embeddings=64, beta_fast=32.0, beta_slow=1.0, mscale=0.707, mscale_all_dim=1.0)),
     "bfloat16", 5)
make("deepseekv3-fp32-qproj", transformers.DeepseekV3Config(**{**deepseek, "norm_topk_prob": False},
     q_lora_rank=None, rope_interleave=False, **rope(transformers.DeepseekV3Config, 50000.0)), "float32", 6)

# GLM-4.5: the same router family, partial rotary (half of each head), q/k/v biases, optional per-head q/k norm.
glm = dict(common, num_hidden_layers=3, intermediate_size=96, moe_intermediate_size=32, num_attention_heads=4,
           num_key_value_heads=2, head_dim=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
           n_group=2, topk_group=1, routed_scaling_factor=1.5, norm_topk_prob=True, first_k_dense_replace=1,
           partial_rotary_factor=0.5)
make("glm4moe-bf16", transformers.Glm4MoeConfig(**glm, attention_bias=True, use_qk_norm=True,
     **rope(transformers.Glm4MoeConfig, 10000.0)), "bfloat16", 7)
make("glm4moe-fp32", transformers.Glm4MoeConfig(**{**glm, "n_group": 1, "topk_group": 1}, attention_bias=False,
     use_qk_norm=False, **rope(transformers.Glm4MoeConfig, 1000000.0)), "float32", 8)
