package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
    }

    @Test
    void scoreLocalExitsWithZeroThenThreeWhenARowFails() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n");
        String[] args = {"score-local", "--model", demoModel().toString(), "--input", in.toString(),
            "--output", dir.resolve("out.jsonl").toString(), "--backend", "cpu", "--threads", "1"};
        assertEquals(0, Moescore.run(args));
        Files.writeString(in, "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n{\"id\": \"b\", \"tokens\": [-1]}\n");
        assertEquals(3, Moescore.run(args));
    }
}
