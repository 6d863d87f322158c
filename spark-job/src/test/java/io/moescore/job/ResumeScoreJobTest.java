package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
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
 * {@code --resume} in local mode with no task retries (local[1]: the first failing task fails the job, after the
 * tasks before it committed their splits): input is the demo rows as 8 JSON files read through
 * {@link FaultInjectingFileSystem}, one split each. The killed-driver case on a cluster is in
 * {@link StandaloneScoreJobTest}.
 */
class ResumeScoreJobTest {
    @TempDir
    Path dir;
    SparkSession spark;
    Path state;
    Path input;

    @BeforeEach
    void start() throws IOException {
        state = Files.createDirectories(dir.resolve("fault-state"));
        spark = SparkSession.builder().master("local[1]").appName("moescore-resume-test")
                .config("spark.ui.enabled", "false")
                .config("spark.moescore.cpuThreads", "2")
                .config("spark.moescore.progressSeconds", "0")
                .config("spark.sql.files.openCostInBytes", String.valueOf(256L << 20))  // one file per split
                .config("spark.hadoop.fs.faulty.impl", FaultInjectingFileSystem.class.getName())
                .config("spark.hadoop.fs.faulty.impl.disable.cache", "true")
                .config("spark.hadoop.faulty.stateDir", state.toString())
                .config("spark.hadoop.faulty.taskDelayMillis", "1")  // a marker per file a scoring task opens
                .getOrCreate();
        input = Files.createDirectories(dir.resolve("in"));
        List<String> lines = Files.readAllLines(SparkTests.demoInput());
        for (int f = 0; f < 8; f++) {
            Files.write(input.resolve("rows-" + f + ".json"), lines.subList(f * 3, f * 3 + 3));
        }
    }

    @AfterEach
    void stop() {
        spark.stop();
    }

    private ScoreJobOptions options(Path out, String model, int topK, int partitions) {
        return SparkTests.options(List.of("faulty://" + input.toAbsolutePath()), "json", out.toString(), "parquet",
                model, false, topK, partitions, 2000).withResume(true);
    }

    private ScoreJobOptions options(Path out) {
        return options(out, SparkTests.demoModel().toString(), 0, 0);
    }

    @Test
    void aFailedRunIsResumedScoringOnlyTheSplitsNotCommitted() throws IOException {
        // Spark plans the largest files first: the smallest is the last task, after the others committed
        Path victim;
        try (Stream<Path> files = Files.list(input)) {
            victim = files.min(Comparator.comparingLong(ResumeScoreJobTest::size)).orElseThrow();
        }
        spark.sparkContext().hadoopConfiguration().set("faulty.failOnce", victim.getFileName().toString());
        Path out = dir.resolve("scores");
        assertThrows(Exception.class, () -> MoeScoreJob.score(spark, options(out)));
        assertTrue(Files.exists(state.resolve("failed-" + victim.getFileName())), "the fault was injected");
        assertNothingVisible(out);
        long committed = committedSplits(out);
        assertTrue(committed >= 1 && committed < 8, committed + " splits committed before the failure");
        clearOpenMarkers();

        // resumed with the experts over two logical devices (--devices 2): no score changes, so no refusal
        ScoreJobOptions o = options(out);
        JobSummary summary = MoeScoreJob.score(spark, new ScoreJobOptions(o.inputs(), o.inputFormat(), o.output(),
                o.outputFormat(), o.model(), o.scoring().with(ScoreSettings.DEVICES, 2), o.mode(), o.idColumn(),
                o.tokensColumn(), o.textColumn(), o.partitions(), o.summaryPath(), o.resume(), o.routingTrace(),
                o.outputWriter(), o.routingTraceTokens()));
        JobSummary.ResumeCounts resume = summary.resume();
        assertNotNull(resume, "the summary of a --resume run has resume counts");
        assertEquals(committed, resume.splitsReused(), "reused every committed split: " + resume);
        assertEquals(8 - committed, resume.splitsScored(), "scored the rest: " + resume);
        assertEquals(8 - committed, markers("opened-"), "the second run read only the splits not committed");
        assertEquals(24, resume.rowsReused() + resume.rowsScored(), resume.toString());
        assertEquals(resume.rowsScored(), summary.rows(), "the run's own totals count what it scored");
        assertTrue(summary.executors().get(0).device().startsWith("2 devices: CPU"), summary.executors().toString());
        // each device index's routing entries, summed over the executors: each scored token's top-k per MoE layer
        io.moescore.model.ModelConfig c = io.moescore.model.ModelConfig.load(SparkTests.demoModel());
        long moe = java.util.stream.IntStream.range(0, c.numLayers()).filter(l -> c.moeLayers()[l]).count();
        long[] perDevice = summary.entriesPerDevice();
        assertEquals(2, perDevice.length, java.util.Arrays.toString(perDevice));
        assertTrue(perDevice[0] > 0 && perDevice[1] > 0, java.util.Arrays.toString(perDevice));
        assertEquals(summary.tokens() * c.topK() * moe, perDevice[0] + perDevice[1], summary.tokens() + " tokens");
        assertEquals(2, summary.toJson().get("entries_per_device").size(), summary.toJson().toString());
        assertExactOutput(out);
    }

