package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --device-memory} on score-local: a bad value or a cap too small exits 2 naming the option before anything
 * is written; a cap that streams the demo model's experts writes the same scores as no cap.
 */
class DeviceMemoryCliTest {
    @TempDir
    Path dir;

    @Test
    void aCapIsParsedRefusedByNameOrStreamsWithTheSameScores() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5, 6]}\n"
                + "{\"id\": \"b\", \"tokens\": [7, 300, 9, 4000]}\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream stderr = System.err;
        try {
            System.setErr(new PrintStream(out, true, StandardCharsets.UTF_8));
            assertEquals(2, Moescore.run(args(in, "bad.jsonl", "--device-memory", "6x")));
            assertEquals(2, Moescore.run(args(in, "small.jsonl", "--device-memory", "1k")));
            assertFalse(Files.exists(dir.resolve("small.jsonl")), "nothing written under a refused cap");
            assertEquals(0, Moescore.run(args(in, "resident.jsonl")));
            // demo model on the CPU (fp32): 40 MiB holds its non-expert weights, two layers' experts and one
            // sequence of 1024 tokens, not a third layer's: all four MoE layers stream
            assertEquals(0, Moescore.run(args(in, "streamed.jsonl", "--device-memory", "40m")));
        } finally {
            System.setErr(stderr);
        }
        String log = out.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("--device-memory '6x' is not a number of bytes"), log);
        assertTrue(log.contains("--device-memory 1024 bytes is too small"), log);
        assertTrue(log.contains("4 MoE layers' experts stream from host memory"), log);
        assertTrue(log.contains("moescore: 4 expert uploads from host memory"), log);
        assertEquals(Files.readString(dir.resolve("resident.jsonl")), Files.readString(dir.resolve("streamed.jsonl")),
                "the same scores, bit for bit");
    }

    private String[] args(Path in, String output, String... more) {
        return Stream.concat(Stream.of("score-local", "--model", MoescoreCliTest.demoModel().toString(), "--input",
                in.toString(), "--output", dir.resolve(output).toString(), "--backend", "cpu", "--threads", "1"),
                Stream.of(more)).toArray(String[]::new);
    }
}
