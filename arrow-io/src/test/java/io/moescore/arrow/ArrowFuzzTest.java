package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.moescore.batch.TokenBatch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.FieldVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutated pyarrow IPC fixtures (file and stream; fixed seed, {@code -Dmoescore.fuzz.cases=N} for more than the
 * default 2000 per format) read through {@link ArrowTokenReader}: every batch loaded, every id and token touched
 * through the {@link TokenBatch} view. Each case runs with its own {@link RootAllocator} and must end within 5 s in
 * a clean read or an exception with a message; an Error or a hang fails the test. An allocator that still holds
 * memory when closed (it throws on close) is recorded as an outcome, not a failure. The tally goes to stdout and
 * {@code target/fuzz-arrow-file.json} / {@code target/fuzz-arrow-stream.json}.
 */
class ArrowFuzzTest {
    static final long SEED = 0xA77011L;
    static final int CASES = Integer.getInteger("moescore.fuzz.cases", 2000);
    /** A case that takes longer hangs (a clean case takes milliseconds; 20 s leaves room for a loaded machine). */
    static final long CASE_TIMEOUT_S = 20;
    static final long[] HUGE_LONG = {1L << 31, 1L << 32, 1L << 40, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, -1L,
        Integer.MAX_VALUE, -8L};
    static final int[] HUGE_INT = {Integer.MAX_VALUE, Integer.MIN_VALUE, -1, 1 << 30, 0x7ffffff8, 65536, 0, -8};
    /** Outcome recorded when the per-case allocator throws on close (memory left allocated). */
    static final String LEAK = "allocator-leak-on-close";

    @TempDir
    Path dir;

    @Test
    void mutatedIpcFiles() throws Exception {
        fuzz("arrow-file", "tokens_int64_ids.arrow", IpcFormat.FILE, SEED);
    }

    @Test
    void mutatedIpcStreams() throws Exception {
        fuzz("arrow-stream", "tokens_utf8_ids.arrows", IpcFormat.STREAM, SEED + 1);
    }

    /** Reads the whole file: returns the tokens seen. Throws on the first problem. */
    static long readAll(Path file) throws IOException {
        long tokens = 0;
        try (ArrowTokenReader in = ArrowTokenReader.open(file, ALLOCATOR.get())) {
            while (in.loadNextBatch()) {
                TokenBatch batch = in.tokenBatch();
                FieldVector ids = in.ids();
                for (int s = 0; s < batch.numSequences(); s++) {
                    ids.getObject(s);
                    int n = batch.length(s);
                    for (int p = 0; p < n; p++) {
                        tokens += batch.token(s, p) == Integer.MIN_VALUE ? 2 : 1;
                    }
                }
            }
        }
        return tokens;
    }

    static final ThreadLocal<RootAllocator> ALLOCATOR = new ThreadLocal<>();

    /** One case on the worker thread: its own allocator, closed at the end; returns the outcome's name. */
    static String runCase(Path file) throws Exception {
        RootAllocator allocator = new RootAllocator();
        ALLOCATOR.set(allocator);
        Exception failure = null;
        try {
            readAll(file);
        } catch (Exception e) {
            failure = e;
        } finally {
            ALLOCATOR.remove();
        }
        boolean leaked = false;
        try {
            allocator.close();
        } catch (IllegalStateException e) {
            leaked = true;
        }
        if (failure != null) {
            // the leak is reported as its own outcome; the read's exception still has to carry a message
            if (failure.getMessage() == null || failure.getMessage().isBlank()) {
                throw failure;
            }
            return (leaked ? LEAK + " after " : "") + failure.getClass().getName();
        }
        return leaked ? LEAK + " after clean read" : "clean";
    }

