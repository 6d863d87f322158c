package io.moescore.spark.sparsify;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;

/**
 * A driver-side line at a steady interval while one stage of the sparsify job runs (its Spark jobs run in a job
 * group of their own): tasks done of all per Spark stage, and what the stage's accumulators count so far (they
 * count finished tasks). Conf {@code spark.moescore.progressSeconds} (default 30; 0 turns it off).
 */
final class StageProgress implements AutoCloseable {
    private static final AtomicInteger GROUPS = new AtomicInteger();

    private final SparkContext sc;
    private final Thread thread;
    private volatile boolean done;

    private StageProgress(SparkContext sc, String group, String stage, double intervalSeconds, Supplier<String> sofar,
                          Consumer<String> sink) {
        this.sc = sc;
        thread = new Thread(() -> {
            while (!done) {
                try {
                    Thread.sleep((long) (intervalSeconds * 1000));
                } catch (InterruptedException e) {
                    return;
                }
                if (!done) {
                    String extra = sofar.get();
                    sink.accept("moescore sparsify: " + stage + ": " + tasks(sc.statusTracker(), group)
                            + (extra.isEmpty() ? "" : ", " + extra));
                }
            }
        }, "moescore-sparsify-progress");
        thread.setDaemon(true);
    }

    /** Runs the Spark jobs this thread starts from now on in a new job group, reporting on them. */
    static StageProgress start(SparkContext sc, String stage, double intervalSeconds, Supplier<String> sofar,
                               Consumer<String> sink) {
        String group = "moescore-sparsify-" + GROUPS.incrementAndGet();
        sc.setJobGroup(group, "moescore sparsify: " + stage, false);
        StageProgress p = new StageProgress(sc, group, stage, intervalSeconds, sofar, sink);
        if (intervalSeconds > 0) {
            p.thread.start();
        }
        return p;
    }

    /** "a/b tasks" per Spark stage of the group's jobs, in stage order. */
    static String tasks(SparkStatusTracker tracker, String group) {
        StringBuilder sb = new StringBuilder();
        for (int jobId : tracker.getJobIdsForGroup(group)) {
            SparkJobInfo job = tracker.getJobInfo(jobId).getOrElse(() -> null);
            if (job == null) {
                continue;
            }
            for (int stageId : job.stageIds()) {
                SparkStageInfo stage = tracker.getStageInfo(stageId).getOrElse(() -> null);
                if (stage != null) {
                    sb.append(sb.length() == 0 ? "" : ", ").append(stage.numCompletedTasks()).append('/')
                            .append(stage.numTasks()).append(" tasks");
                }
            }
        }
        return sb.length() == 0 ? "starting" : sb.toString();
    }

    @Override
    public void close() {
        done = true;
        thread.interrupt();
        sc.clearJobGroup();
    }
}
