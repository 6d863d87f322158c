# Makes demo/input.jsonl: 256-token windows of held-out Python source (packages the demo model never saw in
# training), of prose (.rst and LICENSE files), and of uniformly random token ids, tokenized with the demo
# model's tokenizer.json. The demo scores them: code should get by far the lowest perplexity.
# Needs the Python packages `tokenizers` and some installed packages to read: run it on the GPU machine.
#   python3 demo/make_demo_input.py demo/tiny-moe-code/tokenizer.json demo/input.jsonl
import glob, json, os, random, sys
from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
out = sys.argv[2]
sp = [p for p in sys.path if p.endswith("site-packages")][0]
random.seed(7)
WINDOW, PER_KIND = 256, 8

def windows(paths, kind):
    rows = []
    for path in paths:
        try:
            text = open(path, encoding="utf-8").read()
        except Exception:
            continue
        ids = tok.encode(text).ids
        if len(ids) < WINDOW + 1:
            continue
        start = random.randrange(0, len(ids) - WINDOW)
        name = os.path.relpath(path, sp).replace(os.sep, "/")
        rows.append({"id": f"{kind}-{len(rows)}", "source": name, "tokens": ids[start:start + WINDOW]})
        if len(rows) == PER_KIND:
            break
    return rows

code = []
for pkg in ("requests", "rich", "click", "jinja2", "pygments", "yaml", "httpx", "urllib3"):
    code += sorted(glob.glob(os.path.join(sp, pkg, "**/*.py"), recursive=True))[:3]
prose = sorted(glob.glob(os.path.join(sp, "**/*.rst"), recursive=True) + glob.glob(os.path.join(sp, "**/LICENSE*"), recursive=True))
random.shuffle(code); random.shuffle(prose)
rows = windows(code, "code") + windows(prose, "prose")
vocab = tok.get_vocab_size()
rows += [{"id": f"noise-{i}", "source": "uniform random ids", "tokens": [random.randrange(vocab) for _ in range(WINDOW)]} for i in range(PER_KIND)]
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
print(len(rows), "rows;", {k: sum(r["id"].startswith(k) for r in rows) for k in ("code", "prose", "noise")})
