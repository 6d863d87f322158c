package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --devices} and {@code --placement} on score-local: the demo model's experts over two and three logical CPU
 * devices (round-robin, a plan with replicas, with --device-memory streaming) write the same scores as one device,
 * and the log and the summary give each device's routed entries, which add up to the run's routed entries; a plan that does not
 * fit the model, or disagrees with --devices, exits 2 naming it before anything is written.
 */
class MultiDeviceCliTest {
    @TempDir
    Path dir;

    /** The demo model's 4 MoE layers of 8 experts: expert e on device e mod 3, experts 0 and 5 on every device. */
    static String plan(int layers) {
        List<String> list = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            list.add("{\"layer\": " + l + ", \"experts\": [[0, 1, 2], [1], [2], [0], [1], [0, 1, 2], [0], [1]]}");
        }
        return "{\"devices\": 3, \"layers\": [" + String.join(", ", list) + "]}";
    }

    @Test
    void expertsOverSeveralDevicesWriteTheSameScoresAndEachDevicesLoadIsLogged() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5, 6]}\n"
                + "{\"id\": \"b\", \"tokens\": [7, 300, 9, 4000, 12, 13, 14, 15, 16]}\n");
        Path plan = Files.writeString(dir.resolve("plan.json"), plan(4));
        Path short3 = Files.writeString(dir.resolve("short.json"), plan(3));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream stderr = System.err;
        try {
            System.setErr(new PrintStream(out, true, StandardCharsets.UTF_8));
            assertEquals(0, Moescore.run(args(in, "one.jsonl", "--top-k", "3")));
            assertEquals(0, Moescore.run(args(in, "two.jsonl", "--top-k", "3", "--devices", "2")));
            assertEquals(0, Moescore.run(args(in, "plan.jsonl", "--top-k", "3", "--placement", plan.toString())));
            assertEquals(0, Moescore.run(args(in, "streamed.jsonl", "--top-k", "3", "--placement", plan.toString(),
                    "--device-memory", "40m")));
            assertEquals(2, Moescore.run(args(in, "short.jsonl", "--placement", short3.toString())));
            assertEquals(2, Moescore.run(args(in, "disagree.jsonl", "--placement", plan.toString(), "--devices",
                    "2")));
        } finally {
            System.setErr(stderr);
        }
        String log = out.toString(StandardCharsets.UTF_8);
        System.out.println(log);
        for (String name : new String[] {"two.jsonl", "plan.jsonl", "streamed.jsonl"}) {
            assertEquals(Files.readString(dir.resolve("one.jsonl")), Files.readString(dir.resolve(name)),
                    name + ": the same scores, bit for bit");
        }
        assertTrue(log.contains("on 2 devices: CPU (1 threads), CPU (1 threads)"), log);
        assertTrue(log.contains("moescore: routed experts round-robin over 2 devices"), log);
        assertTrue(log.contains("moescore: routed experts " + plan + " over 3 devices (16 replicas in 4 MoE layers)"), log);
        assertTrue(log.contains("4 MoE layers' experts stream from host memory"), log);
        // each run's per-device entries add up to its routed entries: 15 tokens x 2 experts x 4 layers
        Matcher m = Pattern.compile("routed entries per device: ([0-9, ]+)").matcher(log);
        int runs = 0;
        while (m.find()) {
            long sum = Stream.of(m.group(1).trim().split(", ")).mapToLong(Long::parseLong).sum();
            assertEquals(15 * 2 * 4, sum, m.group());
            runs++;
        }
        assertEquals(3, runs, "one line per run over several devices: " + log);
        // the summary beside the output has them too: the last run's log line gives the same numbers
        JsonNode summary = new ObjectMapper().readTree(dir.resolve("streamed.summary.json").toFile());
        assertEquals(3, summary.get("entries_per_device").size(), summary.toString());
        m.reset();
        String last = null;
        while (m.find()) {
            last = m.group(1).trim();
        }
        assertEquals(last, String.join(", ", java.util.stream.StreamSupport.stream(
                summary.get("entries_per_device").spliterator(), false).map(JsonNode::asText).toList()));
        assertFalse(new ObjectMapper().readTree(dir.resolve("one.summary.json").toFile()).has("entries_per_device"),
                "one device: none");
        assertTrue(log.contains(short3 + " places 3 layers, but the model has 4 MoE layers: no placement for "
                + "layer 3"), log);
        assertTrue(log.contains("--devices (devices) 2 differs from the 3 devices of --placement " + plan), log);
        assertFalse(Files.exists(dir.resolve("short.jsonl")) || Files.exists(dir.resolve("disagree.jsonl")),
                "nothing written under a refused plan");
    }

    private String[] args(Path in, String output, String... more) {
        return Stream.concat(Stream.of("score-local", "--model", MoescoreCliTest.demoModel().toString(), "--input",
                in.toString(), "--output", dir.resolve(output).toString(), "--backend", "cpu", "--threads", "1"),
                Stream.of(more)).toArray(String[]::new);
    }
}
