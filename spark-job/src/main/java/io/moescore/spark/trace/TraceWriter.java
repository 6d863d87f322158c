package io.moescore.spark.trace;

import io.moescore.placement.RoutingRecord;
import java.io.IOException;

/** Writes routing records into one trace file; the file is complete once closed. */
public interface TraceWriter extends AutoCloseable {
    void write(RoutingRecord record) throws IOException;

    @Override
    void close() throws IOException;
}
