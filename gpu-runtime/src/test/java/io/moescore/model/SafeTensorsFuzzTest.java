package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutated safetensors files (fixed seed, {@code -Dmoescore.fuzz.cases=N} for more than the default 2000) opened
 * through {@link Checkpoint#open} with every tensor read in full. Each case must end within 5 s in a clean read or
 * an exception with a message; an Error (OutOfMemoryError, StackOverflowError, ...) or a hang fails the test.
 * The tally goes to stdout and {@code target/fuzz-safetensors.json}.
 */
class SafeTensorsFuzzTest {
    static final long SEED = 0x5AFE7E45L;
    static final int CASES = Integer.getInteger("moescore.fuzz.cases", 2000);
    static final long CASE_TIMEOUT_S = 5;
    static final long[] HUGE = {1L << 31, 1L << 32, 1L << 40, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, -1L,
        Integer.MAX_VALUE, 0x7fffffffffffL};
    static final String[] HUGE_TEXT = {"1099511627776", "9223372036854775807", "9223372036854775808",
        "-1", "-9223372036854775808", "4294967296", "2147483648", "1e30", "0", "99999999999999999999999"};

    @TempDir
    Path dir;

    /** A valid 3-tensor file: F32 [2, 3], BF16 [4], I32 [2, 2]. */
    static byte[] validFile(Path scratch) throws Exception {
        Path f = scratch.resolve("valid.safetensors");
        new SafeTensorsWriter(Map.of("format", "pt"))
                .add("a.f32", DType.F32, new float[] {1f, -2.5f, 3.25f, 0f, 1e-3f, -7f}, 2, 3)
                .add("b.bf16", DType.BF16, new float[] {1.5f, -3f, 0.25f, 8f}, 4)
                .addInts("c.i32", new int[] {1, -2, 3, 0x7fffffff}, 2, 2)
                .write(f);
        return Files.readAllBytes(f);
    }

    /** Reads every tensor; returns the number of elements read. */
    static long readAll(Path modelDir) {
        long n = 0;
        try (Checkpoint ckpt = Checkpoint.open(modelDir)) {
            for (String name : ckpt.tensorNames()) {
                TensorRef t = ckpt.get(name);
                if (t.dtype() == DType.I32) {
                    n += t.toInts().length;
                } else {
                    n += t.toFloats().length;
                }
            }
        }
        return n;
    }

    @Test
    void mutatedFilesReadCleanlyOrFailWithAMessage() throws Exception {
        byte[] valid = validFile(dir);
        Path modelDir = dir.resolve("model");
        Files.createDirectories(modelDir);
        Files.write(modelDir.resolve(Checkpoint.SINGLE_FILE), valid);
        assertEquals(6 + 4 + 4, readAll(modelDir), "the unmutated file reads");

        Random rnd = new Random(SEED);
        Map<String, Integer> outcomes = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int clean = 0;
        long start = System.nanoTime();
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "safetensors-fuzz");
            t.setDaemon(true);
            return t;
        });
        try {
            for (int c = 0; c < CASES; c++) {
                StringBuilder what = new StringBuilder();
                byte[] mutated = mutate(valid, rnd, what);
                Path caseDir = dir.resolve("case" + (c % 8));
                Files.createDirectories(caseDir);
                Files.write(caseDir.resolve(Checkpoint.SINGLE_FILE), mutated);
                Future<Long> f = pool.submit(() -> readAll(caseDir));
                try {
                    f.get(CASE_TIMEOUT_S, TimeUnit.SECONDS);
                    clean++;
                } catch (TimeoutException e) {
                    f.cancel(true);
                    fail("case " + c + " (" + what + ") did not finish in " + CASE_TIMEOUT_S + " s");
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    String key = cause.getClass().getName();
                    outcomes.merge(key, 1, Integer::sum);
                    if (cause instanceof Error) {
                        failures.add("case " + c + " (" + what + "): " + cause);
                    } else if (cause.getMessage() == null || cause.getMessage().isBlank()) {
                        failures.add("case " + c + " (" + what + "): " + key + " without a message");
                    }
                }
            }
        } finally {
            pool.shutdownNow();
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        report("safetensors", CASES, clean, outcomes, failures.size(), ms);
        assertTrue(failures.isEmpty(), failures.size() + " failing cases, first: "
                + failures.subList(0, Math.min(10, failures.size())));
    }

    static final Pattern NUMBER = Pattern.compile("-?\\d+");

    /** One to three mutations of the valid bytes; {@code what} describes them. */
    static byte[] mutate(byte[] valid, Random rnd, StringBuilder what) {
        byte[] b = valid.clone();
        int headerLength = (int) ByteBuffer.wrap(valid, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        int rounds = 1 + rnd.nextInt(3);
        for (int r = 0; r < rounds; r++) {
            int kind = rnd.nextInt(8);
            switch (kind) {
                case 0 -> { // bit flips
                    int flips = 1 + rnd.nextInt(4);
                    for (int i = 0; i < flips && b.length > 0; i++) {
                        int pos = rnd.nextInt(b.length);
                        b[pos] ^= (byte) (1 << rnd.nextInt(8));
                        what.append("flip@").append(pos).append(' ');
                    }
                }
                case 1 -> { // byte overwrites
                    int n = 1 + rnd.nextInt(4);
                    for (int i = 0; i < n && b.length > 0; i++) {
                        int pos = rnd.nextInt(b.length);
                        byte[] special = {0, (byte) 0xff, 0x7f, (byte) 0x80, '"', '{', '}', '[', ']', ',', ':', '9'};
                        b[pos] = rnd.nextBoolean() ? (byte) rnd.nextInt(256) : special[rnd.nextInt(special.length)];
                        what.append("set@").append(pos).append(' ');
                    }
                }
                case 2 -> { // truncation
                    int len = b.length == 0 ? 0 : rnd.nextInt(b.length);
                    b = java.util.Arrays.copyOf(b, len);
                    what.append("truncate@").append(len).append(' ');
                }
                case 3 -> { // the 8-byte header length set to a huge or wrong value
                    if (b.length >= 8) {
                        long v = rnd.nextBoolean() ? HUGE[rnd.nextInt(HUGE.length)] : headerLength + rnd.nextInt(64) - 32;
                        ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
                        what.append("headerLength=").append(v).append(' ');
                    }
                }
                case 4, 5 -> { // a number in the JSON header (shape, data_offsets) pushed past the end or made huge
                    b = replaceNumber(b, headerLength, rnd, what);
                }
                case 6 -> { // an 8-byte little-endian value anywhere set huge
                    if (b.length >= 8) {
                        int pos = rnd.nextInt(b.length - 7);
                        long v = HUGE[rnd.nextInt(HUGE.length)];
                        ByteBuffer.wrap(b, pos, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
                        what.append("long@").append(pos).append('=').append(v).append(' ');
                    }
                }
                default -> { // extend: appended garbage or a removed chunk
                    if (rnd.nextBoolean()) {
                        byte[] more = new byte[1 + rnd.nextInt(64)];
                        rnd.nextBytes(more);
                        byte[] nb = java.util.Arrays.copyOf(b, b.length + more.length);
                        System.arraycopy(more, 0, nb, b.length, more.length);
                        b = nb;
                        what.append("append").append(more.length).append(' ');
                    } else if (b.length > 2) {
                        int from = rnd.nextInt(b.length - 1);
                        int len = 1 + rnd.nextInt(Math.min(32, b.length - from));
                        byte[] nb = new byte[b.length - len];
                        System.arraycopy(b, 0, nb, 0, from);
                        System.arraycopy(b, from + len, nb, from, b.length - from - len);
                        b = nb;
                        what.append("cut@").append(from).append('+').append(len).append(' ');
                    }
                }
            }
        }
        return b;
    }

    /** Replaces one integer in the header text, keeping the header length field consistent with the new text. */
    static byte[] replaceNumber(byte[] b, int headerLength, Random rnd, StringBuilder what) {
        if (b.length < 8 + headerLength || headerLength <= 0) {
            return b;
        }
        String header = new String(b, 8, headerLength, StandardCharsets.ISO_8859_1);
        Matcher m = NUMBER.matcher(header);
        List<int[]> spans = new ArrayList<>();
        while (m.find()) {
            spans.add(new int[] {m.start(), m.end()});
        }
        if (spans.isEmpty()) {
            return b;
        }
        int[] s = spans.get(rnd.nextInt(spans.size()));
        String old = header.substring(s[0], s[1]);
        String replacement;
        int choice = rnd.nextInt(3);
        if (choice == 0) {
            replacement = HUGE_TEXT[rnd.nextInt(HUGE_TEXT.length)];
        } else if (choice == 1) { // just past the end of the data
            replacement = Long.toString(b.length - 8 - headerLength + 1 + rnd.nextInt(16));
        } else {
            replacement = Long.toString(Long.parseLong(old.length() > 18 ? "0" : old) + rnd.nextInt(9) - 4);
        }
        String newHeader = header.substring(0, s[0]) + replacement + header.substring(s[1]);
        byte[] h = newHeader.getBytes(StandardCharsets.ISO_8859_1);
        byte[] nb = new byte[8 + h.length + b.length - 8 - headerLength];
        ByteBuffer.wrap(nb, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
        System.arraycopy(h, 0, nb, 8, h.length);
        System.arraycopy(b, 8 + headerLength, nb, 8 + h.length, b.length - 8 - headerLength);
        what.append("json ").append(old).append("->").append(replacement).append(' ');
        return nb;
    }

    static void report(String format, int cases, int clean, Map<String, Integer> outcomes, int failures, long ms)
            throws java.io.IOException {
        StringBuilder json = new StringBuilder("{\"format\":\"").append(format).append("\",\"cases\":").append(cases)
                .append(",\"clean\":").append(clean).append(",\"failures\":").append(failures)
                .append(",\"millis\":").append(ms).append(",\"exceptions\":{");
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
