package io.moescore.spark;

import io.moescore.backend.GpuFaultException;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import io.moescore.model.TextTokenizer;
import io.moescore.score.BatchPlanner;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Supplier;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.TaskCompletionListener;
import scala.Option;

/**
 * Scores one partition on this executor's shared engine and emits one output row per input row, in input order:
 * the input row's columns followed by the score columns, or by one struct holding them. A row that cannot be
 * scored gets {@code error}; it never fails the task. Two inputs, one scoring ({@link ScoringTask}):
 * <ul>
 *   <li>{@link Columnar}: the partition's column batches (a columnar scan: Arrow, Parquet). Tokens are read from
 *       the vectors ({@link BatchTokens}: in place for Arrow {@code list<int32>}), scores written into Arrow
 *       vectors, and each output row is a view of the input batch's columns and the score vectors: no object
 *       and no copy per row.</li>
 *   <li>{@link Rows}: any other DataFrame's rows (JSON, a repartitioned or computed input), copied a window at a
 *       time (Spark reuses the row it hands out), their token arrays packed into one window.</li>
 * </ul>
 * The scoring job's direct writers take the scores batch by batch instead ({@link #scored}: no rows at all).
 */
abstract class PartitionScorer<T> implements FlatMapFunction<Iterator<T>, InternalRow> {
    final ScoringSpec spec;
    final InputLayout layout;
    final String scoresStruct;
    final TaskReports reports;
    final EngineSource engines;

    /** Where a task gets what scores its batches: the executor's shared engine, or a stand-in (benchmarks). */
    interface EngineSource extends Serializable {
        Scoring open(ScoringSpec spec, int device);
    }

    /**
     * What a task scores with: batches, the expert load's shape, the device's name, the text tokenizer, the
     * model's context (max_position_embeddings: rows longer are scored as {@code --long-rows} says) and the routing
     * entries each device of the engine has computed so far (empty where its experts are on one device).
     */
    record Scoring(BatchPlanner.Scorer scorer, int numLayers, int numExperts, String device,
                   Supplier<TextTokenizer> tokenizer, int context, Supplier<long[]> entriesPerDevice) {
        Scoring(BatchPlanner.Scorer scorer, int numLayers, int numExperts, String device,
                Supplier<TextTokenizer> tokenizer, int context) {
            this(scorer, numLayers, numExperts, device, tokenizer, context, () -> new long[0]);
        }
    }

    /** The executor's shared engine ({@link ExecutorEngines}). */
    static final EngineSource EXECUTOR_ENGINES = (spec, device) -> {
        ExecutorEngines.Loaded loaded = ExecutorEngines.get(spec, device);
        Engine engine = loaded.engine(spec.settings().routing());
        return new Scoring(engine::score, engine.config().numLayers(), engine.config().numExperts(),
                loaded.devices().describe(), loaded::tokenizer, engine.config().maxPositions(),
                engine.expertStore()::entriesPerDevice);
    };

    /** @param reports where each task reports what it scored (window by window, and at its end), or null for none */
    PartitionScorer(ScoringSpec spec, InputLayout layout, String scoresStruct, TaskReports reports,
                    EngineSource engines) {
        this.spec = spec;
        this.layout = layout;
        this.scoresStruct = scoresStruct;
        this.reports = reports;
        this.engines = engines;
    }

    /** Scores a partition of column batches. */
    static final class Columnar extends PartitionScorer<ColumnarBatch> {
        Columnar(ScoringSpec spec, InputLayout layout, String scoresStruct, TaskReports reports,
                 EngineSource engines) {
            super(spec, layout, scoresStruct, reports, engines);
        }

