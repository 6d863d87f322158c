package io.moescore.spark.sparsify;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;

/**
 * A driver-side line at a steady interval while one step of the sparsify job runs (its Spark jobs run in a job group
 * of their own): tasks done of all in the last Spark stages of its latest job, named (a pass: "calibration", then
 * "solve"), and what the step's accumulators count so far (finished tasks). Conf
 * {@code spark.moescore.progressSeconds} (default 30; 0 turns it off).
 */
final class StageProgress implements AutoCloseable {
    private static final AtomicInteger GROUPS = new AtomicInteger();

    private final SparkContext sc;
    private final Thread thread;
    private volatile boolean done;

    private StageProgress(SparkContext sc, String group, String step, List<String> stages, double intervalSeconds,
                          Supplier<String> sofar, Consumer<String> sink) {
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
                    sink.accept("moescore sparsify: " + step + ": " + tasks(sc.statusTracker(), group, stages)
                            + (extra.isEmpty() ? "" : ", " + extra));
                }
            }
        }, "moescore-sparsify-progress");
        thread.setDaemon(true);
    }

    /**
     * Runs the Spark jobs this thread starts from now on in a new job group, reporting on them.
     *
     * @param stages names of the last Spark stages of the step's job, in order (earlier ones, such as reading the
     *               cached input, are not shown)
     */
    static StageProgress start(SparkContext sc, String step, List<String> stages, double intervalSeconds,
                               Supplier<String> sofar, Consumer<String> sink) {
        String group = "moescore-sparsify-" + GROUPS.incrementAndGet();
        sc.setJobGroup(group, "moescore sparsify: " + step, false);
        StageProgress p = new StageProgress(sc, group, step, stages, intervalSeconds, sofar, sink);
        if (intervalSeconds > 0) {
            p.thread.start();
        }
        return p;
    }

    /** "name a/b tasks" for the named last stages of the group's latest job. */
    static String tasks(SparkStatusTracker tracker, String group, List<String> stages) {
        int[] jobs = tracker.getJobIdsForGroup(group);
        SparkJobInfo job = jobs.length == 0 ? null
                : tracker.getJobInfo(Arrays.stream(jobs).max().getAsInt()).getOrElse(() -> null);
        if (job == null) {
            return "starting";
        }
        int[] ids = job.stageIds().clone();
        Arrays.sort(ids);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < stages.size() && i < ids.length; i++) {
            SparkStageInfo stage = tracker.getStageInfo(ids[ids.length - stages.size() + i]).getOrElse(() -> null);
            sb.append(i == 0 ? "" : ", ").append(stages.get(i)).append(' ')
                    .append(stage == null ? 0 : stage.numCompletedTasks()).append('/')
                    .append(stage == null ? "?" : Integer.toString(stage.numTasks())).append(" tasks");
        }
        return sb.toString();
    }

    @Override
    public void close() {
        done = true;
        thread.interrupt();
        sc.clearJobGroup();
    }
}
