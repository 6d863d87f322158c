package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.moescore.spark.ParquetInputCheck;
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
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;

import org.apache.parquet.hadoop.ParquetReader;



import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutated copies of the pyarrow Parquet fixture (fixed seed, {@code -Dmoescore.fuzz.cases=N} for more than the
 * default 2000) read with parquet-hadoop directly (no Spark: {@link ParquetReader} over {@link GroupReadSupport} on
 * the local file system), every record materialized and every value touched. Each case must end within 5 s in a
 * clean read or an exception; an Error or a hang fails the test. Exceptions of parquet-hadoop that carry no
 * message are tallied apart ("(no message)"), not failed: nothing of ours is on this path to name the file. The tally goes to stdout and
 * {@code target/fuzz-parquet.json}.
 */
class ParquetFuzzTest {
    static final long SEED = 0x9A2C0E7L;
    static final int CASES = Integer.getInteger("moescore.fuzz.cases", 2000);
    static final long CASE_TIMEOUT_S = 5;
    static final long[] HUGE_LONG = {1L << 31, 1L << 32, 1L << 40, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, -1L};
    static final int[] HUGE_INT = {Integer.MAX_VALUE, Integer.MIN_VALUE, -1, 1 << 30, 0x7ffffff8, 65536, 0};

    @TempDir
    Path dir;

    static final Configuration CONF = new Configuration(false);

