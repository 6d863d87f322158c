package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults during a run, in local mode with task retries (local[2,4]): input read through
 * {@link FaultInjectingFileSystem}. A task that fails once is retried and the output is exact; input that vanishes
 * or is corrupted mid-run fails the job with a message naming the file and commits nothing.
 */
class FaultToleranceScoreJobTest {
    @TempDir
    Path dir;
    SparkSession spark;
    Path state;

    @BeforeEach
    void start() throws IOException {
        state = Files.createDirectories(dir.resolve("fault-state"));
        spark = SparkSession.builder().master("local[2,4]").appName("moescore-fault-test")
                .config("spark.ui.enabled", "false")
                .config("spark.moescore.cpuThreads", "2")
                .config("spark.hadoop.fs.faulty.impl", FaultInjectingFileSystem.class.getName())
                .config("spark.hadoop.fs.faulty.impl.disable.cache", "true")
                .config("spark.hadoop.faulty.stateDir", state.toString())
                .getOrCreate();
    }

    @AfterEach
    void stop() {
        spark.stop();
    }

    /** The demo input as 4 Parquet files (6 rows each); returns them sorted. */
    private List<Path> parquetInput() throws IOException {
        Path in = dir.resolve("in");
        spark.read().json(SparkTests.demoInput().toString()).repartition(4).write().parquet(in.toString());
        try (Stream<Path> files = Files.list(in)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".parquet")).sorted().toList();
        }
    }

    private JobSummary score(Path in, String out) {
        return score(in, out, "parquet");
    }

    private JobSummary score(Path in, String out, String outputFormat) {
        return MoeScoreJob.score(spark, SparkTests.options(List.of("faulty://" + in.toAbsolutePath()), "parquet", out,
                outputFormat, SparkTests.demoModel().toString(), false, 0, 0, 2000));
    }

    /** Every demo row exactly once, with the local scorer's sum_logprob. */
    private void assertExact(List<Row> rows) throws IOException {
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir, false, 0);
        Map<String, Row> byId = new HashMap<>();
        rows.forEach(r -> byId.put(r.getString(r.fieldIndex("id")), r));
        assertEquals(24, rows.size(), "rows in = rows out");
        assertEquals(24, byId.size(), "no duplicate ids");
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            Row got = byId.get(expected.get("id").asText());
            assertEquals(expected.get("sum_logprob").asDouble(), got.getDouble(got.fieldIndex("sum_logprob")), 0.0);
        }
    }

    @Test
    void aTaskThatFailsOnceIsRetriedAndTheOutputIsExact() throws IOException {
        List<Path> files = parquetInput();
        assertEquals(4, files.size());
        String victim = files.get(2).getFileName().toString().substring(0, 10);  // part-00002
        spark.sparkContext().hadoopConfiguration().set("faulty.failOnce", victim);
        String out = dir.resolve("scores").toString();
        JobSummary summary = score(files.get(0).getParent(), out);
        assertTrue(Files.exists(state.resolve("failed-" + files.get(2).getFileName())), "the fault was injected");
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        assertExact(spark.read().parquet(out).collectAsList());
    }

    /**
     * The direct writers with spark.sql.files.maxRecordsPerFile 4 (tasks of 6 rows or more: files c000, c001, ...):
     * the first attempt to open a c001 file fails after writing its c000; the retry's files are the output, and the
     * failed attempt leaves none (Parquet, JSON: Spark's task abort; Arrow: the attempt deletes its files).
     */
    @Test
    void aTaskThatFailsAfterRollingOverLeavesNoFilesAndTheRetryCommits() throws IOException {
        Path in = parquetInput().get(0).getParent();
        spark.conf().set("spark.sql.files.maxRecordsPerFile", "4");  // the session's, as --conf would set it
        for (String format : List.of("parquet", "json", "arrow")) {
            Path out = dir.resolve("rolled." + format);
            spark.sparkContext().hadoopConfiguration().set("faulty.failCreateOnce", "-c001");
            JobSummary summary = score(in, "faulty://" + out.toAbsolutePath(), format);
            spark.sparkContext().hadoopConfiguration().unset("faulty.failCreateOnce");
            assertTrue(Files.exists(state.resolve("failed-create--c001")), format + ": the fault was injected");
            Files.delete(state.resolve("failed-create--c001"));
            assertEquals(24, summary.rows(), format);
            List<String> files;
            try (Stream<Path> all = Files.walk(out)) {
                files = all.filter(Files::isRegularFile).map(p -> out.relativize(p).toString()).sorted().toList();
            }
            assertEquals(List.of(), files.stream().filter(n -> !n.equals("_SUCCESS") && !n.startsWith("part-"))
                    .toList(), format + ": part files and _SUCCESS only");
            Map<String, Long> tasks = SparkTests.assertRolledOver(spark, out, format, 4);
            assertTrue(tasks.values().stream().anyMatch(rows -> rows > 4), format + ": some task rolled over " + tasks);
            assertExact(spark.read().format(format).load(out.toString()).collectAsList());
        }
    }

    @Test
    void inputThatVanishesMidRunFailsNamingTheFileAndCommitsNothing() throws Exception {
        List<Path> files = parquetInput();
        Path victim = files.get(3);
        spark.sparkContext().hadoopConfiguration().setLong("faulty.taskDelayMillis", 1500);
        String out = dir.resolve("scores-vanished").toString();
        Thread deleter = new Thread(() -> {
            try {
                awaitScoringStarted();  // the job has listed the files; two tasks sleep in their first open
                Files.delete(victim);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        deleter.start();
        Exception e = assertThrows(Exception.class, () -> score(files.get(0).getParent(), out));
        deleter.join();
        assertTrue(messages(e).contains(victim.getFileName().toString()), "names the file: " + messages(e));
        assertNothingCommitted(Path.of(out));
    }

    @Test
    void inputCorruptedMidRunFailsNamingTheFileAndCommitsNothing() throws Exception {
        List<Path> files = parquetInput();
        Path victim = files.get(3);
        spark.sparkContext().hadoopConfiguration().setLong("faulty.taskDelayMillis", 1500);
        String out = dir.resolve("scores-corrupted").toString();
        Thread corrupter = new Thread(() -> {
            try {
                awaitScoringStarted();
                byte[] bytes = Files.readAllBytes(victim);
                Files.write(victim, java.util.Arrays.copyOf(bytes, bytes.length / 2));  // truncated: no footer
            } catch (Exception ex) {
                throw new IllegalStateException(ex);
            }
        });
        corrupter.start();
        Exception e = assertThrows(Exception.class, () -> score(files.get(0).getParent(), out));
        corrupter.join();
        assertTrue(messages(e).contains(victim.getFileName().toString()), "names the file: " + messages(e));
        assertNothingCommitted(Path.of(out));
    }

    /** Waits until a scoring task has opened an input file (its {@code opened-} marker, faulty.taskDelayMillis). */
    private void awaitScoringStarted() throws IOException, InterruptedException {
        long deadline = System.nanoTime() + 300_000_000_000L;
        while (System.nanoTime() < deadline) {
            try (Stream<Path> files = Files.list(state)) {
                if (files.anyMatch(p -> p.getFileName().toString().startsWith("opened-"))) {
                    return;
                }
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("no scoring task opened an input file in 300 s");
    }

    private static String messages(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            sb.append(c.getMessage()).append('\n');
        }
        return sb.toString();
    }

    /** No _SUCCESS and no visible part files (Spark's _temporary folder may remain: it is hidden). */
    private static void assertNothingCommitted(Path out) throws IOException {
        if (!Files.exists(out)) {
            return;
        }
        assertFalse(Files.exists(out.resolve("_SUCCESS")), "no _SUCCESS");
        try (Stream<Path> files = Files.list(out)) {
            List<String> visible = files.map(p -> p.getFileName().toString())
                    .filter(n -> !n.startsWith("_") && !n.startsWith(".")).toList();
            assertEquals(List.of(), visible, "no visible part files");
        }
    }
}
