package io.moescore.bench.placement;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.placement.RoutingRecord;
import io.moescore.spark.trace.TraceFormat;
import io.moescore.spark.trace.TraceWriter;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;

/**
 * What {@code --routing-trace} costs a scoring task: the time to write one batch's records (one per MoE layer, one
 * count per expert) into a trace file, Parquet and Arrow IPC, at the expert shapes of real models, and each file's
 * fixed cost (open, footer, close: once per task). The job writes synchronously after each batch on the task's
 * thread, so this time adds to the batch's; set against a batch's forward time ({@code batch-ms}, e.g. from
 * bench/NOTES.md) it is the share of the job's time.
 *
 *   java ... io.moescore.bench.placement.RoutingTraceCost OUT.json [batches=3000] [dir=/tmp]
 */
public final class RoutingTraceCost {
    /** name, MoE layers, experts, and a measured H100 forward time per 8192-token batch (ms; 0: none measured). */
    private record Shape(String name, int layers, int experts, double batchMs, String batchMsSource) {
    }

    private static final Shape[] SHAPES = {
        new Shape("demo tiny-moe-code", 4, 8, 0, null),
        // bench/NOTES.md, full forward pass: OLMoE-1B-7B shape, 16 layers, 8192 tokens: 95.7k tokens/s
        new Shape("OLMoE-1B-7B", 16, 64, 8192 / 95.7e3 * 1e3, "H100 95.7k tokens/s at 8192 tokens (bench/NOTES.md)"),
        // Mixtral-8x7B shape, 4 layers at 124.1k tokens/s: 32 layers take 8 times as long
        new Shape("Mixtral-8x7B", 32, 8, 8192 / 124.1e3 * 1e3 * 8, "H100 4-layer stack 124.1k tokens/s x 32/4 "
                + "layers (bench/NOTES.md)"),
        new Shape("Qwen3-30B-A3B", 48, 128, 0, null),
        new Shape("DeepSeek-V3", 58, 256, 0, null)};

    private RoutingTraceCost() {
    }

    public static void main(String[] args) throws Exception {
        File out = new File(args[0]);
        int batches = 3000;
        Path dir = Path.of(System.getProperty("java.io.tmpdir"));
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "batches" -> batches = Integer.parseInt(kv[1]);
                case "dir" -> dir = Path.of(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        FileSystem fs = FileSystem.getLocal(new Configuration());
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = json.createObjectNode();
        root.put("batches", batches);
        root.put("cpu", System.getProperty("os.arch") + ", " + Runtime.getRuntime().availableProcessors() + " cores");
        ArrayNode rows = root.putArray("results");
        Random random = new Random(1);
        for (Shape shape : SHAPES) {
            long[][][] counts = new long[16][shape.layers()][shape.experts()];  // batches cycle through 16
            for (long[][] batch : counts) {
                for (long[] layer : batch) {
                    for (int e = 0; e < layer.length; e++) {
                        layer[e] = random.nextInt(4096);
                    }
                }
            }
            for (TraceFormat format : TraceFormat.values()) {
                measure(fs, dir, format, counts, 200);  // warm-up: class loading, codecs, JIT
                double[] m = measure(fs, dir, format, counts, batches);
                double[] single = measure(fs, dir, format, counts, 1);
                ObjectNode r = rows.addObject();
                r.put("shape", shape.name());
                r.put("moe_layers", shape.layers());
                r.put("experts", shape.experts());
                r.put("format", format.name().toLowerCase(Locale.ROOT));
                r.put("us_per_batch", m[0] / batches * 1e6);
                r.put("bytes_per_batch", m[1] / batches);
                r.put("file_fixed_ms", single[0] * 1e3);
                if (shape.batchMs() > 0) {
                    r.put("batch_ms", shape.batchMs());
                    r.put("batch_ms_source", shape.batchMsSource());
                    r.put("share_of_batch_time_pct", 100 * m[0] / batches / (shape.batchMs() / 1e3));
                }
                System.err.printf(Locale.ROOT, "%-20s %-8s %8.1f us/batch %9.0f B/batch, file open+close %.1f ms%s%n",
                        shape.name(), format.name().toLowerCase(Locale.ROOT), m[0] / batches * 1e6, m[1] / batches,
                        single[0] * 1e3, shape.batchMs() > 0 ? String.format(Locale.ROOT, ", %.3f%% of a %.0f ms batch",
                                100 * m[0] / batches / (shape.batchMs() / 1e3), shape.batchMs()) : "");
            }
        }
        json.writeValue(out, root);
    }

    /** Seconds to write {@code batches} batches into a new file and close it, and the file's bytes. */
    private static double[] measure(FileSystem fs, Path dir, TraceFormat format, long[][][] counts, int batches)
            throws Exception {
        Path file = Files.createTempFile(dir, "trace", format.extension());
        Files.delete(file);
        long start = System.nanoTime();
        try (TraceWriter w = format.open(fs, new org.apache.hadoop.fs.Path(file.toUri()))) {
            for (int b = 0; b < batches; b++) {
                long[][] batch = counts[b % counts.length];
                for (int l = 0; l < batch.length; l++) {
                    w.write(new RoutingRecord("7", 0, 3, b, l, batch[l].clone()));
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long bytes = Files.size(file);
        Files.delete(file);
        Files.deleteIfExists(file.resolveSibling("." + file.getFileName() + ".crc"));
        return new double[] {seconds, bytes};
    }
}
