package io.moescore.spark;

import java.io.Serializable;
import org.apache.spark.SparkContext;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * What scoring tasks report to the driver: each task's {@link TaskStats} when it ends (the job summary), and rows
 * and tokens as each window of rows is scored, so that the live progress ({@link JobProgress}) moves before a task
 * ends (running tasks' values reach the driver with executor heartbeats); and, where the job keeps one, each
 * batch's expert loads into the routing trace ({@link RoutingTraceOutput}, null: none).
 */
record TaskReports(CollectionAccumulator<TaskStats> stats, LongAccumulator rows, LongAccumulator tokens,
                   RoutingTraceOutput trace) implements Serializable {
    static TaskReports register(SparkContext sc) {
        return register(sc, null);
    }

    static TaskReports register(SparkContext sc, RoutingTraceOutput trace) {
        return new TaskReports(sc.collectionAccumulator("moescore task stats"), sc.longAccumulator("moescore rows"),
                sc.longAccumulator("moescore tokens"), trace);
    }

    /** A window of rows scored (running count; retried tasks count again, so the summary uses the stats). */
    void scored(long windowRows, long windowTokens) {
        rows.add(windowRows);
        tokens.add(windowTokens);
    }
}
