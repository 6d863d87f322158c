package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line's exit codes, as scripts rely on them. */
class MoescoreCliTest {
    @TempDir
    Path dir;

    static Path demoModel() {
        Path p = Path.of("").toAbsolutePath();
        while (!Files.exists(p.resolve("demo/tiny-moe-code"))) {
            p = p.getParent();
        }
        return p.resolve("demo/tiny-moe-code");
    }

    @Test
    void unknownOptionExitsWithTwo() {
        assertEquals(2, Moescore.run("score-local", "--no-such-option"));
        assertEquals(2, Moescore.run("score-local", "--model", "m", "--input", "i", "--output", "o", "--batch-tokens", "0"));
        assertEquals(2, Moescore.run("sparsify-job", "--no-such-option"));
        assertEquals(0, Moescore.run("sparsify-job", "--help"), "the Spark sparsify job is a subcommand");
    }

    @Test
    void scoreLocalTakesEveryScoringSettingAndNamesABadValue() throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        java.io.PrintStream stderr = System.err;
        try {
            System.setOut(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(0, Moescore.run("score-local", "--help"));
            System.setErr(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
            Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n");
            String[] base = {"score-local", "--model", demoModel().toString(), "--input", in.toString(), "--output",
                dir.resolve("out.jsonl").toString()};
            for (String[] bad : new String[][] {{"--threads", "100000"}, {"--batch-tokens", "0"},
                {"--precision", "fp8"}, {"--top-k", "-1"}}) {
                String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base),
                        java.util.Arrays.stream(bad)).toArray(String[]::new);
                assertEquals(2, Moescore.run(args), String.join(" ", bad));
            }
            assertEquals(0, Moescore.run(java.util.stream.Stream.concat(java.util.Arrays.stream(base),
                    java.util.stream.Stream.of("--precision", "fp16", "--threads", "0", "--backend", "cpu"))
                    .toArray(String[]::new)), "fp16 and --threads 0 (all cores) are accepted");
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
        String log = out.toString(java.nio.charset.StandardCharsets.UTF_8);
        for (io.moescore.score.Setting<?> s : io.moescore.score.ScoreSettings.ALL) {
            assertTrue(log.contains(s.flag()), s.flag() + " in score-local's help:\n" + log);
        }
        assertTrue(log.contains("default 8192"), log);
        assertTrue(log.contains("moescore score-local: --threads must be between 0 and 4096, got 100000"), log);
        assertTrue(log.contains("moescore score-local: --batch-tokens must be at least 1, got 0"), log);
        assertTrue(log.contains("moescore score-local: --precision 'fp8' is not one of [bf16, fp16, split-bf16]"), log);
        assertFalse(log.contains("moescore: null"), log);
        com.fasterxml.jackson.databind.JsonNode summary = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(dir.resolve("out.summary.json").toFile());
        assertEquals("fp16", summary.get("settings").get("precision").asText(), summary.toString());
    }

