package io.moescore.spark;

import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.catalyst.InternalRow;

/**
 * Counts the output rows of a split on their way to the writer, so that {@link SplitCommitProtocol} can record them
 * with the committed split (a later run reports reused rows from that record). The writer and the commit run in the
 * same task after the rows, so the counts are handed over in this JVM, keyed by task attempt.
 */
final class SplitRowCounter implements FlatMapFunction<Iterator<InternalRow>, InternalRow> {
    /** What one split's output holds. */
    record Counts(long rows, long errorRows, long tokens) {
    }

    private static final Map<Long, long[]> BY_TASK_ATTEMPT = new ConcurrentHashMap<>();

    private final int numTokensField;
    private final int errorField;

    SplitRowCounter(int numTokensField, int errorField) {
        this.numTokensField = numTokensField;
        this.errorField = errorField;
    }

    @Override
    public Iterator<InternalRow> call(Iterator<InternalRow> rows) {
        long[] counts = track();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return rows.hasNext();
            }

            @Override
            public InternalRow next() {
                InternalRow row = rows.next();
                counts[0]++;
                if (!row.isNullAt(errorField)) {
                    counts[1]++;
                }
                counts[2] += row.getInt(numTokensField);
                return row;
            }
        };
    }

    /**
     * The counts of the current task's output (rows, error rows, tokens), for its writer to add to; what
     * {@link #ofCurrentTask} returns until the task completes.
     */
    static long[] track() {
        TaskContext task = TaskContext.get();
        long[] counts = new long[3];
        BY_TASK_ATTEMPT.put(task.taskAttemptId(), counts);
        task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) t ->
                BY_TASK_ATTEMPT.remove(t.taskAttemptId()));
        return counts;
    }

    /** The counts of the current task's rows (all zero when it had none). */
    static Counts ofCurrentTask() {
        long[] c = BY_TASK_ATTEMPT.getOrDefault(TaskContext.get().taskAttemptId(), new long[3]);
        return new Counts(c[0], c[1], c[2]);
    }
}