    /** Reads every record and touches every value: returns the number of values. */
    static long readAll(Path file) throws IOException {
        checkChunkRanges(file);
        long values = 0;
        try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(),
                new org.apache.hadoop.fs.Path(file.toUri())).withConf(CONF).build()) {
            for (Group g = reader.read(); g != null; g = reader.read()) {
                values += touch(g);
            }
        }
        return values;
    }

    /**
     * Thrown by {@link #checkChunkRanges}: the job's own pre-check ({@link ParquetInputCheck}) refused the file.
     * parquet-hadoop (ConsecutivePartList.readAll) allocates the declared size on the heap before it reads, so a
     * corrupt total_compressed_size near 2^31 costs a 2 GiB allocation and many seconds before the EOF; the job
     * refuses such files up front, and so does this harness (counting them), so the time bound still catches hangs.
     */
    static final class ChunkPastEndException extends IOException {
        ChunkPastEndException(String message) {
            super(message);
        }
    }

    static void checkChunkRanges(Path file) throws IOException {
        try {
            ParquetInputCheck.checkFile(new org.apache.hadoop.fs.Path(file.toUri()), CONF);
        } catch (IllegalArgumentException e) {
            if (e.getMessage().contains("declares bytes")) {
                throw new ChunkPastEndException(e.getMessage());
            }
            // an unreadable footer: the read below reports it in its own words
        }
    }

    static long touch(Group g) {
        long n = 0;
        int fields = g.getType().getFieldCount();
        for (int f = 0; f < fields; f++) {
            int reps = g.getFieldRepetitionCount(f);
            for (int r = 0; r < reps; r++) {
                if (g.getType().getType(f).isPrimitive()) {
                    g.getValueToString(f, r);
                    n++;
                } else {
                    n += touch(g.getGroup(f, r));
                }
            }
        }
        return n;
    }

    @Test
    void mutatedParquetFiles() throws Exception {
        Path source = SparkTests.repoRoot().resolve("arrow-io/src/test/resources/pyarrow/tokens_int64_ids.parquet");
        byte[] valid = Files.readAllBytes(source);
        Path unmutated = dir.resolve("valid.parquet");
        Files.write(unmutated, valid);
        assertTrue(readAll(unmutated) > 0, "the unmutated file reads");
        int footerLength = ByteBuffer.wrap(valid, valid.length - 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        assertEquals("PAR1", new String(valid, valid.length - 4, 4, java.nio.charset.StandardCharsets.US_ASCII));

        Random rnd = new Random(SEED);
        Map<String, Integer> outcomes = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int clean = 0;
        long start = System.nanoTime();
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "parquet-fuzz");
            t.setDaemon(true);
            return t;
        });
        try {
            for (int c = 0; c < CASES; c++) {
                StringBuilder what = new StringBuilder();
                byte[] mutated = mutate(valid, rnd, what, footerLength);
                Path file = dir.resolve("case" + (c % 8) + ".parquet");
                Files.write(file, mutated);
                Future<Long> f = pool.submit(() -> readAll(file));
                try {
                    f.get(CASE_TIMEOUT_S, TimeUnit.SECONDS);
                    clean++;
                } catch (TimeoutException e) {
                    String stack = stackOf("parquet-fuzz");
                    f.cancel(true);
                    fail("case " + c + " (" + what + ") did not finish in " + CASE_TIMEOUT_S + " s; at\n" + stack);
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    String key = cause.getClass().getName();
                    if (cause instanceof Error) {
                        failures.add("case " + c + " (" + what + "): " + cause);
                        key = "FAILURE " + key;
                    } else if (cause.getMessage() == null || cause.getMessage().isBlank()) {
                        // parquet-hadoop's own exceptions (EOFException, NoSuchElementException) sometimes carry
                        // no message: counted apart, not failed, as this reads without our code (Spark wraps them)
                        key = key + " (no message)";
                    }
                    outcomes.merge(key, 1, Integer::sum);
                }
            }
        } finally {
            pool.shutdownNow();
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        report("parquet", CASES, clean, outcomes, failures.size(), ms);
        assertTrue(failures.isEmpty(), failures.size() + " failing cases, first: "
                + failures.subList(0, Math.min(10, failures.size())));
    }

    /** The stack of the thread named {@code name}, for a case that timed out. */
    static String stackOf(String name) {
        StringBuilder out = new StringBuilder();
        Thread.getAllStackTraces().forEach((t, frames) -> {
            if (t.getName().equals(name)) {
                for (int i = 0; i < Math.min(25, frames.length); i++) {
                    out.append("  ").append(frames[i]).append('\n');
                }
            }
        });
        return out.toString();
    }

    /** One to three mutations; {@code what} describes them. */
    static byte[] mutate(byte[] valid, Random rnd, StringBuilder what, int footerLength) {
        byte[] b = valid.clone();
        int rounds = 1 + rnd.nextInt(3);
        for (int r = 0; r < rounds; r++) {
            if (b.length < 16) {
                break;
            }
            // most mutations go to the footer (Thrift metadata: offsets, sizes, counts), the rest anywhere
            int footerStart = Math.max(0, b.length - 8 - footerLength);
            boolean inFooter = rnd.nextInt(3) > 0 && footerStart < b.length - 16;
            int lo = inFooter ? footerStart : 0;
            int span = b.length - lo;
            switch (rnd.nextInt(8)) {
                case 0 -> { // bit flips
                    int flips = 1 + rnd.nextInt(4);
                    for (int i = 0; i < flips; i++) {
                        int pos = lo + rnd.nextInt(span);
                        b[pos] ^= (byte) (1 << rnd.nextInt(8));
                        what.append("flip@").append(pos).append(' ');
                    }
                }
                case 1 -> { // byte overwrites (Thrift varints: 0x7f/0xff continue a number, making it huge)
                    int n = 1 + rnd.nextInt(4);
                    for (int i = 0; i < n; i++) {
                        int pos = lo + rnd.nextInt(span);
                        byte[] special = {0, (byte) 0xff, 0x7f, (byte) 0x80, 1, 0x15, 0x16, 0x19, 0x1c};
                        b[pos] = rnd.nextBoolean() ? (byte) rnd.nextInt(256) : special[rnd.nextInt(special.length)];
                        what.append("set@").append(pos).append(' ');
                    }
                }
                case 2 -> { // truncation
                    int len = rnd.nextInt(b.length);
                    b = Arrays.copyOf(b, len);
                    what.append("truncate@").append(len).append(' ');
                }
                case 3 -> { // the footer length made huge, negative or slightly off
                    int v = rnd.nextBoolean() ? HUGE_INT[rnd.nextInt(HUGE_INT.length)]
                            : footerLength + rnd.nextInt(64) - 32;
                    ByteBuffer.wrap(b, b.length - 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(v);
                    what.append("footerLength=").append(v).append(' ');
                }
                case 4 -> { // a zigzag varint in the footer replaced by a huge one (sizes, offsets, counts)
                    int pos = lo + rnd.nextInt(span - 10);
                    long v = HUGE_LONG[rnd.nextInt(HUGE_LONG.length)];
                    long zz = (v << 1) ^ (v >> 63);
                    int end = pos;
                    while (end < b.length - 8 && (b[end] & 0x80) != 0) {
                        end++;
                    }
                    byte[] varint = new byte[10];
                    int k = 0;
                    do {
                        byte bt = (byte) (zz & 0x7f);
                        zz >>>= 7;
                        varint[k++] = (byte) (zz != 0 ? bt | 0x80 : bt);
                    } while (zz != 0 && k < 10);
                    byte[] nb = new byte[b.length - (end + 1 - pos) + k];
                    System.arraycopy(b, 0, nb, 0, pos);
                    System.arraycopy(varint, 0, nb, pos, k);
                    System.arraycopy(b, end + 1, nb, pos + k, b.length - end - 1);
                    // keep the footer length pointing at the footer's start
                    int fl = footerLength + (nb.length - b.length);
                    if (pos >= footerStart && nb.length >= 8) {
                        ByteBuffer.wrap(nb, nb.length - 8, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(fl);
                    }
                    b = nb;
                    what.append("varint@").append(pos).append('=').append(v).append(' ');
                }
                case 5 -> { // a 4- or 8-byte little-endian value made huge (page headers, dictionary, data)
                    if (rnd.nextBoolean()) {
                        int pos = lo + rnd.nextInt(span - 8);
                        ByteBuffer.wrap(b, pos, 8).order(ByteOrder.LITTLE_ENDIAN)
                                .putLong(HUGE_LONG[rnd.nextInt(HUGE_LONG.length)]);
                        what.append("long@").append(pos).append(' ');
                    } else {
                        int pos = lo + rnd.nextInt(span - 4);
                        ByteBuffer.wrap(b, pos, 4).order(ByteOrder.LITTLE_ENDIAN)
                                .putInt(HUGE_INT[rnd.nextInt(HUGE_INT.length)]);
                        what.append("int@").append(pos).append(' ');
                    }
                }
                case 6 -> { // a chunk removed
                    int from = rnd.nextInt(b.length - 1);
                    int len = 1 + rnd.nextInt(Math.min(32, b.length - from));
                    byte[] nb = new byte[b.length - len];
                    System.arraycopy(b, 0, nb, 0, from);
                    System.arraycopy(b, from + len, nb, from, b.length - from - len);
                    b = nb;
                    what.append("cut@").append(from).append('+').append(len).append(' ');
                }
                default -> { // random bytes over a short range of the data pages
                    int pos = rnd.nextInt(Math.max(1, Math.min(footerStart, b.length - 8)));
                    int len = Math.min(1 + rnd.nextInt(16), b.length - pos);
                    for (int i = 0; i < len; i++) {
                        b[pos + i] = (byte) rnd.nextInt(256);
                    }
                    what.append("noise@").append(pos).append('+').append(len).append(' ');
                }
            }
        }
        return b;
    }

    static void report(String format, int cases, int clean, Map<String, Integer> outcomes, int failures, long ms)
            throws IOException {
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
