# How far transformers itself moves from its float32 reference when it computes in bf16: the yardstick for
# our bf16 CUDA tolerance. Prints, per fixture, the worst |log-prob(bf16) - log-prob(fp32 reference)|.
#   python3 gpu-runtime/src/test/python/bf16_reference_drift.py gpu-runtime/src/test/resources/hf/* demo/tiny-moe-code
import json, sys, torch, transformers
for folder in sys.argv[1:]:
    ref = json.load(open(folder + "/reference.json"))
    m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).cuda().eval()
    worst, over, total = 0.0, 0, 0
    with torch.no_grad():
        for s in ref["sequences"]:
            x = torch.tensor(s["tokens"])[None].cuda()
            lp = torch.log_softmax(m(x).logits[0].double(), -1)
            for j, r in enumerate(s["next_token_logprobs"]):
                e = abs(float(lp[j, s["tokens"][j + 1]]) - r)
                worst = max(worst, e); over += e > 2e-2; total += 1
    print(f"transformers bf16 {folder.rstrip('/').split('/')[-1]}: worst {worst:.3e}, {over} of {total} tokens over 2e-2", flush=True)