    /** spark.sql.files.maxRecordsPerFile 2: each split (3 rows) committed as two files, all promoted. */
    @Test
    void splitsRollOverAfterMaxRecordsPerFile() throws IOException {
        spark.conf().set("spark.sql.files.maxRecordsPerFile", "2");
        Path out = dir.resolve("scores-rolled");
        JobSummary summary = MoeScoreJob.score(spark, options(out));
        assertEquals(new JobSummary.ResumeCounts(0, 0, 0, 8, 24), summary.resume());
        assertExactOutput(out);
        assertEquals(java.util.Collections.nCopies(8, 3L), List.copyOf(SparkTests.assertRolledOver(spark, out,
                "parquet", 2).values()), "8 splits of 3 rows, each in 2 files");
    }

    @Test
    void resumeOnAFreshOutputIsAnOrdinaryRunAlsoWithPartitions() throws IOException {
        Path out = dir.resolve("scores-fresh");
        JobSummary summary = MoeScoreJob.score(spark, options(out, SparkTests.demoModel().toString(), 0, 3));
        assertEquals(new JobSummary.ResumeCounts(0, 0, 0, 3, 24), summary.resume());
        assertEquals(24, summary.rows());
        assertExactOutput(out);
    }

    @Test
    void aRestartWithOtherOptionsOrAnotherModelIsRefusedNamingWhatDiffers() throws IOException {
        spark.sparkContext().hadoopConfiguration().set("faulty.failOnce", "rows-");  // every task's first read fails
        Path out = dir.resolve("scores-refused");
        assertThrows(Exception.class, () -> MoeScoreJob.score(spark, options(out)));

        IllegalArgumentException topK = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(out, SparkTests.demoModel().toString(), 5, 0)));
        assertTrue(topK.getMessage().contains("topK (was 0, now 5)"), topK.getMessage());
        assertFalse(topK.getMessage().contains("model"), topK.getMessage());

        Path otherModel = Files.createDirectories(dir.resolve("other-model"));
        try (Stream<Path> files = Files.list(SparkTests.demoModel())) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, otherModel.resolve(f.getFileName()));
            }
        }
        Files.writeString(otherModel.resolve("config.json"), Files.readString(otherModel.resolve("config.json")) + "\n");
        IllegalArgumentException model = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(out, otherModel.toString(), 0, 0)));
        assertTrue(model.getMessage().contains("different model (was "), model.getMessage());
        assertFalse(model.getMessage().contains("topK"), model.getMessage());
        assertNothingVisible(out);
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static long committedSplits(Path out) throws IOException {
        Path splits = out.resolve("_moescore_resume/splits");
        if (!Files.exists(splits)) {
            return 0;
        }
        try (Stream<Path> s = Files.list(splits)) {
            return s.count();
        }
    }

    private long markers(String prefix) throws IOException {
        try (Stream<Path> files = Files.list(state)) {
            return files.filter(p -> p.getFileName().toString().startsWith(prefix)).count();
        }
    }

    private void clearOpenMarkers() throws IOException {
        try (Stream<Path> files = Files.list(state)) {
            for (Path p : files.filter(p -> p.getFileName().toString().startsWith("opened-")).toList()) {
                Files.delete(p);
            }
        }
    }

    /** No _SUCCESS and no visible part files: only the hidden resume folder. */
    private static void assertNothingVisible(Path out) throws IOException {
        assertFalse(Files.exists(out.resolve("_SUCCESS")), "no _SUCCESS");
        try (Stream<Path> files = Files.list(out)) {
            assertEquals(List.of(), files.map(p -> p.getFileName().toString())
                    .filter(n -> !n.startsWith("_") && !n.startsWith(".")).toList(), "no visible part files");
        }
    }

    /** Committed, no resume folder left, every row once and equal to the single-process scorer's. */
    private void assertExactOutput(Path out) throws IOException {
        assertTrue(Files.exists(out.resolve("_SUCCESS")), "committed");
        assertFalse(Files.exists(out.resolve("_moescore_resume")), "the resume folder is gone after promotion");
        List<Row> rows = spark.read().parquet(out.toString()).collectAsList();
        Map<String, Row> byId = new HashMap<>();
        rows.forEach(r -> byId.put(r.getString(r.fieldIndex("id")), r));
        assertEquals(24, rows.size(), "rows in = rows out");
        assertEquals(24, byId.size(), "no duplicate ids");
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), Files.createDirectories(dir.resolve("local")),
                false, 0);
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            Row got = byId.get(expected.get("id").asText());
            assertNotNull(got, "no output row for " + expected.get("id"));
            assertEquals(expected.get("sum_logprob").asDouble(), got.getDouble(got.fieldIndex("sum_logprob")), 0.0);
            assertEquals(expected.get("perplexity").asDouble(), got.getDouble(got.fieldIndex("perplexity")), 0.0);
        }
    }
}
