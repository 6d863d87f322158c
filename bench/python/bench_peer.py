# The peer of ForwardBenchmark: makes a synthetic checkpoint at a real model's shape (random weights, bf16,
# saved with save_pretrained so our engine loads the very same file), then times transformers' scoring pass
# (forward, log-softmax, gather of each next token) with its experts backends eager and grouped_mm, optionally
# under torch.compile. Median of 5 after 2 warm-ups, CUDA-synchronised wall time.
#   python3 bench/python/bench_peer.py {olmoe|mixtral|qwen3|deepseek} MODEL_DIR OUT.json [tokens=2048,8192,32768] [seq=512]
#                                      [compile] [save-only]
import json, os, sys, time, torch, transformers

shape, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
opts = dict(a.split("=", 1) for a in sys.argv[4:] if "=" in a)
tokens_list = [int(t) for t in opts.get("tokens", "2048,8192,32768").split(",")]
use_compile = "compile" in sys.argv[4:]
SEQ = int(opts.get("seq", 512))
if shape == "olmoe":   # OLMoE-1B-7B
    cfg = transformers.OlmoeConfig(vocab_size=50304, hidden_size=2048, intermediate_size=1024, num_hidden_layers=16,
                                   num_attention_heads=16, num_key_value_heads=16, num_experts=64, num_experts_per_tok=8,
                                   max_position_embeddings=4096, tie_word_embeddings=False)
elif shape == "mixtral":   # Mixtral-8x7B with 4 of its 32 layers
    cfg = transformers.MixtralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=4,
                                     num_attention_heads=32, num_key_value_heads=8, num_local_experts=8,
                                     num_experts_per_tok=2, max_position_embeddings=4096, tie_word_embeddings=False)
elif shape == "qwen3":   # Qwen3-30B-A3B with 8 of its 48 layers (q/k norms per head, 128 experts of 768, top-8)
    cfg = transformers.Qwen3MoeConfig(vocab_size=151936, hidden_size=2048, intermediate_size=6144,
                                      moe_intermediate_size=768, num_hidden_layers=8, num_attention_heads=32,
                                      num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8,
                                      norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                                      max_position_embeddings=4096, tie_word_embeddings=False)
elif shape == "deepseek":   # DeepSeek-V3: MLA, 256 experts of 2048, top-8 of 8 groups; one dense and one MoE layer
    # (one MoE layer's routed experts are 22.5 GB in bf16: what fits one H100 beside the peers' own copy)
    cfg = transformers.DeepseekV3Config(vocab_size=129280, hidden_size=7168, intermediate_size=18432,
                                        moe_intermediate_size=2048, num_hidden_layers=2, num_attention_heads=128,
                                        num_key_value_heads=128, n_shared_experts=1, n_routed_experts=256,
                                        routed_scaling_factor=2.5, kv_lora_rank=512, q_lora_rank=1536,
                                        qk_rope_head_dim=64, v_head_dim=128, qk_nope_head_dim=128, n_group=8,
                                        topk_group=4, num_experts_per_tok=8, first_k_dense_replace=1,
                                        norm_topk_prob=True, max_position_embeddings=4096, tie_word_embeddings=False)
else:
    raise SystemExit("shape must be olmoe, mixtral, qwen3 or deepseek")
torch.manual_seed(0)
if not os.path.exists(os.path.join(folder, "config.json")):
    t0 = time.time()
    with torch.device("cuda"):
        m = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    m.save_pretrained(folder, max_shard_size="4GB")
    print(f"saved {shape} to {folder} in {time.time() - t0:.0f} s", flush=True)
    del m
    torch.cuda.empty_cache()

if "save-only" in sys.argv[4:]:
    raise SystemExit(0)

def score(m, ids):
    logits = m(ids).logits
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])
    return lp.sum(-1)

results = dict(shape=shape, sequence_length=SEQ, device=torch.cuda.get_device_name(), torch=torch.__version__,
               transformers=transformers.__version__, runs=[])
# the strongest peer first, and the results written after each, so a device call cut short keeps what it measured
configs = ([("grouped_mm", True)] if use_compile else []) + [("grouped_mm", False), ("eager", False)]
for impl, compiled in configs:
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map="cuda",
                                                              experts_implementation=impl).eval()
    except (ValueError, TypeError, NotImplementedError) as e:  # a family without that experts backend: say so
        row = dict(experts=impl, compiled=compiled, error=f"{type(e).__name__}: {e}"[:300])
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
        json.dump(results, open(out, "w"), indent=1)
        continue
    fn = torch.compile(score) if compiled else score
    g = torch.Generator(device="cuda").manual_seed(1)
    for n in tokens_list:
        ids = torch.randint(0, cfg.vocab_size, (max(1, n // SEQ), min(SEQ, n)), device="cuda", generator=g)
        times = []
        try:
            with torch.no_grad():
                for i in range(7):
                    torch.cuda.synchronize(); t0 = time.perf_counter()
                    fn(m, ids)
                    torch.cuda.synchronize(); t = time.perf_counter() - t0
                    if i >= 2: times.append(t)
            med = sorted(times)[len(times) // 2]
            row = dict(experts=impl, compiled=compiled, tokens=ids.numel(), median_seconds=med, tokens_per_second=ids.numel() / med)
        except torch.OutOfMemoryError as e:
            row = dict(experts=impl, compiled=compiled, tokens=ids.numel(), error="out of memory")
            torch.cuda.empty_cache()
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
    del m
    torch.cuda.empty_cache()
    json.dump(results, open(out, "w"), indent=1)
