package io.moescore.placement;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Reads SmartMoE's routing traces (thu-pacman/SmartMoE-AE, {@code moe_trace/}): files
 * {@code table_iter{I}_rank{R}.log}, one line per MoE layer, {@code LAYER:[[c0, c1, ...], [...], ...]} with one
 * list of per-expert assignment counts per micro-batch; and the same numbers as CSV
 * ({@code iteration,rank,layer,microbatch,e0,...,eN}, optionally gzipped). Each micro-batch becomes one
 * {@link RoutingRecord} (executor {@code rank R}, device R, partition the micro-batch, batch the iteration).
 * Errors name the file and line, and the column where a line stops making sense.
 */
public final class SmartMoeTraces {
    /** SmartMoE's file names: {@code table_iter{I}_rank{R}.log}. */
    public static final Pattern LOG_NAME = Pattern.compile("table_iter(\\d+)_rank(\\d+)\\.log");
    private static final String CSV_HEADER = "iteration,rank,layer,microbatch,";

    private SmartMoeTraces() {
    }

    /** Whether {@code file}'s name says it is one of SmartMoE's trace files ({@code .log}) or their CSV form. */
    public static boolean isTraceFile(Path file) {
        String name = file.getFileName().toString();
        return LOG_NAME.matcher(name).matches() || name.endsWith(".csv") || name.endsWith(".csv.gz");
    }

    /**
     * The trace in {@code path}: a {@code .log} file, a {@code .csv} or {@code .csv.gz} file, or a folder whose
     * {@code table_iter*_rank*.log} files are read in name order.
     *
     * @throws IllegalArgumentException naming the file (and line) that cannot be read as a SmartMoE trace
     */
    public static RoutingTrace read(Path path) {
        if (Files.isDirectory(path)) {
            List<Path> files;
            try (Stream<Path> list = Files.list(path)) {
                files = list.filter(f -> LOG_NAME.matcher(f.getFileName().toString()).matches()).sorted().toList();
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot list " + path + ": " + e, e);
            }
            if (files.isEmpty()) {
                throw new IllegalArgumentException(path + " holds no SmartMoE trace files (table_iter{I}_rank{R}.log)");
            }
            List<RoutingRecord> all = new ArrayList<>();
            files.forEach(f -> all.addAll(readLog(f)));
            return RoutingTrace.of(path.toString(), all);
        }
        String name = path.getFileName().toString();
        return RoutingTrace.of(path.toString(), name.endsWith(".csv") || name.endsWith(".csv.gz")
                ? readCsv(path) : readLog(path));
    }

