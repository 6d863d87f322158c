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
import io.moescore.score.ScoreSettings;
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
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code --routing-trace-tokens}: the job's token routing of the demo model is the CPU engine's own for the same
 * rows, adds up to the loads files' counts batch by batch, and the option is refused without --routing-trace.
 */
class TokenRoutingTraceJobTest {
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

    private ScoreJobOptions options(String trace) {
        return SparkTests.options(List.of(SparkTests.demoInput().toString()), "json",
                dir.resolve("scores").toString(), "parquet", SparkTests.demoModel().toString(), false, 0, 3, 2000)
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
        MoeScoreJob.score(spark, options(trace.toString()));
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
        List<String> fromJob = new ArrayList<>(job.values().stream().map(TokenRoutingTraceJobTest::key).toList());
        java.util.Collections.sort(engine);
        java.util.Collections.sort(fromJob);
        assertEquals(engine, fromJob);
    }

    @Test
    void refusedWithoutRoutingTraceAndWithCuda() {
        IllegalArgumentException alone = assertThrows(IllegalArgumentException.class, () -> options(null));
        assertTrue(alone.getMessage().startsWith("--routing-trace-tokens needs --routing-trace"), alone.getMessage());
        IllegalArgumentException cuda = assertThrows(IllegalArgumentException.class, () -> SparkTests.with(
                options(dir.resolve("t").toString()), "scoring", SparkTests.cpu().with(ScoreSettings.BACKEND, "cuda")));
        assertTrue(cuda.getMessage().startsWith("--routing-trace-tokens is not available with --backend cuda"),
                cuda.getMessage());

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
