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
    private final String jobTemporaryDir;
    private final String queryId;
    private final StructType schema;
    private final String timeZone;
    private final int maxRecordsPerBatch;
    private final SerializableConfiguration hadoopConf;

    ArrowDataWriterFactory(String jobTemporaryDir, String queryId, StructType schema, String timeZone,
                           int maxRecordsPerBatch, SerializableConfiguration hadoopConf) {
        this.jobTemporaryDir = jobTemporaryDir;
        this.queryId = queryId;
        this.schema = schema;
        this.timeZone = timeZone;
        this.maxRecordsPerBatch = maxRecordsPerBatch;
        this.hadoopConf = hadoopConf;
    }

    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
        String temporaryFile = jobTemporaryDir + "/" + String.format("part-%05d-%d.arrow", partitionId, taskId);
        String finalName = String.format("part-%05d-%s.arrow", partitionId, queryId);
        try {
            return ArrowDataWriter.open(temporaryFile, finalName, schema, timeZone, maxRecordsPerBatch,
                    hadoopConf.value());
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }
}
