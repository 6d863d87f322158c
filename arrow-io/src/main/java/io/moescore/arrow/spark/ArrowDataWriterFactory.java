package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

/** Makes each task's {@link ArrowDataWriter} on the executors; serialized to them, so it holds plain values only. */
final class ArrowDataWriterFactory implements DataWriterFactory {
    private final ArrowFileCommit files;
    private final StructType schema;
    private final String timeZone;
    private final int maxRecordsPerBatch;
    private final SerializableConfiguration hadoopConf;

    ArrowDataWriterFactory(ArrowFileCommit files, StructType schema, String timeZone, int maxRecordsPerBatch,
                           SerializableConfiguration hadoopConf) {
        this.files = files;
        this.schema = schema;
        this.timeZone = timeZone;
        this.maxRecordsPerBatch = maxRecordsPerBatch;
        this.hadoopConf = hadoopConf;
    }

    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
        try {
            return ArrowDataWriter.open(files.temporaryFile(partitionId, taskId, 0), files.finalName(partitionId, 0),
                    schema, timeZone, maxRecordsPerBatch, hadoopConf.value());
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }
}
