package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.moescore.score.LocalScorer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IllegalFormatException;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** score-local as a process: killed mid-run, raced by a second run, and what a usage error prints. */
class ScoreLocalCliTest {
    @TempDir
    Path dir;

    /** A child JVM running the moescore command with this test's classpath. */
    static ProcessBuilder moescore(Path log, String... args) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-cp", System.getProperty("java.class.path"), Moescore.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
    }

    /** Runs the command in this JVM, returning its exit code and what it printed on stderr. */
    static String[] runCapturingErr(String... args) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int exit = Moescore.run(args);
            return new String[] {Integer.toString(exit), err.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setErr(saved);
        }
    }

    Path rows(String name, int rows, int length, long seed) throws IOException {
        Random random = new Random(seed);
        System.out.println(name + ": seed " + seed);
        try (Writer w = Files.newBufferedWriter(dir.resolve(name))) {
            for (int r = 0; r < rows; r++) {
                StringBuilder s = new StringBuilder("{\"id\": " + r + ", \"tokens\": [");
                for (int t = 0; t < length; t++) {
                    s.append(t == 0 ? "" : ", ").append(random.nextInt(4096));
                }
                w.write(s.append("]}\n").toString());
            }
        }
        return dir.resolve(name);
    }

    static List<Path> temporaryFiles(Path folder, String output) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(p -> p.getFileName().toString().matches("\\." + output.replace(".", "\\.")
                    + "\\.[0-9a-f]{16}(\\.summary)?\\.tmp")).toList();
        }
    }

    @Test
    void killNineMidRunLeavesNoOutputAndNeitherBlocksNorLittersTheNextRun() throws Exception {
        Path slow = rows("slow.jsonl", 4000, 256, 22L);  // about 1M tokens: minutes with one CPU thread
        Path output = dir.resolve("scores.jsonl");
        Path summary = LocalScorer.summaryPath(output);
        String model = MoescoreCliTest.demoModel().toString();
        Path log = dir.resolve("child.log");
        Process child = moescore(log, "score-local", "--model", model, "--input", slow.toString(),
                "--output", output.toString(), "--backend", "cpu", "--threads", "1", "--batch-tokens", "512").start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (temporaryFiles(dir, "scores.jsonl").stream().noneMatch(ScoreLocalCliTest::hasBytes)) {
                if (!child.isAlive() || System.nanoTime() > deadline) {
                    fail("the child never started writing rows (alive " + child.isAlive() + "):\n"
                            + Files.readString(log));
                }
                Thread.sleep(50);
            }
            // rows are being written: a second run on the output is refused, naming it and the process holding it
            String[] second = runCapturingErr("score-local", "--model", model, "--input", slow.toString(),
                    "--output", dir.resolve("./scores.jsonl").toString(), "--overwrite", "--backend", "cpu");
            assertEquals("2", second[0], second[1]);
            assertTrue(second[1].contains("another score-local run is writing --output " + dir.resolve("./scores.jsonl"))
                    && second[1].contains("process " + child.pid()), second[1]);
            assertFalse(Files.exists(output), "nothing visible mid-run");
            child.destroyForcibly();
            assertTrue(child.waitFor(60, TimeUnit.SECONDS));
        } finally {
            child.destroyForcibly();
        }
        assertFalse(Files.exists(output), "killed mid-run: no output\n" + Files.readString(log));
        assertFalse(Files.exists(summary), "killed mid-run: no summary");
        assertFalse(temporaryFiles(dir, "scores.jsonl").isEmpty(), "the killed run's temporary file is left");

        // the dead run's lock does not block; its temporary file is removed once the next run holds the lock
        Path quick = rows("quick.jsonl", 5, 8, 23L);
        String[] next = runCapturingErr("score-local", "--model", model, "--input", quick.toString(),
                "--output", output.toString(), "--backend", "cpu", "--threads", "1");
        assertEquals("0", next[0], next[1]);
        assertEquals(5, Files.readAllLines(output).size());
        assertTrue(Files.exists(summary));
        assertEquals(List.of(), temporaryFiles(dir, "scores.jsonl"));
    }

    static boolean hasBytes(Path p) {
        try {
            return Files.size(p) > 0;
        } catch (IOException e) {
            return false;  // renamed or removed meanwhile
        }
    }

    @Test
    void aUsageErrorPrintsOneMessageAndHelpNoWarning() throws Exception {
        Path log = dir.resolve("usage.log");
        Process p = moescore(log, "score-local", "--no-such-option").start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue());
        assertEquals(List.of("moescore score-local: Unknown option or argument: '--no-such-option'",
                "moescore score-local: Missing required options: '--model=<model>', '--input=<input>', "
                        + "'--output=<output>'",
                "Run 'moescore score-local --help' for the options."), Files.readAllLines(log));
        p = moescore(log, "score-local", "--model", "m", "--input", "i", "--output", "o", "--no-such-option").start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue());
        assertEquals(List.of("moescore score-local: Unknown option: '--no-such-option'",
                "Run 'moescore score-local --help' for the options."), Files.readAllLines(log));

        for (String command : List.of("score-local", "score", "sparsify")) {
            Process help = moescore(log, command, "--help").start();
            assertTrue(help.waitFor(60, TimeUnit.SECONDS));
            String text = Files.readString(log);
            assertEquals(0, help.exitValue(), text);
            assertTrue(text.contains("Usage: moescore " + command), text);
            assertFalse(text.contains("WARN"), "picocli could not format a help text:\n" + text);
        }
    }

    @Test
    void badLongRowOptionsExitTwoNamingTheOption() throws IOException {
        Path input = rows("one.jsonl", 1, 4, 5L);
        String model = MoescoreCliTest.demoModel().toString();
        String[] run = runCapturingErr("score-local", "--model", model, "--input", input.toString(), "--output",
                dir.resolve("o1.jsonl").toString(), "--long-rows", "sideways");
        assertEquals("2", run[0]);
        assertTrue(run[1].contains("--long-rows 'sideways' is not one of [error, truncate, stride]"), run[1]);
        run = runCapturingErr("score-local", "--model", model, "--input", input.toString(), "--output",
                dir.resolve("o2.jsonl").toString(), "--long-rows", "stride", "--stride", "1024", "--backend", "cpu");
        assertEquals("2", run[0]);
        assertTrue(run[1].contains("--stride (stride) 1024 is not below the model's context of 1024 tokens"), run[1]);
        assertFalse(Files.exists(dir.resolve("o2.jsonl")));
    }

    @Test
    void everyHelpTextIsAValidFormatString() {
        // picocli runs help texts through String.format: a bare '%' makes it warn and print the raw text
        List<String> bad = new ArrayList<>();
        check(new CommandLine(new Moescore()), bad);
        assertEquals(List.of(), bad, "escape '%' as '%%' in these help texts");
    }

    /** The texts as written in the annotations (picocli's model hands them back already formatted). */
    private static void check(CommandLine cli, List<String> bad) {
        Class<?> type = cli.getCommandSpec().userObject().getClass();
        Command command = type.getAnnotation(Command.class);
        String name = cli.getCommandSpec().qualifiedName();
        for (String text : command.description()) {
            checkFormat(name, text, bad);
        }
        for (Class<?> c = type; c != null; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                Option option = f.getAnnotation(Option.class);
                for (String text : option == null ? new String[0] : option.description()) {
                    checkFormat(name + " " + option.names()[0], text, bad);
                }
            }
        }
        cli.getSubcommands().values().forEach(sub -> check(sub, bad));
    }

    private static void checkFormat(String where, String text, List<String> bad) {
        try {
            String.format(text);
        } catch (IllegalFormatException e) {
            bad.add(where + ": " + text);
        }
    }
}
