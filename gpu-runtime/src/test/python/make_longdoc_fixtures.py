# Makes the references of long-document (strided perplexity, truncation) and continuation scoring that
# gpu-runtime/src/test/java/io/moescore/score/LongDocumentFixtureTest.java compares moescore against, computed
# with Hugging Face transformers in float32 on the CPU, for the committed fixture models
# (gpu-runtime/src/test/resources/hf/* and demo/tiny-moe-code). From the repository root, one command:
#   python3 gpu-runtime/src/test/python/make_longdoc_fixtures.py
# (any machine with torch, transformers and safetensors: the GPU machine's Python has them) writes
# gpu-runtime/src/test/resources/longdocs/MODEL.json; commit that folder. An argument changes the output folder.
#
# Each MODEL.json: {"model", "context" (max_position_embeddings), "stride", "transformers", "torch",
#   "strided": [{"tokens", "num_windows", "token_logprobs" (n - 1: token t's log-prob, t = 1 .. n-1), "sum_logprob"}],
#   "truncated": [{"tokens", "num_tokens", "sum_logprob"}]                      (the first `context` tokens scored),
#   "continuations": [{"context", "continuation" (token ids), "continuation_logprob", "is_greedy", "min_margin",
#                      "truncated"}],
#   "text_continuations": [{"context", "continuation" (text), "context_tokens", "continuation_tokens", ...}]}
# min_margin: the smallest gap between the best and second-best logit at the continuation's positions (an is_greedy
# that a tie could flip is not held exactly).
import json, math, os, random, sys
import torch, transformers

OUT = sys.argv[1] if len(sys.argv) > 1 else "gpu-runtime/src/test/resources/longdocs"
HF = "gpu-runtime/src/test/resources/hf"
MODELS = [os.path.join(HF, n) for n in ("mixtral-bf16", "qwen2moe-fp32", "qwen3moe-bf16-sharded", "olmoe-fp32")]
DEMO = "demo/tiny-moe-code"
torch.set_grad_enabled(False)


def log_probs(model, ids):
    """log_softmax of the logits at every position, in float64 (as make_hf_fixtures.py), and the float32 logits."""
    logits = model(torch.tensor(ids)[None]).logits[0]
    return torch.log_softmax(logits.double(), -1), logits


def strided(model, ids, context, stride):
    """Hugging Face's strided perplexity (docs: perplexity of fixed-length models), token by token: windows of
    `context` tokens starting `stride` apart; window [begin, end) scores its last trg_len = end - prev_end tokens
    (labels before them -100); the model's label shift means a window's first token is never a target. Returns the
    log-prob of every token 1 .. n-1 (each scored once), the number of windows, and transformers' own loss-based sum
    (outputs.loss times the targets it averaged over) as a cross-check."""
    n = len(ids)
    lps = [None] * (n - 1)
    prev_end, windows, loss_sum = 0, 0, 0.0
    for begin in range(0, n, stride):
        end = min(begin + context, n)
        trg_len = end - prev_end
        x = torch.tensor(ids[begin:end])[None]
        labels = x.clone()
        labels[:, :-trg_len] = -100
        out = model(x, labels=labels)
        lp = torch.log_softmax(out.logits[0].double(), -1)
        for t in range(max(end - trg_len, begin + 1), end):
            assert lps[t - 1] is None, "token %d scored twice" % t
            lps[t - 1] = float(lp[t - begin - 1, ids[t]])
        loss_sum -= float(out.loss) * int((labels[:, 1:] != -100).sum())
        windows += 1
        prev_end = end
        if end == n:
            break
    assert all(v is not None for v in lps), "a token was not scored"
    assert abs(loss_sum - sum(lps)) <= 1e-4 * n, (loss_sum, sum(lps))
    return lps, windows


def continuation(model, context_ids, continuation_ids, max_length):
    """lm-evaluation-harness's loglikelihood of a continuation (HFLM._loglikelihood_tokens): the log-probs of the
    continuation's tokens given everything before each, and whether each is the argmax of the logits there. A
    sequence longer than the context keeps its last max_length tokens (moescore's cut: lm-evaluation-harness keeps
    max_length + 1 and never feeds the last)."""
    ids = (context_ids + continuation_ids)[-max_length:]
    c = len(ids) - len(continuation_ids)
    assert c >= 1
    lp, logits = log_probs(model, ids)
    positions = range(c - 1, len(ids) - 1)
    total = sum(float(lp[p, ids[p + 1]]) for p in positions)
    greedy = all(int(logits[p].argmax()) == ids[p + 1] for p in positions)
    margin = min(float(torch.topk(logits[p], 2).values[0] - torch.topk(logits[p], 2).values[1]) for p in positions)
    return dict(continuation_logprob=total, is_greedy=greedy, min_margin=margin,
                truncated=len(context_ids) + len(continuation_ids) > max_length)


