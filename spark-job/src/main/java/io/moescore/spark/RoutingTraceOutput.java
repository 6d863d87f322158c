package io.moescore.spark;

import io.moescore.spark.trace.TokenTrace;
import io.moescore.spark.trace.TraceFormat;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * The scoring job's routing trace ({@code --routing-trace DIR}): every task attempt writes its batches' per-layer
 * expert loads ({@link TaskTrace}) into {@code DIR/_attempts/}; after the job the driver keeps the files of the
 * attempts that succeeded (those whose {@link TaskStats} reached it) as {@code DIR/loads/part-PPPPP-sS.EXT}, deletes
 * the rest, and writes {@code DIR/_routing_trace.json}. Parquet, or Arrow IPC where the job's output is Arrow
 * ({@link TraceFormat}). Sent to executors with the tasks.
 *
 * @param hadoopConf the driver's Hadoop settings, to write on executors
 * @param tokens     also each token's chosen experts and gates ({@code --routing-trace-tokens}): every attempt
 *                   writes them beside its loads file; the driver keeps the succeeded attempts' as
 *                   {@code DIR/tokens/part-PPPPP-sS.parquet} ({@link TokenTrace})
 * @param idOrdinal  the id column's ordinal in the scored input, -1 where none is known: token records then carry
 *                   each row's id ({@link #withIds})
 * @param idType     that column's Spark type (null where none)
 */
