# Writes the token table of InputLayoutsScoreJobTest.demoRows in the layouts pyarrow and Polars write (Polars'
# large_list<int64> and large_string, string_view, dictionaries, chunked record batches, LZ4 frame and ZSTD
# compressed IPC, Parquet from large types), so PyarrowLayoutsScoreJobTest can hold files another implementation
# wrote to the scores of plain list<int32>. pyarrow only (Polars itself is not needed: the schemas below are the ones
# it writes). Run from the repository root where pyarrow is installed (the GPU machine), then commit the output:
#   python3 spark-job/src/test/python/make_arrow_fixtures.py spark-job/src/test/resources/pyarrow-layouts
import json, os, sys
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq

out = sys.argv[1] if len(sys.argv) > 1 else "spark-job/src/test/resources/pyarrow-layouts"
os.makedirs(out, exist_ok=True)
demo = [json.loads(line) for line in open("demo/input.jsonl")]

# The rows of InputLayoutsScoreJobTest.demoRows(false): id i, the first 1 + (37 i) % 70 demo tokens of line i,
# row 13 an empty list, row 5 no tokens but text, row 9 neither.
ids, tokens, texts = [], [], []
for i in range(16):
    n = 0 if i == 13 else 1 + (i * 37) % 70
    ids.append(i)
    tokens.append(None if i in (5, 9) else demo[i]["tokens"][:n])
    texts.append("def score(rows):\n    return rows" if i == 5 else None)
names = [f"row-{i}" for i in ids]


def table(id_values, id_type, token_type, text_type):
    return pa.table({"id": pa.array(id_values, id_type), "tokens": pa.array(tokens, token_type),
                     "text": pa.array(texts, text_type)})


def write_ipc(name, t, stream=False, compression=None, chunk=None):
    options = ipc.IpcWriteOptions(compression=compression)
    path = os.path.join(out, name)
    with (ipc.new_stream if stream else ipc.new_file)(path, t.schema, options=options) as w:
        for b in t.to_batches(max_chunksize=chunk) if chunk else [t]:
            (w.write_batch if chunk else w.write_table)(b)


written = {}
# Polars' default IPC schema (compat_level oldest): large_list<int64> tokens, large_string text, int64 ids.
polars = table(ids, pa.int64(), pa.large_list(pa.int64()), pa.large_string())
write_ipc("polars_large.arrow", polars)
write_ipc("polars_large_zstd.arrows", polars, stream=True, compression="zstd")
write_ipc("list_int32_lz4.arrow", table(ids, pa.int64(), pa.list_(pa.int32()), pa.string()), compression="lz4")
write_ipc("int32_ids_chunked.arrow", table(ids, pa.int32(), pa.list_(pa.int32()), pa.string()), chunk=3)
dictionary = pa.table({"id": pa.array(names).dictionary_encode(), "tokens": pa.array(tokens, pa.list_(pa.int64())),
                       "text": pa.array(texts, pa.string()).dictionary_encode()})
write_ipc("dictionary_ids.arrow", dictionary)
written["polars_large.arrow"] = "id int64, tokens large_list<int64>, text large_string"
written["polars_large_zstd.arrows"] = "the same, IPC stream, ZSTD"
written["list_int32_lz4.arrow"] = "list<int32>, LZ4 frame"
written["int32_ids_chunked.arrow"] = "int32 ids, record batches of 3 rows"
written["dictionary_ids.arrow"] = "dictionary<int32, string> ids and text, list<int64> tokens"
try:  # string_view (Polars' newest compat level): pyarrow 16 and later
    views = table(names, pa.string_view(), pa.large_list(pa.int64()), pa.string_view())
    write_ipc("polars_views_zstd.arrows", views, stream=True, compression="zstd")
    written["polars_views_zstd.arrows"] = "string_view ids and text, large_list<int64>, IPC stream, ZSTD"
except (AttributeError, pa.ArrowNotImplementedError) as e:
    print("skipping string_view:", e)
pq.write_table(polars, os.path.join(out, "polars_large.parquet"))
written["polars_large.parquet"] = "Parquet from large_list<int64> and large_string"
pq.write_table(table(ids, pa.int32(), pa.list_(pa.int32()), pa.string()), os.path.join(out, "int32_ids.parquet"),
               compression="zstd")
written["int32_ids.parquet"] = "Parquet, int32 ids, ZSTD"
json.dump({"pyarrow": pa.__version__, "files": written}, open(os.path.join(out, "manifest.json"), "w"), indent=1)
print("pyarrow", pa.__version__, "wrote", sorted(os.listdir(out)))
