package io.moescore.spark.sparsify;

import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.engine.Engine;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.spark.ExecutorEngines;
import io.moescore.spark.ScoringSpec;
import io.moescore.sparsify.ExpertHessians;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * A calibration task: runs its partition's sequences through this executor's shared engine (CPU or CUDA backend)
 * in batches of up to batchTokens and collects X^T X per (layer, expert, projection input) for the pass's layers,
 * then hands each Hessian to the shuffle in bands ({@link HessianBlock}), dropping it once handed over.
 */
final class CalibrationPass implements PairFlatMapFunction<Iterator<int[]>, HessianBlock, double[]> {
    private static final long serialVersionUID = 1L;

    private final ScoringSpec spec;
    private final int[] layers;
    private final String releaseModelUri;
    private final CollectionAccumulator<CalibrationStats> stats;

    /**
     * @param spec            the model the pass runs through (for a sequential pass, the partly pruned copy)
     * @param releaseModelUri a model the previous pass used that this executor no longer needs (null: none)
     * @param stats           where each task reports what it ran, or null
     */
    CalibrationPass(ScoringSpec spec, int[] layers, String releaseModelUri,
                    CollectionAccumulator<CalibrationStats> stats) {
        this.spec = spec;
        this.layers = layers.clone();
        this.releaseModelUri = releaseModelUri;
        this.stats = stats;
    }

    @Override
    public Iterator<Tuple2<HessianBlock, double[]>> call(Iterator<int[]> rows) {
        long start = System.currentTimeMillis();
        if (releaseModelUri != null) {
            ExecutorEngines.release(releaseModelUri);
        }
        ExecutorEngines.Loaded loaded = ExecutorEngines.forTask(spec);
        ExpertHessians hessians = new ExpertHessians(layers);
        long[] counts = new long[3];   // sequences, skipped, tokens
        List<int[]> batch = new ArrayList<>();
        long batchTokens = 0;
        while (rows.hasNext()) {
            int[] sequence = rows.next();
            if (!batch.isEmpty() && batchTokens + sequence.length > spec.settings().batchTokens()) {
                run(loaded.engine(), batch, batchTokens, hessians, counts);
                batch.clear();
                batchTokens = 0;
            }
            batch.add(sequence);
            batchTokens += sequence.length;
        }
        run(loaded.engine(), batch, batchTokens, hessians, counts);
        report(loaded.engine().backend().deviceName(), counts, start);
        return bands(hessians);
    }

    private void run(Engine engine, List<int[]> batch, long tokens, ExpertHessians hessians, long[] counts) {
        if (batch.isEmpty()) {
            return;
        }
        ScoreBatch scored;
        try {
            scored = engine.score(TokenBatch.of(batch.toArray(int[][]::new)), ScoreOptions.SUMS_ONLY, hessians);
        } catch (DeviceOutOfMemoryException e) {
            throw new IllegalStateException("a calibration batch of " + tokens + " tokens does not fit in "
                    + engine.backend().deviceName() + "'s memory: lower --batch-tokens (" + spec.settings().batchTokens()
                    + " now): " + e.getMessage(), e);
        }
        for (SequenceScore s : scored.scores()) {
            if (s.ok()) {
                counts[0]++;
                counts[2] += s.numTokens();
            } else {
                counts[1]++;
            }
        }
    }

    private void report(String device, long[] counts, long start) {
        TaskContext task = TaskContext.get();
        if (stats == null || task == null) {
            return;
        }
        SparkEnv env = SparkEnv.get();
        stats.add(new CalibrationStats(task.stageId(), task.partitionId(), task.attemptNumber(),
                env == null ? "driver" : env.executorId(), device, counts[0], counts[1], counts[2], start,
                System.currentTimeMillis()));
    }

    /** Each Hessian in bands of rows, built one at a time; a Hessian's memory is let go after its last band. */
    private static Iterator<Tuple2<HessianBlock, double[]>> bands(ExpertHessians hessians) {
        List<Object[]> pending = new ArrayList<>();   // {key, hessian, cols}
        hessians.forEach((key, h, cols) -> pending.add(new Object[] {key, h, cols}));
        return new Iterator<>() {
            private int index;
            private int row;

            @Override
            public boolean hasNext() {
                return index < pending.size();
            }

            @Override
            public Tuple2<HessianBlock, double[]> next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Object[] entry = pending.get(index);
                ExpertHessians.Key key = (ExpertHessians.Key) entry[0];
                double[] h = (double[]) entry[1];
                int cols = (Integer) entry[2];
                int rows = Math.min(HessianBlock.bandRows(cols), cols - row);
                HessianBlock block = new HessianBlock(key.layer(), key.expert(), key.input(), cols, row);
                double[] values = rows == cols ? h : Arrays.copyOfRange(h, row * cols, (row + rows) * cols);
                row += rows;
                if (row == cols) {
                    pending.set(index++, null);
                    row = 0;
                }
                return new Tuple2<>(block, values);
            }
        };
    }
}
