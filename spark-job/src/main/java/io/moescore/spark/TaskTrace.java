package io.moescore.spark;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.placement.RoutingRecord;
import io.moescore.score.BatchPlanner;
import io.moescore.spark.trace.TraceWriter;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * One task attempt's routing trace: each batch the task scores becomes one {@link RoutingRecord} per MoE layer
 * (layers no token reached, the dense ones, are left out), batch ids counting from 0 in scoring order. The file is
 * opened at the first batch and complete once {@link #close()}d. Not thread-safe (one task).
 */
final class TaskTrace implements AutoCloseable {
    /** Opens the file on first use. */
    interface Opener {
        TraceWriter open() throws IOException;
    }

    private final Opener opener;
    private final String executor;
    private final int device;
    private final int partition;
    private TraceWriter writer;
    private long batches;
    private long nanos;
    private boolean closed;

    TaskTrace(Opener opener, String executor, int device, int partition) {
        this.opener = opener;
        this.executor = executor;
        this.device = device;
        this.partition = partition;
    }

    /** {@code scorer}, recording each batch's expert load here. */
    BatchPlanner.Scorer observe(BatchPlanner.Scorer scorer) {
        return (batch, options) -> {
            ScoreBatch result = scorer.score(batch, options);
            add(result.expertLoad());
            return result;
        };
    }

    void add(ExpertLoad load) {
        long start = System.nanoTime();
        try {
            if (writer == null) {
                writer = opener.open();
            }
            for (int layer = 0; layer < load.numLayers(); layer++) {
                long[] tokens = load.layer(layer);
                long sum = 0;
                for (long t : tokens) {
                    sum += t;
                }
                if (sum > 0) {
                    writer.write(new RoutingRecord(executor, device, partition, batches, layer, tokens));
                }
            }
            batches++;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the routing trace of partition " + partition + ": " + e, e);
        } finally {
            nanos += System.nanoTime() - start;
        }
    }

    /** Time spent tracing so far (recording and closing the file), in nanoseconds. */
    long nanos() {
        return nanos;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        long start = System.nanoTime();
        try {
            if (writer != null) {
                writer.close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot finish the routing trace of partition " + partition + ": " + e, e);
        } finally {
            nanos += System.nanoTime() - start;
        }
    }
}
