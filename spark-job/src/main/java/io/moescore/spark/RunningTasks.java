package io.moescore.spark;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import scala.Tuple4;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The scoring jobs started since this listener was added (jobs of the job group {@link JobProgress#JOB_GROUP}; an
 * application that scores several times counts each run's own), and rows and tokens of the scoring tasks still
 * running, from the values of {@link TaskReports}' row and token
 * accumulators that executor heartbeats carry ({@code spark.executor.heartbeatInterval}, default 10 s). A task
 * leaves the count when it ends (its rows then count through its {@link TaskStats}).
 */
final class RunningTasks extends SparkListener {
    private final long rowsId;
    private final long tokensId;
    private final Map<Long, long[]> running = new ConcurrentHashMap<>();
    private final Set<Long> ended = ConcurrentHashMap.newKeySet();
    private final Set<Integer> jobs = ConcurrentHashMap.newKeySet();

    RunningTasks(TaskReports reports) {
        this.rowsId = reports.rows().id();
        this.tokensId = reports.tokens().id();
    }

    @Override
    public void onJobStart(SparkListenerJobStart start) {
        if (start.properties() != null
                && JobProgress.JOB_GROUP.equals(start.properties().getProperty("spark.jobGroup.id"))) {
            jobs.add(start.jobId());
        }
    }

    /** The ids of the scoring jobs started since this listener was added. */
    Set<Integer> jobs() {
        return jobs;
    }

    @Override
    public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
        for (Tuple4<Object, Object, Object, Seq<AccumulableInfo>> task
                : CollectionConverters.asJava(update.accumUpdates())) {
            long taskId = (Long) task._1();
            long[] counts = new long[2];
            boolean ours = false;
            for (AccumulableInfo info : CollectionConverters.asJava(task._4())) {
                int slot = info.id() == rowsId ? 0 : info.id() == tokensId ? 1 : -1;
                if (slot >= 0 && info.update().isDefined()) {
                    counts[slot] = ((Number) info.update().get()).longValue();
                    ours = true;
                }
            }
            if (ours && !ended.contains(taskId)) {
                running.put(taskId, counts);
            }
        }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
        ended.add(end.taskInfo().taskId());
        running.remove(end.taskInfo().taskId());
    }

    /** Rows and tokens scored so far by the tasks still running. */
    long[] counts() {
        long[] sum = new long[2];
        for (long[] c : running.values()) {
            sum[0] += c[0];
            sum[1] += c[1];
        }
        return sum;
    }
}
