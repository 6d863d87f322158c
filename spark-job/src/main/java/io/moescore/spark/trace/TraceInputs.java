package io.moescore.spark.trace;

import io.moescore.placement.RoutingRecord;
import io.moescore.placement.RoutingTrace;
import io.moescore.placement.SmartMoeTraces;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What {@code moescore traces} and {@code moescore placement} read, by path (local files): a routing trace folder
 * of a scoring job ({@code --routing-trace DIR}: its Parquet or Arrow files, under {@code loads/}), one such file,
 * SmartMoE's {@code table_iter{I}_rank{R}.log} files or a folder of them, or their CSV form. Several paths make one
 * trace (they must have the same number of experts).
 */
public final class TraceInputs {
    private TraceInputs() {
    }

    /**
     * The trace of every path, as one.
     *
     * @throws IllegalArgumentException naming the path (file, line or row) that cannot be read as a trace
     */
    public static RoutingTrace read(List<Path> paths) {
        List<RoutingTrace> traces = new ArrayList<>();
        for (Path p : paths) {
            traces.add(read(p));
        }
        return RoutingTrace.concat(traces);
    }

    public static RoutingTrace read(Path path) {
        if (!Files.exists(path)) {
            throw new IllegalArgumentException(path + " does not exist");
        }
        if (Files.isDirectory(path)) {
            Path loads = path.resolve(TraceFormat.LOADS_FOLDER);
            List<Path> ours = files(Files.isDirectory(loads) ? loads : path).stream()
                    .filter(f -> TraceFormat.forFileName(f.getFileName().toString()) != null).toList();
            if (!ours.isEmpty()) {
                List<RoutingRecord> records = new ArrayList<>();
                ours.forEach(f -> records.addAll(TraceFormat.forFileName(f.getFileName().toString()).read(f)));
                return RoutingTrace.of(path.toString(), records);
            }
            return SmartMoeTraces.read(path);  // names what it looked for where there is none
        }
        TraceFormat format = TraceFormat.forFileName(path.getFileName().toString());
        if (format != null) {
            return RoutingTrace.of(path.toString(), format.read(path));
        }
        if (SmartMoeTraces.isTraceFile(path)) {
            return SmartMoeTraces.read(path);
        }
        throw new IllegalArgumentException(path + " is not a routing trace: expected a trace folder, a .parquet or "
                + ".arrow trace file, SmartMoE's table_iter{I}_rank{R}.log (or a folder of them) or their .csv(.gz)");
    }

    /** The visible files of a folder, in name order. */
    private static List<Path> files(Path dir) {
        try (Stream<Path> list = Files.list(dir)) {
            return list.filter(Files::isRegularFile).filter(f -> !f.getFileName().toString().startsWith(".")
                    && !f.getFileName().toString().startsWith("_")).sorted().toList();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot list " + dir + ": " + e, e);
        }
    }
}
