package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.MoeScorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * A wrong column, a missing model or settings that cannot work throw an IllegalArgumentException naming them from
 * {@code transform}, before any Spark job starts; without stage-level scheduling no stage asks for GPUs.
 */
class MoeScorerValidationTest {
    static SparkSession spark;
    static final JobCounter jobs = new JobCounter();
    @TempDir
    Path dir;

    /** Counts the jobs Spark starts and remembers the resource profile of every stage. */
    static final class JobCounter extends SparkListener {
        final AtomicInteger started = new AtomicInteger();
        final List<Integer> stageProfiles = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public void onJobStart(SparkListenerJobStart job) {
            started.incrementAndGet();
        }

        @Override
        public void onStageSubmitted(SparkListenerStageSubmitted stage) {
            stageProfiles.add(stage.stageInfo().resourceProfileId());
        }

        /** Jobs started so far, once Spark has delivered every event posted until now. */
        int count() {
            try {
                spark.sparkContext().listenerBus().waitUntilEmpty();
            } catch (java.util.concurrent.TimeoutException e) {
                throw new IllegalStateException("Spark's listener bus did not drain", e);
            }
            return started.get();
        }
    }

    @BeforeAll
    static void start() {
        spark = SparkTests.localSession();
        spark.sparkContext().addSparkListener(jobs);
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    static MoeScorer scorer() {
        return new MoeScorer().setModelPath(SparkTests.demoModel().toString()).setBackend("cpu");
    }

    /** Asserts that {@code transform} throws before any job, with a message holding every one of {@code parts}. */
    static void assertRefusedBeforeAnyJob(Executable transform, String... parts) {
        int before = jobs.count();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, transform);
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' in: " + e.getMessage());
        }
        assertEquals(before, jobs.count(), "no Spark job ran before the error: " + e.getMessage());
    }

    static Dataset<Row> rows(String select) {
        return spark.sql("SELECT " + select + " FROM range(3)");
    }

    @Test
    void wronglyTypedColumnsAreNamedWithFoundAndExpectedType() {
        assertRefusedBeforeAnyJob(() -> scorer().transform(rows("id, '1 2 3' AS tokens")),
                "column 'tokens' has type string, expected array<int>");
        assertRefusedBeforeAnyJob(() -> scorer().transform(rows("id, array(1.5, 2.5) AS tokens")),
                "column 'tokens' has type array<decimal(2,1)>, expected array<int>");
        assertRefusedBeforeAnyJob(() -> scorer().transform(rows("id, 42 AS text")),
                "column 'text' has type int, expected string");
    }

    @Test
    void aMissingInputColumnIsNamedWithTheColumnsThereAre() {
        assertRefusedBeforeAnyJob(() -> scorer().transform(rows("id, 'x' AS body")),
                "neither a 'tokens' nor a 'text' column", "columns: [id, body]");
        assertRefusedBeforeAnyJob(() -> scorer().setTokensCol("ids").setTextCol("doc")
                .transform(rows("id, array(1, 2) AS tokens")), "'ids'", "'doc'", "columns: [id, tokens]");
    }

    @Test
    void anInputColumnNamedLikeAScoreIsRefused() {
        assertRefusedBeforeAnyJob(() -> scorer().transform(rows("id, array(1, 2) AS tokens, 'x' AS error")),
                "already has a column 'error'", "outputStructCol");
        assertRefusedBeforeAnyJob(() -> scorer().setOutputStructCol("id").transform(rows("id, array(1, 2) AS tokens")),
                "already has a column 'id'");
    }

    @Test
    void aMissingOrIncompleteModelIsNamed() throws IOException {
        Dataset<Row> input = rows("id, array(1, 2) AS tokens");
        Path missing = dir.resolve("no-such-model");
        assertRefusedBeforeAnyJob(() -> scorer().setModelPath(missing.toString()).transform(input),
                "model directory " + missing + " does not exist");
        Path empty = Files.createDirectories(dir.resolve("empty-model"));
        assertRefusedBeforeAnyJob(() -> scorer().setModelPath(empty.toString()).transform(input),
                empty.resolve("config.json").toString());
        Path broken = Files.createDirectories(dir.resolve("broken-model"));
        Files.writeString(broken.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
        assertRefusedBeforeAnyJob(() -> scorer().setModelPath(broken.toString()).transform(input), "gpt2");
        assertRefusedBeforeAnyJob(() -> new MoeScorer().transform(input), "modelPath is not set");
        assertRefusedBeforeAnyJob(() -> new MoeScorer().transformSchema(input.schema()), "modelPath is not set");
    }

    @Test
    void impossibleParameterValuesAreRefusedWhenSet() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> scorer().setBackend("tpu"));
        assertTrue(e.getMessage().contains("backend"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> scorer().setBatchTokens(0));
        assertTrue(e.getMessage().contains("batchTokens"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> scorer().setTopK(-1));
        assertTrue(e.getMessage().contains("topK"), e.getMessage());
    }

    @Test
    void stageLevelSchedulingThatCannotWorkHereIsRefusedNamingWhy() {
        Dataset<Row> input = rows("id, array(1, 2) AS tokens");
        // executors of this application have no GPUs to give the scoring tasks
        assertRefusedBeforeAnyJob(() -> scorer().setUseStageLevelScheduling(true).setExecutorGpuAmount(0)
                .transform(input), "spark.executor.resource.gpu.amount", "executorGpuAmount");
        // local mode cannot start executors with GPUs for one stage: Spark's refusal, named as ours
        assertRefusedBeforeAnyJob(() -> scorer().setUseStageLevelScheduling(true).transform(input),
                "useStageLevelScheduling", "dynamic allocation");
        assertRefusedBeforeAnyJob(() -> scorer().setUseStageLevelScheduling(true).setExecutorGpuAmount(1)
                .setTaskGpuAmount(2).transform(input), "executorGpuAmount 1", "taskGpuAmount 2.0");
    }

    @Test
    void withoutStageLevelSchedulingTheScoringStageHasTheDefaultProfile() {
        jobs.count();
        jobs.stageProfiles.clear();
        List<Row> out = scorer().transform(rows("id, array(CAST(id AS INT) + 1, 2, 3) AS tokens")).collectAsList();
        assertEquals(3, out.size());
        jobs.count();
        List<Integer> profiles = new ArrayList<>(jobs.stageProfiles);
        assertTrue(!profiles.isEmpty(), "the scoring ran in some stage");
        profiles.forEach(p -> assertEquals(0, p, "stage resource profiles: " + profiles));
    }
}
