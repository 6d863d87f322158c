package io.moescore.spark.trace;

import io.moescore.placement.RoutingRecord;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The file formats of our routing traces: Parquet (the default) and Arrow IPC (where the job's output is Arrow).
 * Both hold one row per (batch, MoE layer): {@code executor} (string), {@code device}, {@code partition},
 * {@code batch} (int64), {@code layer}, {@code tokens} (list of int64, one per expert); see {@link RoutingRecord}.
 */
public enum TraceFormat {
    PARQUET(".parquet") {
        @Override
        public TraceWriter open(FileSystem fs, Path file) throws IOException {
            return ParquetTrace.writer(fs.getConf(), fs.makeQualified(file));
        }

        @Override
        public List<RoutingRecord> read(java.nio.file.Path file) {
            return ParquetTrace.read(file);
        }
    },
    ARROW(".arrow") {
        @Override
        public TraceWriter open(FileSystem fs, Path file) throws IOException {
            return ArrowTrace.writer(fs.create(file, false));
        }

        @Override
        public List<RoutingRecord> read(java.nio.file.Path file) {
            return ArrowTrace.read(file);
        }
    };

    /** Where a job's trace folder keeps its files of per-layer loads. */
    public static final String LOADS_FOLDER = "loads";
    public static final String EXECUTOR = "executor";
    public static final String DEVICE = "device";
    public static final String PARTITION = "partition";
    public static final String BATCH = "batch";
    public static final String LAYER = "layer";
    public static final String TOKENS = "tokens";

    private final String extension;

    TraceFormat(String extension) {
        this.extension = extension;
    }

    public String extension() {
        return extension;
    }

    /** A new file (refused where it exists) that this format's records are written into. */
    public abstract TraceWriter open(FileSystem fs, Path file) throws IOException;

    /**
     * Every record of a local file of this format.
     *
     * @throws IllegalArgumentException naming the file (and the column or row) that cannot be read as a trace
     */
    public abstract List<RoutingRecord> read(java.nio.file.Path file);

    /** The format of a trace file by its name, or null for neither. */
    public static TraceFormat forFileName(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        for (TraceFormat f : values()) {
            if (lower.endsWith(f.extension)) {
                return f;
            }
        }
        return null;
    }

    /** The trace format for a job writing {@code outputFormat}: Arrow IPC beside Arrow output, else Parquet. */
    public static TraceFormat forOutput(String outputFormat) {
        return "arrow".equals(outputFormat) ? ARROW : PARQUET;
    }

    static Configuration localConf() {
        Configuration conf = new Configuration(false);
        conf.set("fs.file.impl.disable.cache", "true");
        return conf;
    }
}
