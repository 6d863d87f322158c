package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where score-local writes: never over its input or into the model directory, an existing output only with
 * overwrite, one run per output at a time, the output and its summary visible only as a finished pair.
 */
class LocalOutputTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path dir;

    record Run(int exit, String log) {
    }

    static Run run(Path model, Path input, Path output, boolean overwrite) {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int exit = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(new LocalScoreOptions(
                model, input, output, overwrite, ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu")
                        .with(ScoreSettings.CPU_THREADS, 1)));
        return new Run(exit, log.toString(StandardCharsets.UTF_8));
    }

    Path input(String name, int rows) throws IOException {
        StringBuilder s = new StringBuilder();
        for (int r = 0; r < rows; r++) {
            s.append("{\"id\": ").append(r).append(", \"tokens\": [").append(r % 50 + 1).append(", 2, 3, 4]}\n");
        }
        return Files.writeString(dir.resolve(name), s.toString());
    }

    /** Every file under {@code root} with its bytes. */
    static Map<String, byte[]> contents(Path root) throws IOException {
        Map<String, byte[]> files = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.filter(Files::isRegularFile).toList()) {
                files.put(root.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return files;
    }

    static void assertSameContents(Map<String, byte[]> before, Map<String, byte[]> after) {
        assertEquals(before.keySet(), after.keySet(), "no file added or removed");
        before.forEach((name, bytes) -> assertArrayEquals(bytes, after.get(name), name + " unchanged"));
    }

    @Test
    void theInputIsNeverTheOutputInAnySpelling() throws IOException {
        Path input = input("in.jsonl", 3);
        Files.createDirectories(dir.resolve("sub"));
        Path symlink = Files.createSymbolicLink(dir.resolve("link.jsonl"), input);
        Path hardLink = Files.createLink(dir.resolve("hard.jsonl"), input);
        Path linkedDir = Files.createSymbolicLink(dir.resolve("linked-dir"), dir);
        List<Path> spellings = List.of(input, dir.resolve("./in.jsonl"), dir.resolve("sub/../in.jsonl"), symlink,
                hardLink, linkedDir.resolve("in.jsonl"), Path.of("").toAbsolutePath().relativize(input));
        Map<String, byte[]> before = contents(dir);
        for (Path output : spellings) {
            for (boolean overwrite : new boolean[] {false, true}) {
                Run r = run(TestModels.demoModel(), input, output, overwrite);
                assertEquals(LocalScorer.EXIT_BAD_INVOCATION, r.exit(), output + ": " + r.log());
                assertTrue(r.log().contains("--output " + output) && r.log().contains("input file " + input),
                        "names both paths: " + r.log());
                assertSameContents(before, contents(dir));
            }
        }
        // the summary beside the output would replace the input
        Path summaryInput = input("scores.summary.json", 2);
        before = contents(dir);
        Run r = run(TestModels.demoModel(), summaryInput, dir.resolve("scores.jsonl"), true);
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, r.exit(), r.log());
        assertTrue(r.log().contains("scores.summary.json") && r.log().contains("is the input file"), r.log());
        assertSameContents(before, contents(dir));
    }

    @Test
    void nothingIsWrittenInsideTheModelDirectory() throws IOException {
        Path model = Files.createDirectories(dir.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{\"model_type\": \"mixtral\"}");
        Files.createDirectories(model.resolve("sub"));
        Path input = input("in.jsonl", 2);
        Path modelLink = Files.createSymbolicLink(dir.resolve("model-link"), model);
        Path outLink = Files.createSymbolicLink(dir.resolve("out-link.jsonl"), model.resolve("config.json"));
        List<Path> outputs = List.of(model.resolve("config.json"), model.resolve("new.jsonl"), model,
                model.resolve("sub/../config.json"), model.resolve("sub/deeper/new.jsonl"),
                modelLink.resolve("config.json"), outLink);
        Map<String, byte[]> before = contents(model);
        for (Path output : outputs) {
            Run r = run(model, input, output, true);
            assertEquals(LocalScorer.EXIT_BAD_INVOCATION, r.exit(), output + ": " + r.log());
            assertTrue(r.log().contains("--output " + output) && r.log().contains("model directory " + model),
                    "names both paths: " + r.log());
            assertSameContents(before, contents(model));
            assertFalse(Files.exists(model.resolve("sub/deeper")), "no folder made either");
        }
        // the same model directory through a link: its real path is compared
        Run r = run(modelLink, input, model.resolve("new.jsonl"), true);
        assertTrue(r.log().contains("model directory " + modelLink + " (" + model.toRealPath() + ")"), r.log());
        assertSameContents(before, contents(model));
    }

    @Test
    void anExistingOutputIsReplacedOnlyWithOverwriteAndTheSummaryAlwaysMatches() throws IOException {
        Path first = input("first.jsonl", 3);
        Path second = input("second.jsonl", 5);
        Path output = dir.resolve("out/scores.jsonl");
        Path summary = LocalScorer.summaryPath(output);
        // a summary left by some earlier run, without its output: replaced, never kept beside a new output
        Files.createDirectories(output.getParent());
        Files.writeString(summary, "{\"rows\": 999}");
        assertEquals(LocalScorer.EXIT_OK, run(TestModels.demoModel(), first, output, false).exit());
        assertEquals(3, Files.readAllLines(output).size());
        assertEquals(3, JSON.readTree(summary.toFile()).get("rows").asInt());
        byte[] firstBytes = Files.readAllBytes(output);
        byte[] firstSummary = Files.readAllBytes(summary);

        Run refused = run(TestModels.demoModel(), second, output, false);
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, refused.exit());
        assertTrue(refused.log().contains("--output " + output + " exists: pass --overwrite"), refused.log());
        assertArrayEquals(firstBytes, Files.readAllBytes(output));
        assertArrayEquals(firstSummary, Files.readAllBytes(summary));

        // a run that fails after the checks (unusable model) leaves the earlier pair as it was
        Run failed = run(dir.resolve("no-such-model"), second, output, true);
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, failed.exit(), failed.log());
        assertArrayEquals(firstBytes, Files.readAllBytes(output));
        assertArrayEquals(firstSummary, Files.readAllBytes(summary));

        assertEquals(LocalScorer.EXIT_OK, run(TestModels.demoModel(), second, output, true).exit());
        assertEquals(5, Files.readAllLines(output).size());
        assertEquals(5, JSON.readTree(summary.toFile()).get("rows").asInt());
        assertEquals(List.of(".scores.jsonl.lock", "scores.jsonl", "scores.summary.json"), list(output.getParent()),
                "no temporary file left; the lock file stays");
    }

    @Test
    void anOutputThatIsNotARegularFileIsRefusedEvenWithOverwrite() throws IOException {
        Path input = input("in.jsonl", 2);
        Path socket = dir.resolve("socket.jsonl");  // stands for /dev/stdout, a FIFO or a device
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Run r = run(TestModels.demoModel(), input, socket, true);
            assertEquals(LocalScorer.EXIT_BAD_INVOCATION, r.exit(), r.log());
            assertTrue(r.log().contains("--output " + socket + " is not a regular file"), r.log());
            assertTrue(Files.exists(socket) && !Files.isRegularFile(socket), "left as it was");
        }
    }

    @Test
    void aSecondWriterOfOneOutputIsRefusedWhileTheFirstHoldsIt() throws IOException {
        Path input = input("in.jsonl", 2);
        Path output = dir.resolve("scores.jsonl");
        Path summary = LocalScorer.summaryPath(output);
        try (AtomicOutput first = AtomicOutput.open(output, summary, input, TestModels.demoModel(), false)) {
            // another spelling of the same path, and with --overwrite: still one writer
            AtomicOutput.Refused e = assertThrows(AtomicOutput.Refused.class, () -> AtomicOutput.open(
                    dir.resolve("./scores.jsonl"), summary, input, TestModels.demoModel(), true));
            assertTrue(e.getMessage().contains("another score-local run is writing --output " + dir.resolve("./scores.jsonl")),
                    e.getMessage());
            first.rows().write("{\"id\": 1}\n".getBytes(StandardCharsets.UTF_8));
            assertFalse(Files.exists(output), "nothing visible before the commit");
            first.commit("{}".getBytes(StandardCharsets.UTF_8));
        }
        assertEquals("{\"id\": 1}\n", Files.readString(output));
        // released: a later run may replace it
        try (AtomicOutput again = AtomicOutput.open(output, summary, input, TestModels.demoModel(), true)) {
            assertTrue(Files.exists(output));
        }
        assertEquals("{\"id\": 1}\n", Files.readString(output), "not committed: the output is left as it was");
    }

    @Test
    void twoRunsStartedTogetherOnOneOutputOneWinsTheOtherExitsTwo() throws Exception {
        Path input = input("in.jsonl", 200);
        for (int attempt = 0; attempt < 3; attempt++) {
            Path output = dir.resolve("race-" + attempt + ".jsonl");
            CountDownLatch start = new CountDownLatch(1);
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                List<Future<Run>> runs = new ArrayList<>();
                for (int t = 0; t < 2; t++) {
                    runs.add(pool.submit(() -> {
                        start.await();
                        return run(TestModels.demoModel(), input, output, false);
                    }));
                }
                start.countDown();
                Run a = runs.get(0).get();
                Run b = runs.get(1).get();
                assertEquals(LocalScorer.EXIT_OK + LocalScorer.EXIT_BAD_INVOCATION, a.exit() + b.exit(),
                        "one wins, one exits 2: " + a + " / " + b);
                Run loser = a.exit() == LocalScorer.EXIT_OK ? b : a;
                assertTrue(loser.log().contains("--output " + output), "names the path: " + loser.log());
            } finally {
                pool.shutdown();
            }
            List<String> lines = Files.readAllLines(output);
            assertEquals(200, lines.size());
            for (int i = 0; i < lines.size(); i++) {
                JsonNode row = JSON.readTree(lines.get(i));
                assertEquals(i, row.get("id").asInt(), "every line whole and in order");
                assertTrue(row.get("error").isNull());
            }
        }
    }

    static List<String> list(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
