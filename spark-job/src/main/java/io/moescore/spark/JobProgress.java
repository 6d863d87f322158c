package io.moescore.spark;

import java.util.Locale;
import java.util.function.Consumer;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;

/**
 * A driver-side line at a steady interval while the scoring job runs: tasks done of all, rows, tokens, tokens/s,
 * an ETA from the task fraction, and each executor's throughput so that a slow GPU or executor stands out.
 * Rows and tokens count finished tasks (their {@link TaskStats}) plus what running tasks have scored so far, window
 * by window ({@link RunningTasks}, as executor heartbeats bring it); the task counts come from Spark's status
 * tracker for the jobs of the scoring job group that started since this run's progress began. Conf
 * {@code spark.moescore.progressSeconds} (default 30; 0 turns it off).
 */
final class JobProgress implements AutoCloseable {
    static final String JOB_GROUP = "moescore-scoring";

    private final SparkContext sc;
    private final RunningTasks running;
    private final Thread thread;
    private volatile boolean done;

    private JobProgress(SparkContext sc, TaskReports reports, double intervalSeconds, Consumer<String> sink) {
        long start = System.nanoTime();
        this.sc = sc;
        this.running = new RunningTasks(reports);
        thread = new Thread(() -> {
            long intervalMillis = (long) (intervalSeconds * 1000);
            while (!done) {
                try {
                    Thread.sleep(intervalMillis);
                } catch (InterruptedException e) {
                    return;
                }
                if (!done) {
                    sink.accept(line(sc.statusTracker(), running.jobs(), JobSummary.of(reports.stats().value(),
                            (System.nanoTime() - start) / 1e9), running.counts()));
                }
            }
        }, "moescore-progress");
        thread.setDaemon(true);
    }

    /** Starts reporting (nothing when the interval is 0 or less). */
    static JobProgress start(SparkContext sc, TaskReports reports, double intervalSeconds, Consumer<String> sink) {
        JobProgress p = new JobProgress(sc, reports, intervalSeconds, sink);
        if (intervalSeconds > 0) {
            sc.addSparkListener(p.running);
            p.thread.start();
        }
        return p;
    }

    static String line(SparkStatusTracker tracker, java.util.Set<Integer> jobs, JobSummary sofar, long[] running) {
        int total = 0;
        int finished = 0;
        for (int jobId : jobs) {
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
        return format(finished, total, sofar, running[0], running[1]);
    }

    static String format(int finishedTasks, int totalTasks, JobSummary sofar) {
        return format(finishedTasks, totalTasks, sofar, 0, 0);
    }

    /** The line: finished tasks' totals ({@code sofar}) plus the rows and tokens of the tasks still running. */
    static String format(int finishedTasks, int totalTasks, JobSummary sofar, long runningRows, long runningTokens) {
        long tokens = sofar.tokens() + runningTokens;
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "moescore: progress %d/%d tasks, %,d rows, %,d tokens, %,.0f tokens/s", finishedTasks, totalTasks,
                sofar.rows() + runningRows, tokens, sofar.wallSeconds() > 0 ? tokens / sofar.wallSeconds() : 0));
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
        sc.removeSparkListener(running);
    }
}
