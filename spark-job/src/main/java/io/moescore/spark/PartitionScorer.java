package io.moescore.spark;

import io.moescore.backend.GpuFaultException;
import io.moescore.engine.Engine;
import io.moescore.batch.ExpertLoad;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.SequenceScore;
import io.moescore.score.BatchPlanner;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.unsafe.types.UTF8String;
import scala.Option;

/**
 * Scores one partition: reads rows a window at a time (token arrays copied out of Spark's rows as primitive
 * arrays, never boxed), groups them into batches of similar length ({@link BatchPlanner}, as score-local does),
 * scores them on this executor's shared engine and emits one output row per input row, in input order: the input
 * row's columns followed by the score columns, or by one struct holding them. A row that cannot be scored gets
 * {@code error}; it never fails the task.
 */
final class PartitionScorer implements FlatMapFunction<Iterator<InternalRow>, InternalRow> {
    private final ScoringSpec spec;
    private final InputLayout layout;
    private final boolean scoresInOneStruct;
    private final TaskReports reports;

    /** @param reports where each task reports what it scored (window by window, and at its end), or null for none */
    PartitionScorer(ScoringSpec spec, InputLayout layout, boolean scoresInOneStruct, TaskReports reports) {
        this.spec = spec;
        this.layout = layout;
        this.scoresInOneStruct = scoresInOneStruct;
        this.reports = reports;
    }

    /** One input row as the scorer holds it: the row itself (copied: Spark reuses the one it hands out). */
    private record Pending(InternalRow input, int[] tokens, String error) {
    }

    @Override
    public Iterator<InternalRow> call(Iterator<InternalRow> rows) {
        TaskContext task = TaskContext.get();
        int device = gpuAddress(task);
        ExecutorEngines.Loaded loaded = ExecutorEngines.get(spec, device);
        Engine engine = loaded.engine();
        ScoreOptions options = new ScoreOptions(spec.settings().tokenLogProbs(), spec.settings().topK());
        ExpertLoad load = new ExpertLoad(engine.config().numLayers(), engine.config().numExperts());
        long start = System.nanoTime();
        long[] counts = new long[3]; // rows, error rows, tokens

        return new Iterator<>() {
            private Iterator<InternalRow> ready = java.util.Collections.emptyIterator();
            private boolean reported;

            @Override
            public boolean hasNext() {
                while (!ready.hasNext() && rows.hasNext()) {
                    try {
                        ready = scoreWindow(readWindow(rows, loaded), engine, options, load, counts).iterator();
                    } catch (GpuFaultException e) {
                        throw GpuFaultContainment.contain(e);
                    }
                }
                if (!ready.hasNext() && !reported) {
                    reported = true;
                    report(task, engine, load, counts, start, System.nanoTime());
                }
                return ready.hasNext();
            }

            @Override
            public InternalRow next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return ready.next();
            }
        };
    }

    /** The GPU Spark assigned to this task, or 0 when it assigned none. */
    static int gpuAddress(TaskContext task) {
        if (task == null) {
            return 0;
        }
        Option<ResourceInformation> gpu = task.resources().get("gpu");
        if (gpu.isEmpty() || gpu.get().addresses().length == 0) {
            return 0;
        }
        String address = gpu.get().addresses()[0];
        try {
            return Integer.parseInt(address.trim());
        } catch (NumberFormatException e) {
            throw new IllegalStateException("Spark assigned GPU address '" + address + "', which is not a device ordinal");
        }
    }

    private List<Pending> readWindow(Iterator<InternalRow> rows, ExecutorEngines.Loaded loaded) {
        List<Pending> window = new ArrayList<>();
        long tokens = 0;
        while (rows.hasNext() && !BatchPlanner.windowFull(tokens, spec.settings().batchTokens())) {
            Pending p = read(rows.next(), loaded);
            window.add(p);
            tokens += p.tokens() == null ? 0 : p.tokens().length;
        }
        return window;
    }

    private Pending read(InternalRow reused, ExecutorEngines.Loaded loaded) {
        InternalRow row = reused.copy();
        RowTokens read = RowTokens.of(row, layout, loaded::tokenizer);
        return new Pending(row, read.tokens(), read.error());
    }

    private List<InternalRow> scoreWindow(List<Pending> window, Engine engine, ScoreOptions options, ExpertLoad load,
                                          long[] counts) {
        SequenceScore[] scores = BatchPlanner.score(engine,
                window.stream().map(p -> p.error() == null ? p.tokens() : null).toList(), options,
                spec.settings().batchTokens(), load);
        List<InternalRow> out = new ArrayList<>(window.size());
        long tokensBefore = counts[2];
        for (int i = 0; i < window.size(); i++) {
            Pending p = window.get(i);
            SequenceScore s = scores[i];
            String error = s == null ? p.error() : s.error();
            counts[0]++;
            counts[2] += p.tokens() == null ? 0 : p.tokens().length;
            if (error != null) {
                counts[1]++;
            }
            out.add(outputRow(p, s, error));
        }
        if (reports != null) {
            reports.scored(window.size(), counts[2] - tokensBefore);
        }
        return out;
    }

    private InternalRow outputRow(Pending p, SequenceScore s, String error) {
        InternalRow scores = scoreRow(p, s, error);
        return new JoinedRow(p.input(), scoresInOneStruct ? new GenericInternalRow(new Object[] {scores}) : scores);
    }

    /** The score columns in {@link DatasetScorer#scoreFields} order. */
    private InternalRow scoreRow(Pending p, SequenceScore s, String error) {
        boolean ok = error == null;
        List<Object> values = new ArrayList<>(7);
        values.add(p.tokens() == null ? 0 : p.tokens().length);
        values.add(ok ? s.sumLogProbOrNull() : null);  // as every output writes them (SequenceScore)
        values.add(ok ? s.meanNllOrNull() : null);
        values.add(ok ? s.perplexityOrNull() : null);
        if (spec.settings().tokenLogProbs()) {
            values.add(ok ? UnsafeArrayData.fromPrimitiveArray(s.tokenLogProbs()) : null);
        }
        if (spec.settings().topK() > 0) {
            values.add(ok ? UnsafeArrayData.fromPrimitiveArray(s.topTokens()) : null);
        }
        values.add(error == null ? null : UTF8String.fromString(error));
        return new GenericInternalRow(values.toArray());
    }

    private void report(TaskContext task, Engine engine, ExpertLoad load, long[] counts, long startNanos,
                        long endNanos) {
        if (task == null || reports == null) {
            return;
        }
        long[][] perLayer = new long[load.numLayers()][];
        for (int l = 0; l < perLayer.length; l++) {
            perLayer[l] = load.layer(l);
        }
        org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
        String executor = env == null ? "driver" : env.executorId();
        String host = task.getLocalProperty("spark.driver.host");
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException ignored) {
            // keep what Spark told us
        }
        reports.stats().add(new TaskStats(task.stageId(), task.partitionId(), task.attemptNumber(), executor, host,
                engine.backend().deviceName(), counts[0], counts[1], counts[2], startNanos, endNanos, perLayer));
    }
}
