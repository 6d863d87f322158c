package io.moescore.spark;

import java.util.Locale;
import java.util.function.Consumer;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;
import org.apache.spark.util.CollectionAccumulator;

/**
 * A driver-side line at a steady interval while the scoring job runs: tasks done of all, rows, tokens, tokens/s,
 * an ETA from the task fraction, and each executor's throughput so that a slow GPU or executor stands out.
 * Rows and tokens count finished tasks (the task stats accumulator); the task counts come from Spark's status
 * tracker for the job group the scoring job runs in. Conf {@code spark.moescore.progressSeconds} (default 30;
 * 0 turns it off).
 */
final class JobProgress implements AutoCloseable {
    static final String JOB_GROUP = "moescore-scoring";

    private final Thread thread;
    private volatile boolean done;

    private JobProgress(SparkContext sc, CollectionAccumulator<TaskStats> stats, double intervalSeconds,
                        Consumer<String> sink) {
        long start = System.nanoTime();
        thread = new Thread(() -> {
            long intervalMillis = (long) (intervalSeconds * 1000);
            while (!done) {
                try {
                    Thread.sleep(intervalMillis);
                } catch (InterruptedException e) {
                    return;
                }
                if (!done) {
                    sink.accept(line(sc.statusTracker(), JobSummary.of(stats.value(), (System.nanoTime() - start) / 1e9)));
                }
            }
        }, "moescore-progress");
        thread.setDaemon(true);
    }

    /** Starts reporting (nothing when the interval is 0 or less). */
    static JobProgress start(SparkContext sc, CollectionAccumulator<TaskStats> stats, double intervalSeconds,
                             Consumer<String> sink) {
        JobProgress p = new JobProgress(sc, stats, intervalSeconds, sink);
        if (intervalSeconds > 0) {
            p.thread.start();
        }
        return p;
    }

    static String line(SparkStatusTracker tracker, JobSummary sofar) {
        int total = 0;
        int finished = 0;
        for (int jobId : tracker.getJobIdsForGroup(JOB_GROUP)) {
            SparkJobInfo job = tracker.getJobInfo(jobId).getOrElse(() -> null);
            if (job == null) {
                continue;
            }
            for (int stageId : job.stageIds()) {
                SparkStageInfo stage = tracker.getStageInfo(stageId).getOrElse(() -> null);
                if (stage != null) {
                    total += stage.numTasks();
                    finished += stage.numCompletedTasks();
                }
            }
        }
        return format(finished, total, sofar);
    }

    static String format(int finishedTasks, int totalTasks, JobSummary sofar) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "moescore: progress %d/%d tasks, %,d rows, %,d tokens, %,.0f tokens/s", finishedTasks, totalTasks,
                sofar.rows(), sofar.tokens(), sofar.tokensPerSecond()));
        if (finishedTasks > 0 && totalTasks > finishedTasks) {
            long eta = Math.round(sofar.wallSeconds() * (totalTasks - finishedTasks) / finishedTasks);
            sb.append(String.format(Locale.ROOT, ", ETA %d:%02d:%02d", eta / 3600, eta / 60 % 60, eta % 60));
        }
        for (JobSummary.ExecutorLine e : sofar.executors()) {
            sb.append(String.format(Locale.ROOT, "; executor %s on %s: %,.0f tokens/s", e.executorId(), e.device(),
                    e.tokensPerSecond()));
        }
        return sb.toString();
    }

    @Override
    public void close() {
        done = true;
        thread.interrupt();
    }
}
