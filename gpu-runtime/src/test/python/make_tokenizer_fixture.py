# Token ids of a few texts by the Hugging Face `tokenizers` library itself, for TextTokenizerTest.
#   python3 gpu-runtime/src/test/python/make_tokenizer_fixture.py demo/tiny-moe-code/tokenizer.json OUT.json
import json, sys
from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
texts = ["def f(x):\n    return x + 1\n", "The quick brown fox jumps over the lazy dog.",
         "import numpy as np\n\nclass A:\n\tpass  # ünïcödé ✓ 日本語\n", "", "   \n\n  ",
         "x = [i ** 2 for i in range(10)]\n" * 40]
json.dump([{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts], open(sys.argv[2], "w"), ensure_ascii=False)
print("ok", [len(tok.encode(t).ids) for t in texts])
