# Makes demo/calibration.jsonl: 32 windows (or COUNT) of 256 tokens of Python source from packages the demo model was
# trained on (numpy, scipy, pandas, sklearn), disjoint from the held-out evaluation windows of demo/input.jsonl.
# For `moescore sparsify --method wanda`. Run where the `tokenizers` package is installed (the GPU machine).
#   python3 demo/make_calibration.py demo/tiny-moe-code/tokenizer.json demo/calibration.jsonl [COUNT]
# The first 32 windows of a larger COUNT are those of the default file (same seed, same order).
import glob, json, os, random, sys
from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
sp = [p for p in sys.path if p.endswith("site-packages")][0]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 32
random.seed(11)
files = []
for pkg in ("numpy", "scipy", "pandas", "sklearn"):
    files += sorted(glob.glob(os.path.join(sp, pkg, "**/*.py"), recursive=True))
random.shuffle(files)
rows = []
for path in files:
    ids = tok.encode(open(path, encoding="utf-8", errors="ignore").read()).ids
    if len(ids) > 300:
        s = random.randrange(0, len(ids) - 256)
        rows.append({"id": f"calib-{len(rows)}", "tokens": ids[s:s + 256]})
    if len(rows) == count:
        break
with open(sys.argv[2], "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
print(len(rows), "calibration rows")
