package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.select.Backends;
import io.moescore.batch.TokenBatch;
import io.moescore.batch.TokenRouting;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import io.moescore.placement.RoutingRecord;
import io.moescore.placement.RoutingTrace;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import io.moescore.spark.trace.TokenTrace;
import io.moescore.spark.trace.TraceInputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The scoring job's {@code --routing-trace}: one file per partition, every batch's MoE layers, adding up to the
 * summary's expert load; Arrow IPC beside Arrow output; an existing folder or one inside the output refused.
 * {@code --routing-trace-tokens}: the token routing of the demo model is the CPU engine's own for the same rows and
 * adds up to the loads files' counts batch by batch; the option is refused without --routing-trace.
 */
class RoutingTraceJobTest {
    static SparkSession spark;
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        spark = SparkTests.localSession();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    private ScoreJobOptions options(String outputFormat, String trace) {
        return SparkTests.options(List.of(SparkTests.demoInput().toString()), "json",
                dir.resolve("scores-" + outputFormat).toString(), outputFormat, SparkTests.demoModel().toString(),
                false, 0, 3, 2000).withRoutingTrace(trace);
    }

    @Test
    void everyBatchAndLayerAddingUpToTheSummary() throws IOException {
        Path trace = dir.resolve("trace");
        JobSummary summary = MoeScoreJob.score(spark, options("parquet", trace.toString()));
        com.fasterxml.jackson.databind.JsonNode manifest = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(trace.resolve("_routing_trace.json").toFile());
        assertEquals("parquet", manifest.get("format").asText());
        assertEquals(3, manifest.get("files").asInt());
        assertEquals(SparkTests.demoModel().toString(), manifest.get("model").asText());
        assertFalse(Files.exists(trace.resolve("_attempts")), "failed or pending attempts' files are gone");
        List<String> files;
        try (Stream<Path> list = Files.list(trace.resolve("loads"))) {
            files = list.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).sorted().toList();
        }
        assertEquals(3, files.size(), "one file per partition: " + files);
        assertTrue(files.stream().allMatch(n -> n.matches("part-0000[0-2]-s\\d+\\.parquet")), files.toString());

        RoutingTrace read = TraceInputs.read(trace);
        assertEquals(8, read.numExperts());
        assertArrayEquals(new int[] {0, 1, 2, 3}, read.layers());
        long[][] sum = new long[4][8];
        Map<Integer, TreeSet<Long>> batches = new TreeMap<>();
        for (RoutingRecord r : read.records()) {
            for (int e = 0; e < 8; e++) {
                sum[r.layer()][e] += r.tokens()[e];
            }
            batches.computeIfAbsent(r.partition(), p -> new TreeSet<>()).add(r.batch());
            assertEquals("driver", r.executor(), "local mode's tasks run on the driver");
            assertEquals(0, r.total() % 2, "top-2: each token counted twice");
        }
        for (int l = 0; l < 4; l++) {
            assertArrayEquals(summary.expertLoad()[l], sum[l], "layer " + l);
            assertEquals(2L * 24 * 256, java.util.Arrays.stream(sum[l]).sum(), "24 rows of 256 tokens, top-2");
        }
        assertEquals(List.of(0, 1, 2), List.copyOf(batches.keySet()));
        for (TreeSet<Long> ids : batches.values()) {
            assertEquals(ids.size() - 1, ids.last(), "batch ids count from 0 in each task: " + ids);
        }
        // each batch holds every MoE layer once
        Map<String, Long> perBatch = read.records().stream().collect(Collectors.groupingBy(
                r -> r.partition() + "/" + r.batch(), Collectors.counting()));
        assertTrue(perBatch.values().stream().allMatch(c -> c == 4), perBatch.toString());

