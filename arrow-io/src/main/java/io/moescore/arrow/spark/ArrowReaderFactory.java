package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.SerializableConfiguration;

/**
 * Makes the columnar reader of each file on the executors. Serialized to them, so it holds only plain values:
 * allocators and files are opened in {@link #createColumnarReader}.
 */
final class ArrowReaderFactory implements PartitionReaderFactory {
    private final StructType tableSchema;
    private final StructType readSchema;
    private final SerializableConfiguration hadoopConf;

    ArrowReaderFactory(StructType tableSchema, StructType readSchema, SerializableConfiguration hadoopConf) {
        this.tableSchema = tableSchema;
        this.readSchema = readSchema;
        this.hadoopConf = hadoopConf;
    }

    @Override
    public boolean supportColumnarReads(InputPartition partition) {
        return true;
    }

    @Override
    public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
        String file = ((ArrowFilePartition) partition).path();
        try {
            return ArrowPartitionReader.open(file, hadoopConf.value(), tableSchema, readSchema);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
        throw new UnsupportedOperationException("the arrow data source reads columnar batches only");
    }
}
