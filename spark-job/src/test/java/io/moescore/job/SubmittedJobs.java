package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;

/**
 * What the tests that run the job as a separate application (spark-submit on a standalone or YARN cluster) share:
 * waiting for the submitting process while acting on the cluster, the fault-injecting input, and reading the
 * output (Parquet through parquet-hadoop, on any Hadoop file system) to compare it with the single-process scorer.
 */
final class SubmittedJobs {
    private SubmittedJobs() {
    }

    /** What a test does while the submitting process runs, between checks. */
    interface WhileRunning {
        void poll() throws Exception;
    }

    /**
     * Waits for {@code submit} to exit, calling {@code whileRunning} every 200 ms; returns its exit code. After
     * {@code timeout} it fails with the log's tail and {@code diagnostics}.
     */
    static int awaitExit(Process submit, Duration timeout, Path log, Supplier<String> diagnostics,
                         WhileRunning whileRunning) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!submit.waitFor(200, TimeUnit.MILLISECONDS)) {
            whileRunning.poll();
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the submission did not finish in " + timeout.toSeconds() + " s\n"
                        + tail(log) + "\n" + diagnostics.get());
            }
        }
        return submit.exitValue();
    }

    /**
     * Runs a command (a launch script) with exactly this environment, output and errors to {@code log}, calling
     * {@code whileRunning} meanwhile; returns its exit code ({@link #awaitExit}), the process gone either way.
     */
    static int runScript(List<String> cmd, Map<String, String> env, Path log, Duration timeout,
                         Supplier<String> diagnostics, WhileRunning whileRunning) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().clear();
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            return awaitExit(p, timeout, log, diagnostics, whileRunning);
        } finally {
            destroy(p);
        }
    }

    /** SIGTERM, then SIGKILL after 10 s; fails if the process is still alive. */
    static void destroy(Process p) throws InterruptedException {
        if (p.isAlive()) {
            p.destroy();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
        }
        assertFalse(p.isAlive(), "the submitting JVM (pid " + p.pid() + ") is still alive");
    }

    /** The last 60 lines of a log, with its name, for a failure's message. */
    static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return "==== " + log + " (last 60 lines)\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    /** How many {@link FaultInjectingFileSystem} markers with this prefix the state folder holds. */
    static long markers(Path state, String prefix) throws IOException {
        try (var files = Files.list(state)) {
            return files.filter(p -> p.getFileName().toString().startsWith(prefix)).count();
        }
    }

    /** The demo rows as 8 JSON files of 3 rows (rows-0.json .. rows-7.json) in {@code dir}/in. */
    static Path splitDemoInput(Path dir) throws IOException {
        Path in = Files.createDirectories(dir.resolve("in"));
        List<String> lines = Files.readAllLines(SparkTests.demoInput());
        for (int f = 0; f < 8; f++) {
            Files.write(in.resolve("rows-" + f + ".json"), lines.subList(f * 3, f * 3 + 3));
        }
        return in;
    }

    /** Input through {@link FaultInjectingFileSystem}, every task's open slowed by 1.5 s, one file per task. */
    static Map<String, String> faultyInputConf(Path state) {
        return Map.of(
                "spark.hadoop.fs.faulty.impl", FaultInjectingFileSystem.class.getName(),
                "spark.hadoop.fs.faulty.impl.disable.cache", "true",
                "spark.hadoop.faulty.stateDir", state.toString(),
                "spark.hadoop.faulty.taskDelayMillis", "1500",
                "spark.sql.files.openCostInBytes", String.valueOf(256L << 20));
    }

    /**
     * The job summary of a run over the demo input: 24 rows of 256 tokens, none with an error, scored by
     * {@code executors} executors that each scored some; returns the rows of each executor id.
     */
    static Map<String, Long> demoRowsByExecutor(JsonNode summary, int executors) {
        assertEquals(24, summary.get("rows").asInt(), summary.toString());
        assertEquals(0, summary.get("rows_with_errors").asInt(), summary.toString());
        assertEquals(24 * 256, summary.get("tokens").asLong(), summary.toString());
        Map<String, Long> rowsByExecutor = new TreeMap<>();
        summary.get("executors").forEach(e -> rowsByExecutor.put(e.get("executor").asText(), e.get("rows").asLong()));
        assertEquals(executors, rowsByExecutor.size(), executors + " executors in the summary: "
                + summary.get("executors"));
        rowsByExecutor.forEach((id, rows) -> assertTrue(rows > 0, "executor " + id + " scored no rows: " + summary));
        assertEquals(24, rowsByExecutor.values().stream().mapToLong(Long::longValue).sum());
        return rowsByExecutor;
    }

    /** Every row of the Parquet part files in {@code dir} (any Hadoop file system), in no particular order. */
    static List<Group> readParquet(org.apache.hadoop.fs.Path dir, Configuration conf) throws IOException {
        FileSystem fs = dir.getFileSystem(conf);
        List<org.apache.hadoop.fs.Path> parts = new ArrayList<>();
        for (FileStatus f : fs.listStatus(dir)) {
            if (f.getPath().getName().endsWith(".parquet")) {
                parts.add(f.getPath());
            }
        }
        parts.sort(null);
        assertFalse(parts.isEmpty(), "no part files in " + dir);
        List<Group> rows = new ArrayList<>();
        for (org.apache.hadoop.fs.Path part : parts) {
            try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), part).withConf(conf)
                    .build()) {
                for (Group g = reader.read(); g != null; g = reader.read()) {
                    rows.add(g);
                }
            }
        }
        return rows;
    }

    /** Every row of the Parquet part files in a local folder. */
    static List<Group> readParquet(Path dir) throws IOException {
        return readParquet(new org.apache.hadoop.fs.Path(dir.toUri()), new Configuration());
    }

    /**
     * The output rows are the demo input's, each once (no duplicate or missing id), each equal to the single-process
     * scorer's line of {@code expected} (its JSON Lines output): num_tokens, and sum_logprob, mean_nll and perplexity
     * bit for bit; no row has an error.
     */
    static void assertEqualsSingleProcess(List<Group> rows, Path expected) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<String> expectedLines = Files.readAllLines(expected);
        assertEquals(Files.readAllLines(SparkTests.demoInput()).size(), expectedLines.size());
        assertEquals(expectedLines.size(), rows.size(), "rows in = rows out");
        Map<String, Group> byId = new HashMap<>();
        rows.forEach(r -> byId.put(r.getString("id", 0), r));
        assertEquals(rows.size(), byId.size(), "no duplicate ids");
        for (String line : expectedLines) {
            JsonNode e = json.readTree(line);
            String id = e.get("id").asText();
            Group got = byId.get(id);
            assertNotNull(got, "no output row for " + id);
            assertEquals(e.get("num_tokens").asInt(), got.getInteger("num_tokens", 0), id);
            assertEquals(e.get("sum_logprob").asDouble(), got.getDouble("sum_logprob", 0), 0.0, id);
            assertEquals(e.get("mean_nll").asDouble(), got.getDouble("mean_nll", 0), 0.0, id);
            assertEquals(e.get("perplexity").asDouble(), got.getDouble("perplexity", 0), 0.0, id);
            assertEquals(0, got.getFieldRepetitionCount("error"), id + " has an error");
        }
    }

    /** {@link #assertEqualsSingleProcess} of a committed local output folder (it has _SUCCESS). */
    static void assertExactOutput(Path output, Path expected) throws IOException {
        assertTrue(Files.exists(output.resolve("_SUCCESS")), "the job committed its output");
        assertEqualsSingleProcess(readParquet(output), expected);
    }
}
