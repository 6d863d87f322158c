package io.moescore.spark.sparsify;

import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.engine.Engine;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.RoutedInputs;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.spark.ExecutorEngines;
import io.moescore.spark.ScoringSpec;
import io.moescore.sparsify.ExactGram;
import io.moescore.sparsify.ExpertHessians;
import io.moescore.sparsify.ExpertInputs;
import io.moescore.sparsify.Sparsifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.PairFlatMapFunction;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * A calibration task: runs its partition's sequences (in calibration order) through this executor's shared engine
 * (CPU or CUDA backend) in batches of up to batchTokens and collects, for the pass's layers, each (layer, expert,
 * projection input)'s X^T X summed exactly ({@link ExpertHessians}; wanda: only its diagonal) and, to reconstruct,
 * each sequence's inputs to each expert (the first {@link Sparsifier#RECONSTRUCTION_TOKENS} per expert this task
 * sees, which include every one of its tokens among the expert's first that many overall). It hands each Hessian to
 * the shuffle in bands ({@link HessianBlock}), dropping it once handed over, then the inputs.
 */
final class CalibrationPass implements PairFlatMapFunction<Iterator<Tuple2<Long, int[]>>, ExpertPart, Object> {
    private static final long serialVersionUID = 1L;

    private final ScoringSpec spec;
    private final int[] layers;
    private final Pruning pruning;
    private final String releaseModelUri;
    private final CollectionAccumulator<CalibrationStats> stats;

    /**
     * @param spec            the model the pass runs through (for a sequential pass, the partly pruned copy)
     * @param releaseModelUri a model the previous pass used that this executor no longer needs (null: none)
     * @param stats           where each task reports what it ran, or null
     */
    CalibrationPass(ScoringSpec spec, int[] layers, Pruning pruning, String releaseModelUri,
                    CollectionAccumulator<CalibrationStats> stats) {
        this.spec = spec;
        this.layers = layers.clone();
        this.pruning = pruning;
        this.releaseModelUri = releaseModelUri;
        this.stats = stats;
    }

    @Override
    public Iterator<Tuple2<ExpertPart, Object>> call(Iterator<Tuple2<Long, int[]>> rows) {
        long start = System.currentTimeMillis();
        if (releaseModelUri != null) {
            ExecutorEngines.release(releaseModelUri);
        }
        ExecutorEngines.Loaded loaded = ExecutorEngines.forTask(spec);
        ExpertHessians hessians = pruning.diagonalsOnly() ? ExpertHessians.diagonals(layers)
                : new ExpertHessians(layers);
        ExpertInputs inputs = pruning.reconstructs() ? new ExpertInputs(Sparsifier.RECONSTRUCTION_TOKENS, layers)
                : null;
        RoutedInputs sink = inputs == null ? hessians : RoutedInputs.both(hessians, inputs);
        List<Tuple2<Long, int[]>> sequences = new ArrayList<>();
        rows.forEachRemaining(sequences::add);
        sequences.sort(Comparator.comparingLong(Tuple2::_1));
        long[] counts = new long[3];   // sequences, skipped, tokens
        List<Tuple2<Long, int[]>> batch = new ArrayList<>();
        long batchTokens = 0;
        for (Tuple2<Long, int[]> sequence : sequences) {
            if (!batch.isEmpty() && batchTokens + sequence._2().length > spec.settings().batchTokens()) {
                run(loaded.engine(), batch, batchTokens, sink, inputs, counts);
                batch.clear();
                batchTokens = 0;
            }
            batch.add(sequence);
            batchTokens += sequence._2().length;
        }
        run(loaded.engine(), batch, batchTokens, sink, inputs, counts);
        report(loaded.engine().backend().deviceName(), counts, start);
        return parts(hessians, inputs);
    }

    private void run(Engine engine, List<Tuple2<Long, int[]>> batch, long tokens, RoutedInputs sink,
                     ExpertInputs inputs, long[] counts) {
        if (batch.isEmpty()) {
            return;
        }
        if (inputs != null) {
            inputs.name(batch.stream().mapToLong(Tuple2::_1).toArray());
        }
        ScoreBatch scored;
        try {
            scored = engine.score(TokenBatch.of(batch.stream().map(Tuple2::_2).toArray(int[][]::new)),
                    ScoreOptions.SUMS_ONLY, sink);
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

    /**
     * Each Hessian in bands of rows of its triangle (a diagonal in one band), built one at a time, a Hessian's
     * memory let go after its last band; then the expert inputs.
     */
    private static Iterator<Tuple2<ExpertPart, Object>> parts(ExpertHessians hessians, ExpertInputs inputs) {
        List<Object[]> pending = new ArrayList<>();   // {key, sums, cols}
        hessians.forEachExact((key, h, cols) -> pending.add(new Object[] {key, h, cols}));
        boolean diagonal = hessians.diagonalOnly();
        Iterator<ExpertInputs.Chunk> chunks = inputs == null ? java.util.Collections.emptyIterator()
                : inputs.chunks().iterator();
        return new Iterator<>() {
            private int index;
            private int row;

            @Override
            public boolean hasNext() {
                return index < pending.size() || chunks.hasNext();
            }

            @Override
            public Tuple2<ExpertPart, Object> next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                if (index >= pending.size()) {
                    ExpertInputs.Chunk c = chunks.next();
                    return new Tuple2<>(new ExpertPart.Inputs(c.layer(), c.expert()), c);
                }
                Object[] entry = pending.get(index);
                ExpertHessians.Key key = (ExpertHessians.Key) entry[0];
                long[] h = (long[]) entry[1];
                int cols = (Integer) entry[2];
                int rows = diagonal ? cols : Math.min(HessianBlock.bandRows(cols), cols - row);
                int from = diagonal ? 0 : ExactGram.rowOffset(row, cols);
                int to = diagonal ? cols : row + rows == cols ? ExactGram.entries(cols)
                        : ExactGram.rowOffset(row + rows, cols);
                HessianBlock block = new HessianBlock(key.layer(), key.expert(), key.input(), cols, from);
                long[] values = 2 * (to - from) == h.length ? h : Arrays.copyOfRange(h, 2 * from, 2 * to);
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
