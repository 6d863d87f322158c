package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.batch.TokenRouting;
import io.moescore.placement.PlacementPlan;
import io.moescore.spark.trace.TokenTrace;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code moescore placement} and {@code moescore traces} on a small SmartMoE-format trace: the plan written and
 * its summary printed, the report written, and bad options refused with exit 2 naming the option.
 */
class PlacementCommandTest {
    @TempDir
    Path dir;
    Path trace;

    /** Two iterations of one rank, 2 layers, 4 experts: layer 0 has one hot expert, layer 1 is even. */
    @BeforeEach
    void trace() throws IOException {
        trace = dir.resolve("trace");
        Files.createDirectories(trace);
        Files.writeString(trace.resolve("table_iter1_rank0.log"), "0:[[60.0, 20.0, 10.0, 10.0]]\n"
                + "1:[[25.0, 25.0, 25.0, 25.0]]\n");
        Files.writeString(trace.resolve("table_iter2_rank0.log"), "0:[[58.0, 22.0, 10.0, 10.0]]\n"
                + "1:[[24.0, 26.0, 25.0, 25.0]]\n");
    }

    /** Runs the command in this JVM: exit code, stdout, stderr. */
    static String[] run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        try {
            int exit = Moescore.run(args);
            return new String[] {Integer.toString(exit), o.toString(StandardCharsets.UTF_8),
                e.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    @Test
    void writesThePlanAndPrintsEachLayer() {
        Path plan = dir.resolve("plan.json");
        String[] r = run("placement", "--trace", trace.toString(), "--devices", "2", "--out", plan.toString());
        assertEquals("0", r[0], r[2]);
        System.out.println(r[1]);
        // layer 0 over both iterations: 118, 42, 20, 20 on 2 devices x 2 slots: 118 + 20 | 42 + 20, mean 100
        assertTrue(r[1].contains("0\t2\t1.380\t1.380 (exact)\t1.380"), r[1]);
        assertTrue(r[1].contains("1\t2\t1.000\t1.000 (exact)\t1.010"), "round-robin 49 + 50 | 51 + 50: " + r[1]);
        PlacementPlan p = PlacementPlan.read(plan);
        assertEquals(2, p.limits().devices());
        assertEquals(2, p.layers().size());
        assertEquals(1.38, p.layers().get(0).maxOverMean(), 1e-9);

        String[] replicated = run("placement", "--trace", trace.toString(), "--devices", "2", "--replicas", "1",
                "--algorithm", "eplb", "--window", "1", "--out", plan.toString());
        assertEquals("0", replicated[0], replicated[2]);
        // the last iteration: 58, 22, 10, 10; expert 0 on both devices: 29 + 22 | 29 + 10 + 10, mean 50
        assertTrue(replicated[1].contains("0\t1\t1.020\t1.000\t"), replicated[1]);
        assertEquals(2, PlacementPlan.read(plan).layers().get(0).placement().copies(0));
    }

    private void assertBad(String expected, String... args) {
        String[] r = run(args);
        assertEquals("2", r[0], "exit code of " + String.join(" ", args) + ": " + r[2]);
        assertTrue(r[2].contains(expected), "'" + expected + "' in: " + r[2]);
    }

    @Test
    void badOptionsExitWithTwoNamingTheOption() {
        String out = dir.resolve("p.json").toString();
        String t = trace.toString();
        assertBad("--devices must be at least 1, got 0", "placement", "--trace", t, "--devices", "0", "--out", out);
        assertBad("--algorithm 'best' is not one of [greedy, eplb, round-robin]", "placement", "--trace", t,
                "--devices", "2", "--algorithm", "best", "--out", out);
        assertBad("--devices 2, --slots 1, --replicas 0: 2 devices x 1 slots hold fewer than the 4 experts",
                "placement", "--trace", t, "--devices", "2", "--slots", "1", "--out", out);
        assertBad("--replicas must be at least 0, got -1", "placement", "--trace", t, "--devices", "2",
                "--replicas", "-1", "--out", out);
        assertBad("--trace: " + dir.resolve("none") + " does not exist", "placement", "--trace",
                dir.resolve("none").toString(), "--devices", "2", "--out", out);
        assertBad("Missing required option: '--devices=N'", "placement", "--trace", t, "--out", out);
        assertBad("'--devices': 'two' is not an int", "placement", "--trace", t, "--devices", "two", "--out", out);
        assertTrue(!Files.exists(Path.of(out)), "nothing written");
        assertBad("--window must be at least 1, got 0", "traces", t, "--window", "0");
        assertBad("Missing required parameter: 'PATH'", "traces");
    }

    @Test
    void tracesPrintsStatisticsAndWritesTheReport() throws IOException {
        Path report = dir.resolve("r.html");
        String[] r = run("traces", trace.toString(), "--report", report.toString());
        assertEquals("0", r[0], r[2]);
        // layer 0: 118, 42, 20, 20 (mean 50): max/mean 2.36; layer 1: 49, 51, 50, 50, per iteration 1.00 then 1.04
        // (26 / 25), drift 0.5 * (0.01 + 0.01)
        assertTrue(r[1].contains("\n0\t200\t2.360\t"), r[1]);
        assertTrue(r[1].contains("\n1\t200\t1.020\t"), r[1]);
        assertTrue(r[1].contains("\t1.020\t1.040\t0.010\t0.010\n"), r[1]);
        String html = Files.readString(report);
        assertTrue(html.startsWith("<!DOCTYPE html>") && html.contains("<svg") && !html.contains("<script"), html);
        assertTrue(!r[1].contains("token routing"), "no tokens/ folder: " + r[1]);
    }

    @Test
    void tracesSaysAFolderHoldsTokenRouting() throws IOException {
        Path tokens = trace.resolve(TokenTrace.FOLDER);
        Files.createDirectories(tokens);
        org.apache.hadoop.fs.FileSystem fs = org.apache.hadoop.fs.FileSystem.getLocal(
                new org.apache.hadoop.conf.Configuration());
        TokenTrace file = TokenTrace.open(fs, new org.apache.hadoop.fs.Path(tokens.resolve("part-00000-s0.parquet")
                .toUri()));
        for (int row = 0; row < 3; row++) {
            file.write(0, 0, row, 1, new TokenRouting.Choices(new int[] {0, 2}, new int[] {1, 3},
                    new float[] {.7f, .3f}));
        }
        file.close();
        String[] r = run("traces", trace.toString(), "--report", dir.resolve("r.html").toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains(trace + ": token routing: 3 records"), r[1]);
    }
}