    void fuzz(String format, String fixture, IpcFormat expected, long seed) throws Exception {
        Path source = PyarrowFixturesTest.fixture(fixture);
        byte[] valid = Files.readAllBytes(source);
        try (RootAllocator a = new RootAllocator(); ArrowTokenReader in = ArrowTokenReader.open(source, a)) {
            assertEquals(expected, in.format());
        }
        Path unmutated = dir.resolve("valid");
        Files.write(unmutated, valid);
        assertEquals("clean", runCase(unmutated));

        Random rnd = new Random(seed);
        Map<String, Integer> outcomes = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int clean = 0;
        int leaks = 0;
        long start = System.nanoTime();
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, format + "-fuzz");
            t.setDaemon(true);
            return t;
        });
        try {
            for (int c = 0; c < CASES; c++) {
                StringBuilder what = new StringBuilder();
                byte[] mutated = mutate(valid, rnd, what, expected);
                Path file = dir.resolve("case" + (c % 8) + (expected == IpcFormat.FILE ? ".arrow" : ".arrows"));
                Files.write(file, mutated);
                Future<String> f = pool.submit(() -> runCase(file));
                try {
                    String outcome = f.get(CASE_TIMEOUT_S, TimeUnit.SECONDS);
                    if (outcome.equals("clean")) {
                        clean++;
                    } else {
                        outcomes.merge(outcome, 1, Integer::sum);
                    }
                    if (outcome.startsWith(LEAK)) {
                        leaks++;
                    }
                } catch (TimeoutException e) {
                    f.cancel(true);
                    fail("case " + c + " (" + what + ") did not finish in " + CASE_TIMEOUT_S + " s");
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    outcomes.merge("FAILURE " + cause.getClass().getName(), 1, Integer::sum);
                    failures.add("case " + c + " (" + what + "): " + cause
                            + (cause instanceof Error ? "" : " (no message)"));
                }
            }
        } finally {
            pool.shutdownNow();
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        report(format, CASES, clean, leaks, outcomes, failures.size(), ms);
        assertTrue(failures.isEmpty(), failures.size() + " failing cases, first: "
                + failures.subList(0, Math.min(10, failures.size())));
    }

    /** One to three mutations; {@code what} describes them. */
    static byte[] mutate(byte[] valid, Random rnd, StringBuilder what, IpcFormat format) {
        byte[] b = valid.clone();
        int rounds = 1 + rnd.nextInt(3);
        for (int r = 0; r < rounds; r++) {
            if (b.length < 16) {
                break;
            }
            switch (rnd.nextInt(9)) {
                case 0 -> { // bit flips
                    int flips = 1 + rnd.nextInt(4);
                    for (int i = 0; i < flips; i++) {
                        int pos = rnd.nextInt(b.length);
                        b[pos] ^= (byte) (1 << rnd.nextInt(8));
                        what.append("flip@").append(pos).append(' ');
                    }
                }
                case 1 -> { // byte overwrites
                    int n = 1 + rnd.nextInt(4);
                    for (int i = 0; i < n; i++) {
                        int pos = rnd.nextInt(b.length);
                        byte[] special = {0, (byte) 0xff, 0x7f, (byte) 0x80, 1, 8, 16};
                        b[pos] = rnd.nextBoolean() ? (byte) rnd.nextInt(256) : special[rnd.nextInt(special.length)];
                        what.append("set@").append(pos).append(' ');
                    }
                }
                case 2 -> { // truncation
                    int len = rnd.nextInt(b.length);
                    b = Arrays.copyOf(b, len);
                    what.append("truncate@").append(len).append(' ');
                }
                case 3 -> { // an 8-byte little-endian field (buffer offset/length, body length) made huge
                    int pos = 8 * rnd.nextInt((b.length - 8) / 8 + 1);
                    pos = Math.min(pos, b.length - 8);
                    long v = rnd.nextInt(4) == 0 ? (long) b.length + rnd.nextInt(256) : HUGE_LONG[rnd.nextInt(HUGE_LONG.length)];
                    ByteBuffer.wrap(b, pos, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
                    what.append("long@").append(pos).append('=').append(v).append(' ');
                }
                case 4 -> { // a 4-byte little-endian field (flatbuffer offset, metadata length, count) made huge
                    int pos = 4 * rnd.nextInt((b.length - 4) / 4 + 1);
                    pos = Math.min(pos, b.length - 4);
                    int v = rnd.nextInt(4) == 0 ? b.length + rnd.nextInt(256) : HUGE_INT[rnd.nextInt(HUGE_INT.length)];
                    ByteBuffer.wrap(b, pos, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(v);
                    what.append("int@").append(pos).append('=').append(v).append(' ');
                }
                case 5 -> { // the format's own length fields: file footer length, or the stream's first message length
                    int pos = format == IpcFormat.FILE ? b.length - 10 : 4;
                    int v = rnd.nextBoolean() ? HUGE_INT[rnd.nextInt(HUGE_INT.length)] : b.length + rnd.nextInt(64) - 32;
                    ByteBuffer.wrap(b, pos, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(v);
                    what.append("formatLength@").append(pos).append('=').append(v).append(' ');
                }
                case 6 -> { // an 8-byte field at any offset
                    int pos = rnd.nextInt(b.length - 7);
                    long v = HUGE_LONG[rnd.nextInt(HUGE_LONG.length)];
                    ByteBuffer.wrap(b, pos, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
                    what.append("ulong@").append(pos).append('=').append(v).append(' ');
                }
                case 7 -> { // a chunk removed
                    int from = rnd.nextInt(b.length - 1);
                    int len = 1 + rnd.nextInt(Math.min(64, b.length - from));
                    byte[] nb = new byte[b.length - len];
                    System.arraycopy(b, 0, nb, 0, from);
                    System.arraycopy(b, from + len, nb, from, b.length - from - len);
                    b = nb;
                    what.append("cut@").append(from).append('+').append(len).append(' ');
                }
                default -> { // a chunk duplicated
                    int from = rnd.nextInt(b.length - 1);
                    int len = 1 + rnd.nextInt(Math.min(64, b.length - from));
                    byte[] nb = new byte[b.length + len];
                    System.arraycopy(b, 0, nb, 0, from + len);
                    System.arraycopy(b, from, nb, from + len, b.length - from);
                    b = nb;
                    what.append("dup@").append(from).append('+').append(len).append(' ');
                }
            }
        }
        return b;
    }

    static void report(String format, int cases, int clean, int leaks, Map<String, Integer> outcomes, int failures,
                       long ms) throws IOException {
        StringBuilder json = new StringBuilder("{\"format\":\"").append(format).append("\",\"cases\":").append(cases)
                .append(",\"clean\":").append(clean).append(",\"allocatorLeaks\":").append(leaks)
                .append(",\"failures\":").append(failures).append(",\"millis\":").append(ms)
                .append(",\"exceptions\":{");
        String sep = "";
        for (Map.Entry<String, Integer> e : outcomes.entrySet()) {
            json.append(sep).append('"').append(e.getKey()).append("\":").append(e.getValue());
            sep = ",";
        }
        json.append("}}");
        System.out.println("fuzz " + json);
        Path target = Path.of("target");
        Files.createDirectories(target);
        Files.writeString(target.resolve("fuzz-" + format + ".json"), json + "\n");
    }
}