        @Override
        Scored scoreNext(Iterator<ColumnarBatch> batches, ScoringTask task, Scoring scoring) {
            ColumnarBatch in = batches.next();
            task.input(in);
            BatchTokens tokens = new BatchTokens(in, layout, scoring.tokenizer());
            List<RowScore> scores = new ArrayList<>(in.numRows());
            while (tokens.hasNext()) {
                scores.addAll(Arrays.asList(task.score(tokens.next(spec.settings().batchTokens()))));
            }
            return new Scored(scores, in, null, task);
        }
    }

    /** Scores a partition of rows. */
    static final class Rows extends PartitionScorer<InternalRow> {
        Rows(ScoringSpec spec, InputLayout layout, String scoresStruct, TaskReports reports, EngineSource engines) {
            super(spec, layout, scoresStruct, reports, engines);
        }

        @Override
        Scored scoreNext(Iterator<InternalRow> rows, ScoringTask task, Scoring scoring) {
            List<InternalRow> inputs = new ArrayList<>();
            List<int[]> tokens = new ArrayList<>();
            List<String> errors = new ArrayList<>();
            List<Integer> contextLengths = new ArrayList<>();
            long read = 0;
            while (rows.hasNext() && !BatchPlanner.windowFull(read, spec.settings().batchTokens())) {
                InternalRow row = rows.next().copy();
                RowTokens t = RowTokens.of(row, layout, scoring.tokenizer());
                inputs.add(row);
                tokens.add(t.tokens());
                errors.add(t.error());
                contextLengths.add(t.contextLength());
                read += t.tokens() == null ? 0 : t.tokens().length;
            }
            task.input(inputs);
            RowScore[] scores = task.score(BatchTokens.Window.of(tokens.toArray(int[][]::new),
                    errors.toArray(String[]::new), layout.continuations()
                            ? contextLengths.stream().mapToInt(Integer::intValue).toArray() : null));
            return new Scored(Arrays.asList(scores), null, inputs, task);
        }
    }

    /**
     * One input batch's (or window's) scores, row i of the input scored as {@code scores.get(i)}, with the input they
     * belong to: its column batch ({@link Columnar}) or its rows, copied ({@link Rows}). Valid until the partition's
     * iterator moves on (the batch is a view of the scan's vectors).
     */
    static final class Scored {
        final List<RowScore> scores;
        final ColumnarBatch batch;
        final List<InternalRow> rows;
        private final ScoringTask task;

        Scored(List<RowScore> scores, ColumnarBatch batch, List<InternalRow> rows, ScoringTask task) {
            this.scores = scores;
            this.batch = batch;
            this.rows = rows;
            this.task = task;
        }

        int numRows() {
            return scores.size();
        }

        /**
         * The output rows: the input row's columns, then the score columns (Spark's views of the task's Arrow
         * vectors). A columnar input's rows are views of its batch and those vectors: no object and no copy per row.
         */
        Iterator<InternalRow> outputRows() {
            ColumnVector[] scoreColumns = task.fill(scores);
            if (batch != null) {
                ColumnVector[] columns = new ColumnVector[batch.numCols() + scoreColumns.length];
                for (int c = 0; c < batch.numCols(); c++) {
                    columns[c] = batch.column(c);
                }
                System.arraycopy(scoreColumns, 0, columns, batch.numCols(), scoreColumns.length);
                // views of this batch: the input iterator is not moved until every one has been consumed
                return new ColumnarBatch(columns, batch.numRows()).rowIterator();
            }
            JoinedRow joined = new JoinedRow();
            Iterator<InternalRow> scoreRows = new ColumnarBatch(scoreColumns, scores.size()).rowIterator();
            Iterator<InternalRow> input = rows.iterator();
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    return input.hasNext();
                }

