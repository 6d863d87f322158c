package io.moescore.bench.portability;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * A result set on disk (any Hadoop file system; on a multi-host cluster give a shared one, as for the scoring job):
 * {@code results.parquet} and {@code results.csv} (Spark writers, one part file each), {@code report.html},
 * {@code charts/*.png}, and {@code kernel-caches/kernels-<GPU model>.json}, the autotuner's choices in the format
 * {@code -Dmoescore.kernelCache} reads, so a scoring job on that GPU model starts tuned.
 */
final class ResultStore {
    static final String PARQUET = "results.parquet";
    static final String CSV = "results.csv";
    static final String KERNEL_CACHES = "kernel-caches";
    private static final ObjectMapper JSON = new ObjectMapper();

    private ResultStore() {
    }

    /** Refuses an output folder that exists and is not empty, unless {@code overwrite} (then deletes it first). */
    static void prepare(SparkSession spark, String output, boolean overwrite) throws IOException {
        Path dir = new Path(output);
        FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
        if (fs.exists(dir) && (!fs.getFileStatus(dir).isDirectory() || fs.listStatus(dir).length > 0)) {
            if (!overwrite) {
                throw new IllegalArgumentException("--output " + output + " exists: give a new folder, or --mode "
                        + "overwrite");
            }
            fs.delete(dir, true);
        }
    }

    static void write(SparkSession spark, String output, List<PortabilityRow> rows,
                      Map<String, Map<String, String>> kernelCachesByFile) throws IOException {
        Path dir = new Path(output);
        FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
        Dataset<Row> table = spark.createDataFrame(rows.stream().map(PortabilityRow::toRow).toList(),
                PortabilityRow.SCHEMA).coalesce(1);
        table.write().mode(SaveMode.Overwrite).parquet(new Path(dir, PARQUET).toString());
        table.write().mode(SaveMode.Overwrite).option("header", "true").csv(new Path(dir, CSV).toString());
        for (Map.Entry<String, Map<String, String>> cache : kernelCachesByFile.entrySet()) {
            if (!cache.getValue().isEmpty()) {
                try (OutputStream out = fs.create(new Path(dir, KERNEL_CACHES + "/" + cache.getKey()), true)) {
                    JSON.writerWithDefaultPrettyPrinter().writeValue(out, new TreeMap<>(cache.getValue()));
                }
            }
        }
        new PortabilityReport(rows).write(fs, dir);
    }

    /** kernels-<GPU model>.json, the name KernelTuner gives its default cache file. */
    static String cacheFileName(String gpuModel) {
        return "kernels-" + gpuModel.replaceAll("[^A-Za-z0-9._-]+", "_") + ".json";
    }

    /** The rows of a result set: results.parquet, or results.csv where there is no Parquet. */
    static List<PortabilityRow> readRows(SparkSession spark, String input) throws IOException {
        Path dir = new Path(input);
        FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
        Dataset<Row> table;
        if (fs.exists(new Path(dir, PARQUET))) {
            table = spark.read().parquet(new Path(dir, PARQUET).toString());
        } else if (fs.exists(new Path(dir, CSV))) {
            table = spark.read().option("header", "true").schema(PortabilityRow.SCHEMA)
                    .csv(new Path(dir, CSV).toString());
        } else {
            throw new IllegalArgumentException("--inputs " + input + " has neither " + PARQUET + " nor " + CSV
                    + ": is it the output folder of a portability run?");
        }
        List<PortabilityRow> rows = new ArrayList<>();
        for (Row r : table.collectAsList()) {
            rows.add(PortabilityRow.fromRow(r));
        }
        return rows;
    }

    /** The kernel caches of a result set, by file name (absent folder: none). */
    static Map<String, Map<String, String>> readKernelCaches(SparkSession spark, String input) throws IOException {
        Path dir = new Path(input, KERNEL_CACHES);
        FileSystem fs = dir.getFileSystem(spark.sparkContext().hadoopConfiguration());
        Map<String, Map<String, String>> caches = new TreeMap<>();
        if (!fs.exists(dir)) {
            return caches;
        }
        for (FileStatus f : fs.listStatus(dir)) {
            try (InputStream in = fs.open(f.getPath())) {
                caches.put(f.getPath().getName(), JSON.readValue(in, new TypeReference<Map<String, String>>() {
                }));
            }
        }
        return caches;
    }
}