    /** The records of one {@code table_iter{I}_rank{R}.log} file, in line and micro-batch order. */
    public static List<RoutingRecord> readLog(Path file) {
        Matcher m = LOG_NAME.matcher(file.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(file + " is not named as SmartMoE's trace files are "
                    + "(table_iter{I}_rank{R}.log): its iteration and rank come from the name");
        }
        long iteration = Long.parseLong(m.group(1));
        int rank = Integer.parseInt(m.group(2));
        List<RoutingRecord> out = new ArrayList<>();
        int experts = -1;
        try (BufferedReader in = open(file)) {
            String line;
            int lineNumber = 0;
            while ((line = in.readLine()) != null) {
                lineNumber++;
                if (line.isBlank()) {
                    continue;
                }
                LogLine parsed = new LogLine(line, file + ":" + lineNumber);
                for (int mb = 0; mb < parsed.microBatches.size(); mb++) {
                    long[] counts = parsed.microBatches.get(mb);
                    if (experts < 0) {
                        experts = counts.length;
                    } else if (counts.length != experts) {
                        throw new IllegalArgumentException(file + ":" + lineNumber + ": micro-batch " + mb + " has "
                                + counts.length + " experts, earlier lists " + experts);
                    }
                    out.add(new RoutingRecord("rank " + rank, rank, mb, iteration, parsed.layer, counts));
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e, e);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no layer lines");
        }
        return out;
    }

    /** The records of a CSV file {@code iteration,rank,layer,microbatch,e0,...} (gzipped where it ends .gz). */
    public static List<RoutingRecord> readCsv(Path file) {
        List<RoutingRecord> out = new ArrayList<>();
        try (BufferedReader in = open(file)) {
            String header = in.readLine();
            if (header == null || !header.startsWith(CSV_HEADER)) {
                throw new IllegalArgumentException(file + ":1: expected the header " + CSV_HEADER + "e0,e1,...");
            }
            int experts = header.split(",", -1).length - 4;
            String line;
            int lineNumber = 1;
            while ((line = in.readLine()) != null) {
                lineNumber++;
                if (line.isBlank()) {
                    continue;
                }
                String[] cells = line.split(",", -1);
                String where = file + ":" + lineNumber;
                if (cells.length != experts + 4) {
                    throw new IllegalArgumentException(where + ": " + cells.length + " fields, the header has "
                            + (experts + 4));
                }
                long[] counts = new long[experts];
                for (int e = 0; e < experts; e++) {
                    counts[e] = count(cells[e + 4], where + ", column e" + e);
                }
                int rank = (int) count(cells[1], where + ", column rank");
                out.add(new RoutingRecord("rank " + rank, rank, (int) count(cells[3], where + ", column microbatch"),
                        count(cells[0], where + ", column iteration"), (int) count(cells[2], where + ", column layer"),
                        counts));
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e, e);
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no rows");
        }
        return out;
    }

    private static BufferedReader open(Path file) throws IOException {
        InputStream in = Files.newInputStream(file);
        try {
            if (file.getFileName().toString().endsWith(".gz")) {
                in = new GZIPInputStream(in, 1 << 16);
            }
        } catch (IOException e) {
            in.close();
            throw new IOException("not gzip data: " + e.getMessage(), e);
        }
        return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8), 1 << 16);
    }

    /** A whole, non-negative number written as SmartMoE does ({@code 3.0}) or plainly ({@code 3}). */
    static long count(String text, String where) {
        String t = text.trim();
        double v;
        try {
            v = Double.parseDouble(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": '" + abbreviate(t) + "' is not a number");
        }
        if (!(v >= 0) || v != Math.rint(v) || v > 1e15) {
            throw new IllegalArgumentException(where + ": " + abbreviate(t) + " is not a whole count of tokens");
        }
        return (long) v;
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "...";
    }

    /** One line of a .log file: {@code LAYER:[[c, ...], [c, ...], ...]}. */
    private static final class LogLine {
        final int layer;
        final List<long[]> microBatches = new ArrayList<>();
        private final String text;
        private final String where;
        private int pos;

        LogLine(String text, String where) {
            this.text = text;
            this.where = where;
            int colon = text.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException(where + ": expected LAYER:[[counts], ...], found no ':'");
            }
            layer = (int) count(text.substring(0, colon), where + ", the layer");
            pos = colon + 1;
            expect('[');
            do {
                microBatches.add(list());
            } while (skipComma());
            expect(']');
            skipSpaces();
            if (pos != text.length()) {
                throw error("unexpected text after the last ']'");
            }
        }

        private long[] list() {
            expect('[');
            List<Long> values = new ArrayList<>();
            do {
                skipSpaces();
                int start = pos;
                while (pos < text.length() && ",] ".indexOf(text.charAt(pos)) < 0) {
                    pos++;
                }
                if (start == pos) {
                    throw error("expected a count");
                }
                values.add(count(text.substring(start, pos), where + ", column " + (start + 1)));
            } while (skipComma());
            expect(']');
            return values.stream().mapToLong(Long::longValue).toArray();
        }

        private boolean skipComma() {
            skipSpaces();
            if (pos < text.length() && text.charAt(pos) == ',') {
                pos++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            skipSpaces();
            if (pos >= text.length() || text.charAt(pos) != c) {
                throw error("expected '" + c + "'" + (pos >= text.length() ? " before the end of the line" : ""));
            }
            pos++;
        }

        private void skipSpaces() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException(where + ", column " + (pos + 1) + ": " + what);
        }
    }
}
