# Checks, with pyarrow, the Arrow files that our Java code wrote (src/test/resources/ours/, made by
# OurArrowFixturesTest and ArrowDataSourceTest with -Dmoescore.regenerateFixtures=true), so another
# implementation is proven to read them. Run where pyarrow is installed:
#   python3 arrow-io/src/test/python/check_our_arrow.py arrow-io/src/test/resources/ours
# The expected values are those of TestData.fourScores() and ArrowDataSourceTest.sparkRows() in the Java tests.
import math
import os
import sys

import pyarrow as pa
import pyarrow.ipc as ipc

d = sys.argv[1]
NAN = None  # our writer turns NaN (no next token, or an error) into null

# (num_tokens, sum_logprob, mean_nll, perplexity, token_logprobs, top_tokens, error)
SCORES = [
    (3, -1.5, 0.75, math.exp(0.75), [-0.5, -1.0], [7, 3], None),
    (1, 0.0, NAN, NAN, [], [5, 9], None),
    (0, NAN, NAN, NAN, None, None, "empty sequence"),
    (5, -2.0, 0.5, math.exp(0.5), [-0.25, -0.75, -0.5, -0.5], [4095, 0], None),
]


def result_schema(id_type, optional):
    fields = [("id", id_type), pa.field("num_tokens", pa.int32(), nullable=False), ("sum_logprob", pa.float64()),
              ("mean_nll", pa.float64()), ("perplexity", pa.float64())]
    if optional:
        fields += [("token_logprobs", pa.list_(pa.float32())), ("top_tokens", pa.list_(pa.int32()))]
    return pa.schema(fields + [("error", pa.utf8())])


def check_results(table, ids, optional):
    rows = table.to_pylist()
    assert len(rows) == 4, rows
    for row, id_, (n, s, nll, ppl, lps, top, err) in zip(rows, ids, SCORES):
        assert row["id"] == id_, (row, id_)
        assert row["num_tokens"] == n, row
        assert row["sum_logprob"] == s, row
        assert row["mean_nll"] == nll, row
        assert (row["perplexity"] is None) if ppl is None else math.isclose(row["perplexity"], ppl, rel_tol=1e-15), row
        assert row["error"] == err, row
        if optional:
            assert row["token_logprobs"] == lps, row
            assert row["top_tokens"] == top, row
        else:
            assert "token_logprobs" not in row and "top_tokens" not in row, row


with ipc.open_file(os.path.join(d, "results_int64_ids.arrow")) as f:
    assert f.schema.equals(result_schema(pa.int64(), True)), f.schema
    assert f.num_record_batches == 2, f.num_record_batches
    check_results(f.read_all(), [10, 11, 12, 13], True)

with ipc.open_stream(os.path.join(d, "results_utf8_ids.arrows")) as s:
    assert s.schema.equals(result_schema(pa.utf8(), False)), s.schema
    check_results(s.read_all(), ["row-10", "row-11", "row-12", "row-13-é"], False)

checked = ["results_int64_ids.arrow", "results_utf8_ids.arrows"]

# Written through Spark: spark.createDataFrame(...).coalesce(1).write.format("arrow"), one task, one file.
spark_file = os.path.join(d, "spark_written.arrow")
if os.path.exists(spark_file):
    with ipc.open_file(spark_file) as f:
        t = f.read_all()
    assert [(x.name, x.type) for x in t.schema] == [
        ("id", pa.int64()), ("tokens", pa.list_(pa.field("element", pa.int32()))), ("text", pa.utf8()),
        ("mean_nll", pa.float64()), ("token_logprobs", pa.list_(pa.field("element", pa.float32()))),
        ("num_tokens", pa.int32())], t.schema
    assert t.to_pylist() == [
        {"id": 10, "tokens": [1, 2, 3], "text": "def f(x):", "mean_nll": 0.75, "token_logprobs": [-0.5, -1.0],
         "num_tokens": 3},
        {"id": 11, "tokens": [5], "text": None, "mean_nll": None, "token_logprobs": [], "num_tokens": 1},
        {"id": 12, "tokens": [], "text": "zeilé", "mean_nll": None, "token_logprobs": None, "num_tokens": 0},
    ], t.to_pylist()
    checked.append("spark_written.arrow")

print("pyarrow", pa.__version__, "read", ", ".join(checked), "as expected")
