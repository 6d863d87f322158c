package io.moescore.arrow.spark;

import java.io.IOException;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

import io.moescore.arrow.ArrowIpcReader;

/**
 * Reads one Arrow file as Spark column batches over the Arrow vectors themselves (no copy). The one
 * {@link ColumnarBatch} is refilled by each {@link #next()}: a batch is valid until the next call. Owns a child
 * of Spark's Arrow root allocator, closed last, which makes leaks fail the task.
 */
final class ArrowPartitionReader implements PartitionReader<ColumnarBatch> {
    private final BufferAllocator allocator;
    private final ArrowIpcReader in;
    private final ColumnarBatch batch;

    private ArrowPartitionReader(BufferAllocator allocator, ArrowIpcReader in, ColumnarBatch batch) {
        this.allocator = allocator;
        this.in = in;
        this.batch = batch;
    }

    static ArrowPartitionReader open(String file, Configuration conf, StructType tableSchema, StructType readSchema)
            throws IOException {
        BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore arrow read " + file, 0,
                Long.MAX_VALUE);
        ArrowIpcReader in = null;
        try {
            in = ArrowIpcReader.open(HadoopFiles.open(file, conf), file, allocator);
            ColumnVector[] columns = columns(in, file, tableSchema, readSchema);
            return new ArrowPartitionReader(allocator, in, new ColumnarBatch(columns, 0));
        } catch (IOException | RuntimeException e) {
            try {
                if (in != null) {
                    in.close();
                }
                allocator.close();
            } catch (IOException | RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    /** The file's vectors for the columns read, after checking the file against the table's schema. */
    private static ColumnVector[] columns(ArrowIpcReader in, String file, StructType tableSchema,
                                          StructType readSchema) {
        StructType fileSchema = HadoopFiles.sparkSchema(in.schema(), file);
        ColumnVector[] columns = new ColumnVector[readSchema.length()];
        for (int i = 0; i < columns.length; i++) {
            StructField wanted = readSchema.fields()[i];
            FieldVector vector = in.root().getVector(wanted.name());
            DataType found = vector == null ? null : fileSchema.apply(wanted.name()).dataType();
            // catalogString leaves nullability out: a non-null column may feed a nullable one.
            if (found == null || !found.catalogString().equals(wanted.dataType().catalogString())) {
                throw new IllegalArgumentException(file + ": " + (found == null ? "no column " + wanted.name()
                        : "column " + wanted.name() + " has type " + found.catalogString() + ", expected "
                                + wanted.dataType().catalogString()) + ". The data set's schema (from its first"
                        + " file, or given) is " + tableSchema.catalogString() + "; this file's is "
                        + fileSchema.catalogString());
            }
            columns[i] = new ArrowColumnVector(vector);
        }
        return columns;
    }

    @Override
    public boolean next() throws IOException {
        if (!in.loadNextBatch()) {
            return false;
        }
        batch.setNumRows(in.root().getRowCount());
        return true;
    }

    @Override
    public ColumnarBatch get() {
        return batch;
    }

    /** Closes the batch, the file and then the allocator; safe before any {@link #next()} and twice. */
    @Override
    public void close() throws IOException {
        try {
            batch.close();
            in.close();
        } finally {
            allocator.close();
        }
    }
}
