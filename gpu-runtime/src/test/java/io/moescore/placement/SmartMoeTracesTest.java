package io.moescore.placement;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SmartMoE's trace files: the synthetic ones in test resources (same format), bad lines reported by file, line and
 * column, the CSV form, and (where ../shared/data/smartmoe-trace is present) the three original files against the
 * same numbers in the CSV.
 */
class SmartMoeTracesTest {
    @TempDir
    Path dir;

    static Path resources() {
        try {
            return Path.of(SmartMoeTracesTest.class.getResource("/smartmoe").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** ../shared/data/smartmoe-trace beside the repository (or -Dmoescore.smartmoeTrace), or null where absent. */
    static Path sharedTraces() {
        String given = System.getProperty("moescore.smartmoeTrace");
        Path p = given != null ? Path.of(given)
                : Path.of("").toAbsolutePath().getParent().getParent().resolve("shared/data/smartmoe-trace");
        return Files.isDirectory(p) ? p : null;
    }

    /** The counts of a .log file read with a regular expression, independently of the reader: [line][mb][e]. */
    private static List<List<long[]>> naive(Path file) throws IOException {
        List<List<long[]>> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            List<long[]> mbs = new ArrayList<>();
            Matcher m = Pattern.compile("\\[([0-9., ]+)\\]").matcher(line);
            while (m.find()) {
                String[] cells = m.group(1).split(",");
                long[] counts = new long[cells.length];
                for (int i = 0; i < cells.length; i++) {
                    counts[i] = Math.round(Double.parseDouble(cells[i]));
                }
                mbs.add(counts);
            }
            out.add(mbs);
        }
        return out;
    }

    @Test
    void readsAFolderOfLogFiles() throws IOException {
        RoutingTrace trace = SmartMoeTraces.read(resources());
        assertEquals(8, trace.numExperts());
        assertArrayEquals(new int[] {0, 1, 2}, trace.layers());
        assertEquals(2 * 2 * 3 * 4, trace.records().size(), "2 iterations x 2 ranks x 3 layers x 4 micro-batches");
        for (RoutingRecord r : trace.records()) {
            Path file = resources().resolve("table_iter" + r.batch() + "_rank" + r.device() + ".log");
            assertArrayEquals(naive(file).get(r.layer()).get(r.partition()), r.tokens(), r.toString());
            assertEquals("rank " + r.device(), r.executor());
        }
        List<LoadSeries> series = trace.series();
        assertArrayEquals(new long[] {10, 20}, series.get(0).steps());
        long sum = 0;
        for (RoutingRecord r : trace.records()) {
            if (r.layer() == 1 && r.batch() == 20) {
                sum += r.tokens()[4];
            }
        }
        assertEquals(sum, series.get(1).counts()[1][4], "a step sums ranks and micro-batches");
    }

    private Path log(String text) throws IOException {
        Path f = dir.resolve("table_iter3_rank1.log");
        Files.writeString(f, text);
        return f;
    }

    private void assertBad(String text, String expected) throws IOException {
        Path f = log(text);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SmartMoeTraces.read(f));
        System.out.println("sample error: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(f + ":"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "'" + expected + "' in: " + e.getMessage());
    }

    @Test
    void badLinesNameFileLineAndColumn() throws IOException {
        String good = "0:[[1.0, 2.0], [3.0, 4.0]]\n";
        assertBad(good + "1:[[1.0, 2.0], [3.0, x]]\n", ":2, column 22: 'x' is not a number");
        assertBad(good + "1:[[1.0, 2.5]]\n", ":2, column 10: 2.5 is not a whole count");
        assertBad(good + "1:[[1.0, -2.0]]\n", ":2, column 10: -2.0 is not a whole count");
        assertBad(good + "1 [[1.0]]\n", ":2: expected LAYER:[[counts], ...], found no ':'");
        assertBad(good + "1:[[1.0, 2.0], [3.0, 4.0]\n", ":2, column 26: expected ']' before the end of the line");
        assertBad(good + "1:[[1.0, 2.0]] extra\n", ":2, column 16: unexpected text");
        assertBad(good + "1:[[1.0, 2.0, 3.0]]\n", ":2: micro-batch 0 has 3 experts, earlier lists 2");
        assertBad(good + "x:[[1.0, 2.0]]\n", ":2, the layer: 'x' is not a number");
    }

    @Test
    void aFileNamedOtherwiseIsRefusedByName() throws IOException {
        Path f = dir.resolve("trace.log");
        Files.writeString(f, "0:[[1.0]]\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SmartMoeTraces.read(f));
        assertTrue(e.getMessage().contains("table_iter{I}_rank{R}.log"), e.getMessage());
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> SmartMoeTraces.read(dir));
        assertTrue(empty.getMessage().contains("holds no SmartMoE trace files"), empty.getMessage());
    }

    @Test
    void csvGzippedAndPlain() throws IOException {
        String csv = "iteration,rank,layer,microbatch,e0,e1,e2\n1,0,0,0,5,0,3\n1,0,0,1,2,2,2\n51,3,1,0,0,9,1\n";
        Path gz = dir.resolve("t.csv.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gz))) {
            out.write(csv.getBytes(StandardCharsets.UTF_8));
        }
        RoutingTrace trace = SmartMoeTraces.read(gz);
        assertEquals(List.of(new RoutingRecord("rank 0", 0, 0, 1, 0, new long[] {5, 0, 3}),
                new RoutingRecord("rank 0", 0, 1, 1, 0, new long[] {2, 2, 2}),
                new RoutingRecord("rank 3", 3, 0, 51, 1, new long[] {0, 9, 1})), trace.records());
        Path plain = dir.resolve("t.csv");
        Files.writeString(plain, csv + "51,3,1,1,0,9\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SmartMoeTraces.read(plain));
        assertTrue(e.getMessage().equals(plain + ":5: 6 fields, the header has 7"), e.getMessage());
        Files.writeString(plain, "layer,e0\n");
        e = assertThrows(IllegalArgumentException.class, () -> SmartMoeTraces.read(plain));
        assertTrue(e.getMessage().startsWith(plain + ":1: expected the header"), e.getMessage());
    }

    @Test
    void theOriginalFilesHoldWhatTheCsvHolds() {
        Path shared = sharedTraces();
        Assumptions.assumeTrue(shared != null, "../shared/data/smartmoe-trace is absent (a clean clone, CI): the "
                + "comparison with SmartMoE's original files is skipped");
        RoutingTrace logs = SmartMoeTraces.read(shared.resolve("original"));
        RoutingTrace csv = SmartMoeTraces.read(shared.resolve("ranks0-7.csv.gz"));
        assertEquals(3 * 24 * 4, logs.records().size(), "3 files x 24 layers x 4 micro-batches");
        assertEquals(77_568, csv.records().size(), "the README's row count");
        Map<String, RoutingRecord> byKey = new HashMap<>();
        csv.records().forEach(r -> byKey.put(r.batch() + "/" + r.device() + "/" + r.layer() + "/" + r.partition(), r));
        for (RoutingRecord r : logs.records()) {
            RoutingRecord same = byKey.get(r.batch() + "/" + r.device() + "/" + r.layer() + "/" + r.partition());
            assertEquals(r, same, "iteration " + r.batch() + " rank " + r.device() + " layer " + r.layer());
            assertEquals(4096, r.total(), "2048 tokens x top-2 per micro-batch");
        }
    }
}