        // --mode overwrite replaces an existing trace folder (here with a different partitioning)
        Files.writeString(trace.resolve("loads").resolve("stale.parquet"), "left from before");
        MoeScoreJob.score(spark, SparkTests.with(options("parquet", trace.toString()), "mode", "overwrite",
                "partitions", 2));
        assertEquals(List.of(0, 1), List.copyOf(new TreeSet<>(TraceInputs.read(trace).records().stream()
                .map(RoutingRecord::partition).toList())), "the new run's partitions only, no stale file read");
    }

    @Test
    void arrowBesideArrowOutputAndRefusals() throws IOException {
        Path trace = dir.resolve("trace-arrow");
        MoeScoreJob.score(spark, options("arrow", trace.toString()));
        try (Stream<Path> list = Files.list(trace.resolve("loads"))) {
            assertTrue(list.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith("."))
                    .allMatch(n -> n.endsWith(".arrow")));
        }
        assertEquals(4, TraceInputs.read(trace).layers().length);

        IllegalArgumentException exists = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, SparkTests.with(options("parquet", trace.toString()), "output",
                        dir.resolve("fresh").toString())));
        assertTrue(exists.getMessage().startsWith("--routing-trace " + trace + " already exists"),
                exists.getMessage());
        String output = dir.resolve("out").toString();
        IllegalArgumentException inside = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, SparkTests.with(options("parquet", output + "/trace"), "output",
                        output)));
        assertTrue(inside.getMessage().contains("--routing-trace"), inside.getMessage());
        assertFalse(Files.exists(Path.of(output)), "nothing written");
    }

    @Test
    void theOptionAndItsConf() {
        MoeScoreJob job = new MoeScoreJob();
        new CommandLine(job).parseArgs("--input", "in.jsonl", "--output", "out", "--model", "m",
                "--routing-trace", "t");
        assertEquals("t", job.resolve(new SparkConf(false)).routingTrace());
        MoeScoreJob fromConf = new MoeScoreJob();
        new CommandLine(fromConf).parseArgs("--input", "in.jsonl", "--output", "out", "--model", "m");
        assertEquals("c", fromConf.resolve(new SparkConf(false).set("spark.moescore.routingTrace", "c"))
                .routingTrace());
        assertEquals(null, fromConf.resolve(new SparkConf(false)).routingTrace());
    }

    /** The demo job with {@code --routing-trace-tokens} into {@code trace}. */
    private ScoreJobOptions withTokens(String trace) {
        return SparkTests.options(List.of(SparkTests.demoInput().toString()), "json",
                dir.resolve("scores-tokens").toString(), "parquet", SparkTests.demoModel().toString(), false, 0, 3, 2000)
                .withRoutingTrace(trace).withRoutingTraceTokens(true);
    }

    /** One sequence's routing over its layers, as text: what the job's and the engine's must equal. */
    private static String key(SortedMap<Integer, TokenRouting.Choices> layers) {
        StringBuilder b = new StringBuilder();
        layers.forEach((l, c) -> b.append(l).append(java.util.Arrays.toString(c.offsets()))
                .append(java.util.Arrays.toString(c.experts())).append(java.util.Arrays.toString(c.gates()))
                .append(';'));
        return b.toString();
    }

    private static int[] ints(Row r, String column) {
        return r.getList(r.fieldIndex(column)).stream().mapToInt(o -> (Integer) o).toArray();
    }

    @Test
    void theEnginesOwnRoutingAddingUpToTheLoads() throws IOException {
        Path trace = dir.resolve("trace");
        MoeScoreJob.score(spark, withTokens(trace.toString()));
        assertFalse(Files.exists(trace.resolve("_attempts")));
        List<Row> rows = spark.read().parquet(trace.resolve(TokenTrace.FOLDER).toString()).collectAsList();
        assertEquals(24 * 4, rows.size(), "one record per row and MoE layer");
        assertEquals(rows.size(), TokenTrace.records(trace));

        // the job's routing, per sequence (partition, row ordinal); per-layer counts per (partition, batch)
        Map<String, SortedMap<Integer, TokenRouting.Choices>> job = new TreeMap<>();
        Map<String, long[]> counts = new HashMap<>();
        for (Row r : rows) {
            int layer = r.getInt(r.fieldIndex("layer"));
            List<Object> g = r.getList(r.fieldIndex("gates"));
            float[] gates = new float[g.size()];
            for (int i = 0; i < gates.length; i++) {
                gates[i] = (Float) g.get(i);
            }
            TokenRouting.Choices c = new TokenRouting.Choices(ints(r, "offsets"), ints(r, "experts"), gates);
            String seq = r.getInt(r.fieldIndex("partition")) + "/" + r.getLong(r.fieldIndex("row"));
            job.computeIfAbsent(seq, s -> new TreeMap<>()).put(layer, c);
            long[] perExpert = counts.computeIfAbsent(r.getInt(r.fieldIndex("partition")) + "/"
                    + r.getLong(r.fieldIndex("batch")) + "/" + layer, k -> new long[8]);
            for (int e : c.experts()) {
                perExpert[e]++;
            }
        }
        assertEquals(24, job.size(), "every row");
        List<RoutingRecord> loads = TraceInputs.read(trace).records();
        assertEquals(counts.size(), loads.size(), "the same (partition, batch, layer)s");
        for (RoutingRecord r : loads) {
            assertArrayEquals(r.tokens(), counts.get(r.partition() + "/" + r.batch() + "/" + r.layer()),
                    "partition " + r.partition() + ", batch " + r.batch() + ", layer " + r.layer());
        }

        // the CPU engine's routing of each input row, scored alone (the job shuffles rows into partitions: compare
        // the sequences' routings as multisets)
        List<String> engine = new ArrayList<>();
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        try (Backend cpu = Backends.open("cpu", 2, 0, Precision.parse("bf16"), false);
             Engine e = Engine.load(SparkTests.demoModel(), cpu)) {
            for (String line : Files.readAllLines(SparkTests.demoInput())) {
                if (line.isBlank()) {
                    continue;
                }
                int[] tokens = json.readTree(line).get("tokens").traverse(json).readValueAs(int[].class);
                TokenRouting routing = e.score(TokenBatch.of(tokens), ScoreOptions.SUMS_ONLY.withTokenRouting(true))
                        .tokenRouting();
                engine.add(key(routing.layers(0)));
            }
        }
        List<String> fromJob = new ArrayList<>(job.values().stream().map(RoutingTraceJobTest::key).toList());
        java.util.Collections.sort(engine);
        java.util.Collections.sort(fromJob);
        assertEquals(engine, fromJob);
    }

    /**
     * Token records name their row by the input's id column: each record's {@code id} is the id of the scores
     * output's row at the same (partition, row ordinal), and every output id has one record per MoE layer. String ids
     * (JSON input, 3 partitions: rows) and int ids written as bigint (Parquet input as it is: column batches).
     */
    @Test
    void tokenRecordsCarryTheIdsOfTheScoredRows() throws IOException {
        checkIds(SparkTests.demoInput().toString(), "json", 3, "string ids");
        Path parquet = dir.resolve("int-ids.parquet");
        spark.read().json(SparkTests.demoInput().toString())
                .withColumn("id", org.apache.spark.sql.functions.monotonically_increasing_id().plus(1000).cast("int"))
                .repartition(2).write().parquet(parquet.toString());
        checkIds(parquet.toString(), "parquet", 0, "int ids");
    }

    /**
     * --long-rows stride: a long row's windows are sequences of their own (their records' {@code row}), all with the
     * row's id: per id, as many sequences as the scores' {@code num_windows}, each with one record per MoE layer.
     */
    @Test
    void aLongRowsWindowsCarryItsId() throws IOException {
        List<Integer> demo = new ArrayList<>();
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String line : Files.readAllLines(SparkTests.demoInput())) {
            json.readTree(line).get("tokens").forEach(t -> demo.add(t.asInt()));
        }
        int[] lengths = {2500, 100, 1500, 1024};
        List<String> lines = new ArrayList<>();
        for (int i = 0, at = 0; i < lengths.length; at += lengths[i], i++) {
            lines.add(json.writeValueAsString(Map.of("id", "row-" + i, "tokens", demo.subList(at, at + lengths[i]))));
        }
        Path input = Files.write(dir.resolve("long.jsonl"), lines);
        Path trace = dir.resolve("trace-long");
        Path out = dir.resolve("scores-long");
        io.moescore.score.ScoreSettings stride = SparkTests.cpu()
                .with(io.moescore.score.ScoreSettings.LONG_ROWS, io.moescore.score.LongRows.STRIDE)
                .with(io.moescore.score.ScoreSettings.STRIDE, 512);
        MoeScoreJob.score(spark, new ScoreJobOptions(List.of(input.toString()), "json", out.toString(), "parquet",
                SparkTests.demoModel().toString(), stride, "error", "id", "tokens", "text", 2, null)
                .withRoutingTrace(trace.toString()).withRoutingTraceTokens(true));
        Map<String, Integer> windows = new TreeMap<>();
        for (Row r : spark.read().parquet(out.toString()).collectAsList()) {
            windows.put(r.getString(r.fieldIndex("id")), r.getInt(r.fieldIndex("num_windows")));
        }
        assertTrue(windows.get("row-0") > 1 && windows.get("row-1") == 1, "long and short rows: " + windows);
        Map<String, java.util.Set<String>> sequences = new TreeMap<>();
        Map<String, Integer> records = new TreeMap<>();
        for (Row r : spark.read().parquet(trace.resolve(TokenTrace.FOLDER).toString()).collectAsList()) {
            String id = r.getString(r.fieldIndex("id"));
            sequences.computeIfAbsent(id, k -> new TreeSet<>()).add(r.getInt(r.fieldIndex("partition")) + "/"
                    + r.getLong(r.fieldIndex("row")));
            records.merge(id, 1, Integer::sum);
        }
        Map<String, Integer> perId = new TreeMap<>();
        sequences.forEach((id, seqs) -> perId.put(id, seqs.size()));
        assertEquals(windows, perId, "sequences per id = num_windows");
        windows.forEach((id, n) -> assertEquals(4 * n, records.get(id), id + ": 4 layers per window"));
    }

    private void checkIds(String input, String inputFormat, int partitions, String what) throws IOException {
        Path trace = dir.resolve("trace-" + inputFormat);
        Path out = dir.resolve("scores-ids-" + inputFormat);
        MoeScoreJob.score(spark, SparkTests.options(List.of(input), inputFormat, out.toString(), "parquet",
                SparkTests.demoModel().toString(), false, 0, partitions, 2000).withRoutingTrace(trace.toString())
                .withRoutingTraceTokens(true));
        Map<String, Object> scored = new HashMap<>();  // "partition/row" -> the output row's id
        try (Stream<Path> files = Files.list(out)) {
            for (Path f : files.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
                int partition = Integer.parseInt(f.getFileName().toString().substring(5, 10));
                List<Row> rows = spark.read().parquet(f.toString()).collectAsList();
                for (int r = 0; r < rows.size(); r++) {
                    scored.put(partition + "/" + r, rows.get(r).get(rows.get(r).fieldIndex("id")));
                }
            }
        }
        assertEquals(24, scored.size(), what + ": output rows");
        List<Row> records = spark.read().parquet(trace.resolve(TokenTrace.FOLDER).toString()).collectAsList();
        assertEquals(24 * 4, records.size(), what + ": one record per row and MoE layer");
        Map<Object, Integer> perId = new HashMap<>();
        for (Row r : records) {
            String at = r.getInt(r.fieldIndex("partition")) + "/" + r.getLong(r.fieldIndex("row"));
            Object id = r.get(r.fieldIndex("id"));
            assertTrue(id != null, what + ": record at " + at + " has an id");
            assertEquals(scored.get(at), id, what + ": id of the record at " + at);
            perId.merge(id, 1, Integer::sum);
        }
        assertEquals(new java.util.HashSet<>(scored.values()), perId.keySet(), what + ": every output id");
        assertTrue(perId.values().stream().allMatch(n -> n == 4), what + ": 4 layers per id " + perId);
        com.fasterxml.jackson.databind.JsonNode columns = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(trace.resolve("_routing_trace.json").toFile()).get("token_routing").get("columns");
        assertEquals("id", columns.get(3).asText(), what + ": the manifest lists the id column");
    }

    @Test
    void tokensOptionRefusedWithoutRoutingTrace() {
        IllegalArgumentException alone = assertThrows(IllegalArgumentException.class, () -> withTokens(null));
        assertTrue(alone.getMessage().startsWith("--routing-trace-tokens needs --routing-trace"), alone.getMessage());

        MoeScoreJob job = new MoeScoreJob();
        new CommandLine(job).parseArgs("--input", "in.jsonl", "--output", "out", "--model", "m",
                "--routing-trace", "t", "--routing-trace-tokens");
        assertTrue(job.resolve(new SparkConf(false)).routingTraceTokens());
        MoeScoreJob fromConf = new MoeScoreJob();
        new CommandLine(fromConf).parseArgs("--input", "in.jsonl", "--output", "out", "--model", "m");
        assertTrue(fromConf.resolve(new SparkConf(false).set("spark.moescore.routingTrace", "c")
                .set("spark.moescore.routingTraceTokens", "true")).routingTraceTokens());
        assertFalse(fromConf.resolve(new SparkConf(false)).routingTraceTokens());
        MoeScoreJob noTrace = new MoeScoreJob();
        new CommandLine(noTrace).parseArgs("--input", "in.jsonl", "--output", "out", "--model", "m",
                "--routing-trace-tokens");
        assertThrows(IllegalArgumentException.class, () -> noTrace.resolve(new SparkConf(false)));
    }
}