                @Override
                public InternalRow next() {
                    return joined.apply(input.next(), scoreRows.next());
                }
            };
        }
    }

    /** The scores of the next batch or window of the input (called while the input has more). */
    abstract Scored scoreNext(Iterator<T> input, ScoringTask task, Scoring scoring);

    /** The partition's output rows (the DataFrame's rows: every input column, then the scores). */
    @Override
    public Iterator<InternalRow> call(Iterator<T> input) {
        Iterator<Scored> scored = scored(input);
        return new Iterator<>() {
            private Iterator<InternalRow> ready = Collections.emptyIterator();

            @Override
            public boolean hasNext() {
                while (!ready.hasNext() && scored.hasNext()) {
                    ready = scored.next().outputRows();
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

    /**
     * The partition's scores, batch by batch in input order (the direct writers read them: {@link VectorWriteTask}).
     * Opens the engine, counts, traces and reports the task (when the last batch has been taken), and closes its
     * vectors when the task completes.
     */
    Iterator<Scored> scored(Iterator<T> input) {
        TaskContext context = TaskContext.get();
        int device = gpuAddress(context);
        Scoring scoring = engines.open(spec, device);
        ScoreOptions options = new ScoreOptions(spec.settings().tokenLogProbs(), spec.settings().topK());
        ExpertLoad load = new ExpertLoad(scoring.numLayers(), scoring.numExperts());
        TaskTrace trace = context == null || reports == null || reports.trace() == null ? null
                : reports.trace().open(context, executorId(), device);
        ScoringTask task = new ScoringTask(trace == null ? scoring.scorer() : trace.observe(scoring.scorer()), options,
                spec.settings().rowLimits(scoring.context()), DatasetScorer.scoreLayout(spec.settings(), layout),
                spec.settings().batchTokens(), load, scoresStruct, reports, trace);
        if (context != null) {
            context.addTaskCompletionListener((TaskCompletionListener) c -> {
                try (task) {
                    if (trace != null) {
                        trace.close();  // a failed attempt's file: the driver drops it
                    }
                }
            });
        }
        long start = System.nanoTime();
        long[] entriesBefore = scoring.entriesPerDevice().get();
        return new Iterator<>() {
            private Scored ready;
            private boolean reported;

            @Override
            public boolean hasNext() {
                while (ready == null && input.hasNext()) {
                    try {
                        ready = scoreNext(input, task, scoring);
                    } catch (GpuFaultException e) {
                        throw GpuFaultContainment.contain(e);
                    }
                }
                if (ready == null && !reported) {
                    reported = true;
                    if (trace != null) {
                        trace.close();  // complete before the task reports: the driver keeps reported files only
                    }
                    long[] entriesAfter = scoring.entriesPerDevice().get();
                    report(context, scoring.device(), load, task.counts, start, System.nanoTime(),
                            trace == null ? 0 : trace.nanos(), entriesAfter.length == 0 ? null
                                    : new TaskStats.EngineEntries(executorId() + " device " + device, entriesBefore,
                                    entriesAfter));
                    if (context == null) {
                        task.close();
                    }
                }
                return ready != null;
            }

            @Override
            public Scored next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Scored next = ready;
                ready = null;
                return next;
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

    /** This executor's id as Spark names it, or "driver" (local mode's tasks run on the driver). */
    private static String executorId() {
        org.apache.spark.SparkEnv env = org.apache.spark.SparkEnv.get();
        return env == null ? "driver" : env.executorId();
    }

    private void report(TaskContext task, String device, ExpertLoad load, long[] counts, long startNanos,
                        long endNanos, long traceNanos, TaskStats.EngineEntries entries) {
        if (task == null || reports == null) {
            return;
        }
        long[][] perLayer = new long[load.numLayers()][];
        for (int l = 0; l < perLayer.length; l++) {
            perLayer[l] = load.layer(l);
        }
        String executor = executorId();
        String host = task.getLocalProperty("spark.driver.host");
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException ignored) {
            // keep what Spark told us
        }
        reports.stats().add(new TaskStats(task.stageId(), task.partitionId(), task.attemptNumber(), executor, host,
                device, counts[0], counts[1], counts[2], startNanos, endNanos, perLayer, traceNanos, entries));
    }
}
