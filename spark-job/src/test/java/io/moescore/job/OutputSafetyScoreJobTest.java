package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.MoeScorer;
import io.moescore.spark.ScoreJobOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * No run deletes, truncates, overwrites or writes into its input or its model directory: an output (or summary)
 * that is, is inside or contains an input or the model is refused before anything is written, naming both paths
 * (IllegalArgumentException, exit 2), in every format and mode, and MoeScorer's writer refuses to save over its
 * model. The model is a copy of the demo model, so that a broken guard could only ever delete a copy.
 */
class OutputSafetyScoreJobTest {
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

    static ScoreJobOptions options(String input, String format, String output, String outputFormat, String model,
                                   String mode, String summary, boolean resume) {
        return SparkTests.with(SparkTests.options(List.of(input), format, output, outputFormat, model, false, 0, 0,
                8192), "mode", mode, "summaryPath", summary, "resume", resume);
    }

    /** Every file under {@code root} (or the file itself) with its bytes, as text for a readable diff. */
    static Map<String, String> snapshot(Path root) throws IOException {
        Map<String, String> files = new TreeMap<>();
        if (Files.isRegularFile(root)) {
            files.put(root.toString(), java.util.HexFormat.of().formatHex(Files.readAllBytes(root)));
            return files;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.filter(Files::isRegularFile).toList()) {
                files.put(root.relativize(p).toString(), java.util.HexFormat.of().formatHex(Files.readAllBytes(p)));
            }
        }
        return files;
    }

    Path modelCopy() throws IOException {
        Path model = Files.createDirectories(dir.resolve("models/tiny"));
        try (Stream<Path> files = Files.list(SparkTests.demoModel())) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        return model;
    }

    /** The job is refused with a message naming the written path and what it overlaps; nothing is written. */
    void assertRefused(ScoreJobOptions options, String relation, Path kept, Path... untouched) throws IOException {
        List<Map<String, String>> before = new java.util.ArrayList<>();
        for (Path p : untouched) {
            before.add(snapshot(p));
        }
        Path summary = Path.of(options.resolvedSummaryPath().replaceFirst("^file:/*", "/"));
        boolean summaryBefore = Files.exists(summary);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options), options.toString());
        String m = e.getMessage();
        assertTrue(m.contains(relation), m);
        assertTrue(m.contains("file:" + kept.toRealPath()), "names the kept path: " + m);
        for (int i = 0; i < untouched.length; i++) {
            assertEquals(before.get(i), snapshot(untouched[i]), "left " + untouched[i] + " as it was");
        }
        Path out = Path.of(options.output().replaceFirst("^file:/*", "/"));
        assertFalse(Files.exists(out.resolveSibling("." + out.getFileName() + ".moescore-lock")), "no lock left");
        assertEquals(summaryBefore, Files.exists(summary), "no summary written for a refused run: " + summary);
    }

    @Test
    void outputEqualToTheInputIsRefusedInEveryFormatAndMode() throws IOException {
        Path model = modelCopy();
        for (String format : List.of("json", "parquet", "arrow")) {
            Path input = dir.resolve("in-" + format);
            spark.read().json(SparkTests.demoInput().toString()).limit(3).selectExpr("id",
                    "CAST(tokens AS ARRAY<INT>) AS tokens").write().format(format).mode("overwrite")
                    .save(input.toString());
            for (String mode : List.of("error", "overwrite", "append", "resume")) {
                boolean resume = mode.equals("resume");
                String outputFormat = resume && format.equals("arrow") ? "parquet" : format;
                assertRefused(options(input.toString(), format, input.toString(), outputFormat, model.toString(),
                        resume ? "error" : mode, null, resume), "--output file:" + input.toRealPath() + " is the input",
                        input, input, model);
            }
        }
        Path file = dir.resolve("rows.jsonl");
        Files.write(file, Files.readAllLines(SparkTests.demoInput()).subList(0, 3));
        for (String mode : List.of("error", "overwrite", "append")) {
            assertRefused(options(file.toString(), "json", "file://" + file, "json", model.toString(), mode, null,
                    false), "is the input", file, file, model);
        }
    }

    @Test
    void outputInsideOrAroundTheInputOrTheModelIsRefused() throws IOException {
        Path model = modelCopy();
        Path data = Files.createDirectories(dir.resolve("data"));
        Path input = data.resolve("in.jsonl");
        Files.write(input, Files.readAllLines(SparkTests.demoInput()).subList(0, 3));
        String in = input.toString();
        String m = model.toString();

        assertRefused(options(in, "json", data.toString(), "json", m, "overwrite", null, false), "contains the input",
                input, data, model);
        assertRefused(options(data.toString(), "json", data.resolve("scores").toString(), "json", m, "error", null,
                false), "is inside the input", data, data, model);
        assertRefused(options(in, "json", m, "json", m, "overwrite", null, false), "is the model directory", model,
                data, model);
        assertRefused(options(in, "json", model.resolve("scores").toString(), "json", m, "append", null, false),
                "is inside the model directory", model, data, model);
        assertRefused(options(in, "json", dir.resolve("models").toString(), "json", m, "overwrite", null, false),
                "contains the model directory", model, data, model);
        // the summary is written too: never onto an input or a model file
        assertRefused(options(in, "json", dir.resolve("out-a").toString(), "json", m, "error", in, false),
                "--summary file:" + input.toRealPath() + " is the input", input, data, model);
        assertRefused(options(in, "json", dir.resolve("out-b").toString(), "json", m, "error",
                model.resolve("config.json").toString(), false), "is inside the model directory", model, data, model);
        // paths are compared as the file system resolves them: a link to the input is the input
        Path link = Files.createSymbolicLink(dir.resolve("link-to-data"), data);
        assertRefused(options(data.toString(), "json", link.toString(), "json", m, "overwrite", null, false),
                "is the input", data, data, model);
        // a glob input keeps what it matches, and what it would match
        assertRefused(options(data + "/*.jsonl", "json", data.resolve("new.jsonl").toString(), "json", m, "error",
                null, false), "matches the input", data, data, model);
        assertRefused(options(dir + "/da*/in.jsonl", "json", data.toString(), "json", m, "overwrite", null, false),
                "contains the input", input, data, model);
    }

    @Test
    void aSeparateOutputIsWrittenAndLeavesInputAndModelAsTheyWere() throws IOException {
        Path model = modelCopy();
        Path input = dir.resolve("in.jsonl");
        Files.write(input, Files.readAllLines(SparkTests.demoInput()).subList(0, 3));
        Map<String, String> inputBefore = snapshot(input);
        Map<String, String> modelBefore = snapshot(model);
        // a sibling whose name starts like the input's is not inside it
        Path out = dir.resolve("in.jsonl-scores");
        assertEquals(3, MoeScoreJob.score(spark, options(input.toString(), "json", out.toString(), "json",
                model.toString(), "overwrite", null, false)).rows());
        assertEquals(3, spark.read().json(out.toString()).count());
        assertEquals(inputBefore, snapshot(input));
        assertEquals(modelBefore, snapshot(model));
        assertFalse(Files.exists(dir.resolve(".in.jsonl-scores.moescore-lock")), "the lock is removed at the end");
    }

    @Test
    void moeScorerRefusesToSaveOverOrAroundItsModel() throws IOException {
        Path model = modelCopy();
        Map<String, String> before = snapshot(model);
        MoeScorer scorer = new MoeScorer().setModelPath(model.toString()).setTopK(3);
        for (Path target : List.of(model, model.resolve("scorer"), model.getParent())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> scorer.write().overwrite().save(target.toString()), target.toString());
            assertTrue(e.getMessage().startsWith("MoeScorer save path file:"), e.getMessage());
            assertTrue(e.getMessage().contains("file:" + model.toRealPath()), e.getMessage());
            assertEquals(before, snapshot(model), "the model is untouched");
        }
        Path saved = dir.resolve("saved-scorer");
        scorer.write().overwrite().save(saved.toString());
        MoeScorer loaded = MoeScorer.load(saved.toString());
        assertEquals(model.toString(), loaded.getModelPath());
        assertEquals(3, loaded.getTopK());
        assertEquals(before, snapshot(model));
    }
}
