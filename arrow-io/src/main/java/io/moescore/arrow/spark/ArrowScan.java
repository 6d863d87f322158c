package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Builder, scan and batch of one read (they differ in nothing here): the files, one input partition each, read
 * columnar with only the columns the query needs.
 */
final class ArrowScan implements ScanBuilder, SupportsPushDownRequiredColumns, Scan, Batch {
    private final StructType tableSchema;
    private final ArrowOptions options;
    private StructType readSchema;

    ArrowScan(StructType tableSchema, ArrowOptions options) {
        this.tableSchema = tableSchema;
        this.options = options;
        this.readSchema = tableSchema;
    }

    /** Keeps the table's top-level columns that {@code required} names, whole (nested fields are not pruned). */
    @Override
    public void pruneColumns(StructType required) {
        Set<String> names = Arrays.stream(required.fieldNames()).collect(Collectors.toSet());
        readSchema = new StructType(Arrays.stream(tableSchema.fields())
                .filter(f -> names.contains(f.name()))
                .toArray(StructField[]::new));
    }

    @Override
    public Scan build() {
        return this;
    }

    @Override
    public StructType readSchema() {
        return readSchema;
    }

    @Override
    public String description() {
        return "ArrowScan " + String.join(", ", options.paths()) + " " + readSchema.simpleString();
    }

    @Override
    public ColumnarSupportMode columnarSupportMode() {
        return ColumnarSupportMode.SUPPORTED;
    }

    @Override
    public Batch toBatch() {
        return this;
    }

    /** One partition per file: a directory listing, no file is opened. */
    @Override
    public InputPartition[] planInputPartitions() {
        try {
            return HadoopFiles.listArrowFiles(options.paths(), options.hadoopConf()).stream()
                    .map(ArrowFilePartition::new)
                    .toArray(InputPartition[]::new);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    @Override
    public PartitionReaderFactory createReaderFactory() {
        return new ArrowReaderFactory(tableSchema, readSchema, new SerializableConfiguration(options.hadoopConf()));
    }
}
