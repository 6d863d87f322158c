# Makes Arrow IPC and Parquet files with pyarrow, so the tests prove files written by
# another implementation read in ours. Run where pyarrow is installed (the GPU machine):
#   python3 arrow-io/src/test/python/make_arrow_fixtures.py OUT_DIR
import json, os, sys
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rows = [(10, [1, 2, 3]), (11, [5]), (12, list(range(40))), (13, [4095, 0, 7, 7])]
int_ids = pa.table({"id": pa.array([r[0] for r in rows], pa.int64()),
                    "tokens": pa.array([r[1] for r in rows], pa.list_(pa.int32()))})
str_ids = pa.table({"id": pa.array([f"row-{r[0]}" for r in rows], pa.utf8()),
                    "tokens": pa.array([r[1] for r in rows], pa.list_(pa.int32())),
                    "text": pa.array(["def f(x):", None, "import numpy as np", "x = 1"], pa.utf8())})
with ipc.new_file(os.path.join(out, "tokens_int64_ids.arrow"), int_ids.schema) as w:
    for b in int_ids.to_batches(max_chunksize=2): w.write_batch(b)
with ipc.new_stream(os.path.join(out, "tokens_utf8_ids.arrows"), str_ids.schema) as w:
    w.write_table(str_ids)
pq.write_table(int_ids, os.path.join(out, "tokens_int64_ids.parquet"))
json.dump([{"id": r[0], "tokens": r[1]} for r in rows], open(os.path.join(out, "expected_rows.json"), "w"))
print("pyarrow", pa.__version__, sorted(os.listdir(out)))
