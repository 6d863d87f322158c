package io.moescore.spark;

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

/**
 * The scoring job's routing trace ({@code --routing-trace DIR}): every task attempt writes its batches' per-layer
 * expert loads ({@link TaskTrace}) into {@code DIR/_attempts/}; after the job the driver keeps the files of the
 * attempts that succeeded (those whose {@link TaskStats} reached it) as {@code DIR/loads/part-PPPPP-sS.EXT}, deletes
 * the rest, and writes {@code DIR/_routing_trace.json}. Parquet, or Arrow IPC where the job's output is Arrow
 * ({@link TraceFormat}). Sent to executors with the tasks.
 *
 * @param hadoopConf the driver's Hadoop settings, to write on executors
 */
record RoutingTraceOutput(String dir, TraceFormat format, Map<String, String> hadoopConf) implements Serializable {
    static final String ATTEMPTS = "_attempts";
    static final String MANIFEST = "_routing_trace.json";

    RoutingTraceOutput {
        hadoopConf = Map.copyOf(hadoopConf);
    }

    static RoutingTraceOutput of(String dir, String outputFormat, Configuration hadoop) {
        Map<String, String> conf = new HashMap<>();
        hadoop.forEach(e -> conf.put(e.getKey(), e.getValue()));
        return new RoutingTraceOutput(dir, TraceFormat.forOutput(outputFormat), conf);
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
        String name = attemptName(task.stageId(), task.partitionId(), task.attemptNumber());
        return new TaskTrace(() -> {
            Path file = new Path(new Path(dir, ATTEMPTS), name);
            return format.open(file.getFileSystem(ModelFiles.hadoopConf(hadoopConf)), file);
        }, executor, device, task.partitionId());
    }

    private String attemptName(int stage, int partition, int attempt) {
        return String.format(Locale.ROOT, "s%d-p%05d-a%d%s", stage, partition, attempt, format.extension());
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
        int files = 0;
        for (TaskStats s : kept.values()) {
            Path from = new Path(attempts, attemptName(s.stageId(), s.partitionId(), s.attempt()));
            if (fs.exists(from)) {  // a task that scored no batch wrote no file
                Path to = new Path(loads, String.format(Locale.ROOT, "part-%05d-s%d%s", s.partitionId(), s.stageId(),
                        format.extension()));
                if (!fs.rename(from, to)) {
                    throw new IOException("cannot move " + from + " to " + to);
                }
                files++;
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
        try (OutputStream out = fs.create(new Path(root, MANIFEST), true)) {
            out.write((json.writeValueAsString(manifest) + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return files;
    }
}
