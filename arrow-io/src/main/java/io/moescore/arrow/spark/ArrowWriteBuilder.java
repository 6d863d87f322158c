package io.moescore.arrow.spark;

import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.SupportsTruncate;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.util.ArrowUtils;

/** Configures one write: append, or (after {@link #truncate()}, SaveMode.Overwrite) replace what is there. */
final class ArrowWriteBuilder implements SupportsTruncate {
    private final ArrowOptions options;
    private final LogicalWriteInfo info;
    private boolean truncate;

    ArrowWriteBuilder(ArrowOptions options, LogicalWriteInfo info) {
        this.options = options;
        this.info = info;
    }

    @Override
    public WriteBuilder truncate() {
        truncate = true;
        return this;
    }

    @Override
    public Write build() {
        String timeZone = SQLConf.get().sessionLocalTimeZone();
        // Fails here, on the driver, for a column type Arrow cannot hold, rather than in every task.
        ArrowUtils.toArrowSchema(info.schema(), timeZone, true, false);
        return new ArrowBatchWrite(options.outputPath(), info.queryId(), info.schema(), truncate,
                options.hadoopConf(), timeZone, options.maxRecordsPerBatch());
    }
}