record RoutingTraceOutput(String dir, TraceFormat format, Map<String, String> hadoopConf, boolean tokens,
                          int idOrdinal, DataType idType) implements Serializable {
    static final String ATTEMPTS = "_attempts";
    static final String MANIFEST = "_routing_trace.json";

    RoutingTraceOutput {
        hadoopConf = Map.copyOf(hadoopConf);
    }

    static RoutingTraceOutput of(String dir, String outputFormat, boolean tokens, Configuration hadoop) {
        Map<String, String> conf = new HashMap<>();
        hadoop.forEach(e -> conf.put(e.getKey(), e.getValue()));
        return new RoutingTraceOutput(dir, TraceFormat.forOutput(outputFormat), conf, tokens, -1, null);
    }

    /** This trace with each token record naming its row by the input's id column (at {@code ordinal}, of {@code type}). */
    RoutingTraceOutput withIds(int ordinal, DataType type) {
        return new RoutingTraceOutput(dir, format, hadoopConf, tokens, ordinal, type);
    }

    /** The token files' id column: int64 for bigint, int, smallint and tinyint ids (as the output widens them). */
    TokenTrace.Ids ids() {
        if (idType == null) {
            return TokenTrace.Ids.NONE;
        }
        return idType.equals(DataTypes.StringType) ? TokenTrace.Ids.STRING : TokenTrace.Ids.INT64;
    }

    /**
     * Before the job: refuses an existing folder unless {@code mode} is overwrite, which deletes it.
     *
     * @throws IllegalArgumentException naming {@code --routing-trace}
     */
    void prepare(String mode) {
        try {
            Path path = new Path(dir);
            FileSystem fs = path.getFileSystem(ModelFiles.hadoopConf(hadoopConf));
            if (fs.exists(path)) {
                if (!mode.equals("overwrite")) {
                    throw new IllegalArgumentException("--routing-trace " + dir + " already exists: pass a new "
                            + "folder, or --mode overwrite to replace it");
                }
                fs.delete(path, true);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("--routing-trace " + dir + ": cannot prepare it: " + e, e);
        }
    }

    /** The trace of one task attempt on this executor; {@code device} is the GPU ordinal it scores on. */
    TaskTrace open(TaskContext task, String executor, int device) {
        return open(task.stageId(), task.partitionId(), task.attemptNumber(), executor, device);
    }

    /** The trace of attempt {@code attempt} of the task of {@code partition} in {@code stage}. */
    TaskTrace open(int stage, int partition, int attempt, String executor, int device) {
        String name = attemptName(stage, partition, attempt);
        return new TaskTrace(() -> {
            Path file = new Path(new Path(dir, ATTEMPTS), name + format.extension());
            return format.open(file.getFileSystem(ModelFiles.hadoopConf(hadoopConf)), file);
        }, !tokens ? null : () -> {
            Path file = new Path(new Path(dir, ATTEMPTS), name + TOKENS_SUFFIX);
            return TokenTrace.open(file.getFileSystem(ModelFiles.hadoopConf(hadoopConf)), file, ids());
        }, executor, device, partition, idOrdinal, idType);
    }

    /** An attempt's token file: its loads file's name with this ending instead of the format's extension. */
    private static final String TOKENS_SUFFIX = ".tokens" + TokenTrace.EXTENSION;

    private static String attemptName(int stage, int partition, int attempt) {
        return String.format(Locale.ROOT, "s%d-p%05d-a%d", stage, partition, attempt);
    }

    /** Moves a kept attempt's file (where it wrote one) into {@code folder}; true where there was one. */
    private static boolean keep(FileSystem fs, Path from, Path folder, TaskStats s, String extension)
            throws IOException {
        if (!fs.exists(from)) {  // a task that scored no batch wrote no file
            return false;
        }
        Path to = new Path(folder, String.format(Locale.ROOT, "part-%05d-s%d%s", s.partitionId(), s.stageId(),
                extension));
        if (!fs.rename(from, to)) {
            throw new IOException("cannot move " + from + " to " + to);
        }
        return true;
    }

    /**
     * After the job: keeps the trace files of the attempts in {@code succeeded} (one per partition and stage, the
     * first reported), drops every other attempt's, writes the manifest. Returns how many files it kept.
     */
    int commit(List<TaskStats> succeeded, String model) throws IOException {
        Path root = new Path(dir);
        FileSystem fs = root.getFileSystem(ModelFiles.hadoopConf(hadoopConf));
        Path attempts = new Path(root, ATTEMPTS);
        Path loads = new Path(root, TraceFormat.LOADS_FOLDER);
        fs.mkdirs(loads);
        Map<String, TaskStats> kept = new TreeMap<>();
        for (TaskStats s : succeeded) {
            kept.putIfAbsent(s.stageId() + "/" + s.partitionId(), s);
        }
        Path tokenFolder = new Path(root, TokenTrace.FOLDER);
        if (tokens) {
            fs.mkdirs(tokenFolder);
        }
        int files = 0;
        int tokenFiles = 0;
        for (TaskStats s : kept.values()) {
            String name = attemptName(s.stageId(), s.partitionId(), s.attempt());
            if (keep(fs, new Path(attempts, name + format.extension()), loads, s, format.extension())) {
                files++;
            }
            if (tokens && keep(fs, new Path(attempts, name + TOKENS_SUFFIX), tokenFolder, s, TokenTrace.EXTENSION)) {
                tokenFiles++;
            }
        }
        fs.delete(attempts, true);
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode manifest = json.createObjectNode();
        manifest.put("format", format.name().toLowerCase(Locale.ROOT));
        manifest.put("files", files);
        manifest.put("model", model);
        com.fasterxml.jackson.databind.node.ArrayNode columns = manifest.putArray("columns");
        List.of(TraceFormat.EXECUTOR, TraceFormat.DEVICE, TraceFormat.PARTITION, TraceFormat.BATCH, TraceFormat.LAYER,
                TraceFormat.TOKENS).forEach(columns::add);
        if (tokens) {
            com.fasterxml.jackson.databind.node.ObjectNode t = manifest.putObject("token_routing");
            t.put("format", "parquet");
            t.put("folder", TokenTrace.FOLDER);
            t.put("files", tokenFiles);
            ids().columns().forEach(t.putArray("columns")::add);
        }
        try (OutputStream out = fs.create(new Path(root, MANIFEST), true)) {
            out.write((json.writeValueAsString(manifest) + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return files;
    }
}