def greedy_continuation(model, context_ids, k):
    ids = list(context_ids)
    for _ in range(k):
        ids.append(int(model(torch.tensor(ids)[None]).logits[0, -1].argmax()))
    return ids[len(context_ids):]


def encode_pair(tokenizer, context, continuation):
    """lm-evaluation-harness's TemplateLM._encode_pair: trailing whitespace of the context moves to the continuation;
    the continuation's tokens are those of the whole string after as many as the context's."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
    whole = encode(context + continuation)
    context_enc = encode(context)
    return context_enc, whole[len(context_enc):]


def demo_documents():
    """Real code tokens: the demo input's rows end to end."""
    tokens = []
    for line in open("demo/input.jsonl"):
        tokens += json.loads(line)["tokens"]
    return tokens


def fixture(folder, seed):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    cfg = model.config
    context, vocab = cfg.max_position_embeddings, cfg.vocab_size
    stride = context * 3 // 8
    rng = random.Random(seed)
    demo = folder == DEMO
    source = demo_documents() if demo else None

    def doc(n, at=0):
        ids = source[at:at + n] if demo else [rng.randrange(vocab) for _ in range(n)]
        assert len(ids) == n, (n, at)
        return ids

    docs = [doc(context + 1), doc(2 * context + 37, 1100)] + ([] if demo else [doc(3 * context - 5)])
    out = dict(model=os.path.basename(folder), context=context, stride=stride,
               transformers=transformers.__version__, torch=torch.__version__, strided=[], truncated=[],
               continuations=[], text_continuations=[])
    for ids in docs:
        assert len(ids) > context
        lps, windows = strided(model, ids, context, stride)
        out["strided"].append(dict(tokens=ids, num_windows=windows, token_logprobs=lps, sum_logprob=sum(lps)))
    cut = docs[1][:context]  # --long-rows truncate: the first `context` tokens
    lp, _ = log_probs(model, cut)
    out["truncated"].append(dict(tokens=docs[1], num_tokens=context,
                                 sum_logprob=sum(float(lp[p, cut[p + 1]]) for p in range(context - 1))))
    pairs = []
    for c_len, k in ((1, 1), (7, 3), (40, 8), (120, 5)):
        at = rng.randrange(0, 4000) if demo else 0
        ids = doc(c_len + k, at)
        pairs.append((ids[:c_len], ids[c_len:]))
    ctx = doc(30, 2000)
    pairs.append((ctx, greedy_continuation(model, ctx, 6)))  # is_greedy true
    long_ctx = doc(context + 10, 4000)
    pairs.append((long_ctx, doc(4, 300)))                    # cut from the left
    for c, k in pairs:
        out["continuations"].append(dict(context=c, continuation=k, **continuation(model, c, k, context)))
    if demo:
        tok = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
        texts = [("def add(a, b):\n    ", "return a + b"),
                 ("import os\nimport sys\n\n", "def main():"),
                 ("for i in range(10):", " print(i)"),
                 ("x = 1\u00a0", "+ 2"),
                 ("    return", " None\n"),
                 ("s = 'caf\u00e9 ", "\u00fcber'")]
        # a greedy text continuation: the longest greedy prefix whose text splits back into the same tokens
        greedy_ctx = "def fib(n):"
        c_enc, _ = encode_pair(tok, greedy_ctx, "x")
        g = greedy_continuation(model, c_enc, 6)
        for k in range(len(g), 0, -1):
            if encode_pair(tok, greedy_ctx, tok.decode(g[:k])) == (c_enc, g[:k]):
                texts.append((greedy_ctx, tok.decode(g[:k])))
                break
        for context_text, continuation_text in texts:
            c_enc, k_enc = encode_pair(tok, context_text, continuation_text)
            out["text_continuations"].append(dict(context=context_text, continuation=continuation_text,
                                                  context_tokens=c_enc, continuation_tokens=k_enc,
                                                  **continuation(model, c_enc, k_enc, context)))
    return out


os.makedirs(OUT, exist_ok=True)
for i, folder in enumerate(MODELS + [DEMO]):
    result = fixture(folder, 4000 + i)
    path = os.path.join(OUT, result["model"] + ".json")
    json.dump(result, open(path, "w"))
    print(path, "strided", [(len(s["tokens"]), s["num_windows"]) for s in result["strided"]],
          "continuations", len(result["continuations"]), "text", len(result["text_continuations"]), flush=True)
    if result["model"] == "olmoe-fp32":  # the same weights, experts stored fused: the same reference
        fused = dict(result, model="olmoe-fp32-fused")
        json.dump(fused, open(os.path.join(OUT, "olmoe-fp32-fused.json"), "w"))