    @Test
    void routingIsOneSpecCheckedBeforeAnythingIsWritten() throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stderr = System.err;
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5]}\n");
        Path output = dir.resolve("out.jsonl");
        java.util.function.Function<String[], String[]> args = more -> java.util.stream.Stream.concat(
                java.util.stream.Stream.of("score-local", "--model", demoModel().toString(), "--input", in.toString(),
                        "--output", output.toString(), "--backend", "cpu", "--threads", "1"),
                java.util.Arrays.stream(more)).toArray(String[]::new);
        try {
            System.setErr(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(2, Moescore.run(args.apply(new String[] {"--routing", "top-k:x"})));
            assertEquals(2, Moescore.run(args.apply(new String[] {"--routing", "batch-top-k:2", "--deterministic"})));
            assertFalse(Files.exists(output));
            assertEquals(2, Moescore.run(args.apply(new String[] {"--routing", "top-k:9"})), "more than 8 experts");
            assertFalse(Files.exists(output));
            assertEquals(0, Moescore.run(args.apply(new String[] {"--routing", "batch-top-k:2:4", "--deterministic"})));
        } finally {
            System.setErr(stderr);
        }
        String log = out.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(log.contains("--routing 'top-k:x': K must be a whole number of at least 1, got 'x'"), log);
        assertTrue(log.contains("--deterministic (deterministic) refuses --routing batch-top-k:2 (routing)"), log);
        assertTrue(log.contains("--routing top-k:9: 9 is more than the model's 8 experts"), log);
        com.fasterxml.jackson.databind.JsonNode summary = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(dir.resolve("out.summary.json").toFile());
        assertEquals("batch-top-k:2:4", summary.get("settings").get("routing").asText(), summary.toString());
        assertFalse(summary.has("batch_dependent_scores"), summary.toString());
    }

    @Test
    void sparsifyWritesATwoFourCheckpointThatScores() throws Exception {
        Path out = dir.resolve("sparse");
        assertEquals(0, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "magnitude"));
        assertEquals(true, Files.exists(out.resolve("sparsity.json")));
        try (io.moescore.model.Checkpoint c = io.moescore.model.Checkpoint.open(out)) {
            String name = "model.layers.0.block_sparse_moe.experts.0.w1.weight";
            io.moescore.sparse.Sparse24.Packed p = new io.moescore.sparse.Sparse24.Packed(384, 192,
                    c.get(name + ".sp24_values").toFloats(), c.get(name + ".sp24_meta").toInts());
            float[] dense = io.moescore.sparse.Sparse24.decompress(p);
            for (int g = 0; g < dense.length; g += 4) {
                int zeros = 0;
                for (int j = 0; j < 4; j++) {
                    zeros += dense[g + j] == 0f ? 1 : 0;
                }
                assertEquals(true, zeros >= 2, "group " + g / 4 + " keeps at most 2 of 4");
            }
        }
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5]}\n");
        assertEquals(0, Moescore.run("score-local", "--model", out.toString(), "--input", in.toString(),
                "--output", dir.resolve("o.jsonl").toString(), "--backend", "cpu", "--threads", "1"));
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "wanda"), "wanda without calibration data is a usage error");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "sparsegpt"), "sparsegpt without calibration data is a usage error");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "magnitude", "--sequential"), "--sequential is for sparsegpt only");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "magnitude", "--reconstruct-steps", "3"), "--reconstruct-steps is for sparsegpt only");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "magnitude", "--reconstruct-steps", "-1"), "a negative step count is a usage error");
        Path badCalibration = dir.resolve("bad-calibration.jsonl");
        Files.writeString(badCalibration, "{\"tokens\": [1, 2]}\n{\"id\": \"no tokens\"}\n");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--method", "wanda", "--calibration", badCalibration.toString()),
                "a calibration row without tokens is a usage error");
    }

    @Test
    void sparsifyWritesAVectorSparseCheckpointThatScores() throws Exception {
        Path out = dir.resolve("vector-sparse");
        assertEquals(0, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--pattern", "128:2:8", "--method", "magnitude"));
        try (io.moescore.model.Checkpoint c = io.moescore.model.Checkpoint.open(out)) {
            String name = "model.layers.0.block_sparse_moe.experts.0.w1.weight";
            io.moescore.sparse.VectorSparse.Packed p = new io.moescore.sparse.VectorSparse.Packed(384, 192,
                    c.get(name + ".vs128_keep").toBytes(), new io.moescore.sparse.Sparse24.Packed(192, 192,
                    c.get(name + ".sp24_values").toFloats(), c.get(name + ".sp24_meta").toInts()));
            long nonZeros = 0;
            for (float v : io.moescore.sparse.VectorSparse.decompress(p)) {
                nonZeros += v != 0f ? 1 : 0;
            }
            assertEquals(384 * 192 / 4, nonZeros, "2 of every 8 kept");
        }
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5]}\n");
        assertEquals(0, Moescore.run("score-local", "--model", out.toString(), "--input", in.toString(),
                "--output", dir.resolve("o.jsonl").toString(), "--backend", "cpu", "--threads", "1"));
        Path calibration = dir.resolve("calibration.jsonl");
        Files.writeString(calibration, "{\"tokens\": [1, 2, 3, 4, 5]}\n");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--pattern", "128:2:8", "--method", "wanda", "--sequential", "--calibration", calibration.toString()),
                "--sequential is sparsegpt's");
        assertEquals(2, Moescore.run("sparsify", "--model", demoModel().toString(), "--out", out.toString(),
                "--pattern", "4:8"), "an unknown pattern is a usage error");
    }

    @Test
    void scoreLocalExitsWithZeroThenThreeWhenARowFails() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n");
        String[] args = {"score-local", "--model", demoModel().toString(), "--input", in.toString(),
            "--output", dir.resolve("out.jsonl").toString(), "--backend", "cpu", "--threads", "1"};
        assertEquals(0, Moescore.run(args));
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n{\"id\": \"b\", \"tokens\": [-1]}\n");
        assertEquals(2, Moescore.run(args), "the output exists: refused without --overwrite");
        String[] overwrite = java.util.Arrays.copyOf(args, args.length + 1);
        overwrite[args.length] = "--overwrite";
        assertEquals(3, Moescore.run(overwrite));
    }

    @Test
    void nonFiniteWeightsExitWithTwoUnlessAllowed() throws Exception {
        Path model = io.moescore.job.BrokenModels.withEdit(dir.resolve("nan"), "lm_head.weight",
                (values, shape) -> values[7] = Float.NaN);
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n");
        String[] args = {"score-local", "--model", model.toString(), "--input", in.toString(), "--output",
            dir.resolve("o.jsonl").toString(), "--backend", "cpu", "--threads", "1"};
        assertEquals(2, Moescore.run(args), "NaN weights refused");
        String[] allowed = java.util.Arrays.copyOf(args, args.length + 1);
        allowed[args.length] = "--allow-nonfinite";
        assertEquals(3, Moescore.run(allowed), "loaded anyway: the row is flagged");
        String line = Files.readString(dir.resolve("o.jsonl"));
        assertEquals(true, line.contains("non-finite score") && line.contains("\"sum_logprob\":null"), line);
    }
}
