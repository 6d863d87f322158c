package io.moescore.bench.portability;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * One line of the portability table: where it ran (run label, host, executor, GPU address), what ran it (the
 * device facts), what was measured (kernel, shape, tokens, dtype, pattern) and the figures. Figures are null where
 * they do not apply (no speedup on a dense row) or where the measurement failed ({@code error} says why).
 */
public record PortabilityRow(String runLabel, String host, String executorId, String gpuAddress, String backend,
                             String deviceName, String computeCapability, Integer smCount, Long memoryBytes,
                             Integer smClockMhz, Integer memoryClockMhz, String driverVersion, String cudaVersion,
                             String kernel, String shape, Integer tokens, String dtype, String pattern,
                             Double medianMs, Double tflops, Double gbps, Double speedup24OverDense,
                             String tileConfig, String error) implements Serializable {

    public static final String EXPERT_LAYER = "expert-layer";
    public static final String ATTENTION = "attention";
    public static final String LM_HEAD = "lm_head";
    public static final String MODEL = "model";
    public static final String DENSE = "dense";
    public static final String SPARSE_24 = "2:4";

    public static final StructType SCHEMA = new StructType(new StructField[] {
        field("run_label", DataTypes.StringType), field("host", DataTypes.StringType),
        field("executor_id", DataTypes.StringType), field("gpu_address", DataTypes.StringType),
        field("backend", DataTypes.StringType), field("device_name", DataTypes.StringType),
        field("compute_capability", DataTypes.StringType), field("sm_count", DataTypes.IntegerType),
        field("memory_bytes", DataTypes.LongType), field("sm_clock_mhz", DataTypes.IntegerType),
        field("memory_clock_mhz", DataTypes.IntegerType), field("driver_version", DataTypes.StringType),
        field("cuda_version", DataTypes.StringType), field("kernel", DataTypes.StringType),
        field("shape", DataTypes.StringType), field("tokens", DataTypes.IntegerType),
        field("dtype", DataTypes.StringType), field("pattern", DataTypes.StringType),
        field("median_ms", DataTypes.DoubleType), field("tflops", DataTypes.DoubleType),
        field("gbps", DataTypes.DoubleType), field("speedup_24_over_dense", DataTypes.DoubleType),
        field("tile_config", DataTypes.StringType), field("error", DataTypes.StringType)});

    private static StructField field(String name, DataType type) {
        return DataTypes.createStructField(name, type, true);
    }

    /** The GPU (or CPU) this row was measured on, unique within a result set: one bar per device in the charts. */
    public String deviceKey() {
        return runLabel + ": " + deviceName + " [" + host + " exec " + executorId
                + (gpuAddress == null ? "" : " gpu " + gpuAddress) + "]";
    }

    public PortabilityRow withSpeedup(Double speedup) {
        return new PortabilityRow(runLabel, host, executorId, gpuAddress, backend, deviceName, computeCapability,
                smCount, memoryBytes, smClockMhz, memoryClockMhz, driverVersion, cudaVersion, kernel, shape, tokens,
                dtype, pattern, medianMs, tflops, gbps, speedup, tileConfig, error);
    }

    public PortabilityRow withRunLabel(String label) {
        return new PortabilityRow(label, host, executorId, gpuAddress, backend, deviceName, computeCapability,
                smCount, memoryBytes, smClockMhz, memoryClockMhz, driverVersion, cudaVersion, kernel, shape, tokens,
                dtype, pattern, medianMs, tflops, gbps, speedup24OverDense, tileConfig, error);
    }

    public Row toRow() {
        return RowFactory.create(runLabel, host, executorId, gpuAddress, backend, deviceName, computeCapability,
                smCount, memoryBytes, smClockMhz, memoryClockMhz, driverVersion, cudaVersion, kernel, shape, tokens,
                dtype, pattern, medianMs, tflops, gbps, speedup24OverDense, tileConfig, error);
    }

    /** A row of a DataFrame with {@link #SCHEMA}'s columns (by name, so column order does not matter). */
    public static PortabilityRow fromRow(Row r) {
        return new PortabilityRow(r.getAs("run_label"), r.getAs("host"), r.getAs("executor_id"),
                r.getAs("gpu_address"), r.getAs("backend"), r.getAs("device_name"), r.getAs("compute_capability"),
                r.getAs("sm_count"), r.getAs("memory_bytes"), r.getAs("sm_clock_mhz"), r.getAs("memory_clock_mhz"),
                r.getAs("driver_version"), r.getAs("cuda_version"), r.getAs("kernel"), r.getAs("shape"),
                r.getAs("tokens"), r.getAs("dtype"), r.getAs("pattern"), r.getAs("median_ms"), r.getAs("tflops"),
                r.getAs("gbps"), r.getAs("speedup_24_over_dense"), r.getAs("tile_config"), r.getAs("error"));
    }

    /** Column names in table order, for the HTML table and CSV readers. */
    public static List<String> columns() {
        return List.of(SCHEMA.fieldNames());
    }
}
