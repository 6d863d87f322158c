package io.moescore.spark.sparsify;

import io.moescore.model.Checkpoint;
import io.moescore.model.TensorRef;
import io.moescore.spark.ModelFiles;
import io.moescore.sparsify.ExactGram;
import io.moescore.sparsify.ExpertHessians;
import io.moescore.sparsify.ExpertInputs;
import io.moescore.sparsify.ExpertTensor;
import io.moescore.sparsify.Sparsifier;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * A solve task: adds up its partition's Hessian bands exactly (one expert's Hessians, or one of them), reads the
 * weights that take each input (gate and up, or down) from the dense model and prunes them to the pattern: by
 * SparseGPT on the Hessian ({@link Sparsifier#pruneSparseGpt}), or by wanda on its diagonal. To reconstruct, it also
 * assembles the expert's calibration inputs from their per-sequence chunks ({@link ExpertInputs#assemble}). A
 * partition without bands (an expert no calibration token reached) yields nothing: the driver falls back to
 * magnitude for it.
 */
final class ExpertSolve implements FlatMapFunction<Iterator<Tuple2<ExpertPart, Object>>, SolvedExpert> {
    private static final long serialVersionUID = 1L;

    private final String modelUri;
    private final Map<String, String> hadoopConf;
    private final Pruning pruning;
    private final CollectionAccumulator<SolveStats> stats;

    /** @param modelUri the dense model whose weights are pruned (for a sequential job too: never a pruned copy) */
    ExpertSolve(String modelUri, Map<String, String> hadoopConf, Pruning pruning,
                CollectionAccumulator<SolveStats> stats) {
        this.modelUri = modelUri;
        this.hadoopConf = Map.copyOf(hadoopConf);
        this.pruning = pruning;
        this.stats = stats;
    }

    @Override
    public Iterator<SolvedExpert> call(Iterator<Tuple2<ExpertPart, Object>> parts) {
        Map<String, long[]> sums = new TreeMap<>();
        Map<String, Integer> widths = new TreeMap<>();
        List<ExpertInputs.Chunk> chunks = new ArrayList<>();
        ExpertPart first = null;
        while (parts.hasNext()) {
            Tuple2<ExpertPart, Object> part = parts.next();
            ExpertPart key = part._1();
            if (first == null) {
                first = key;
            } else if (key.layer() != first.layer() || key.expert() != first.expert()) {
                throw new IllegalStateException("one solve partition holds two experts: " + first + " and " + key);
            }
            if (key instanceof HessianBlock b) {
                long[] sum = sums.computeIfAbsent(b.input(), k -> pruning.diagonalsOnly() ? new long[2 * b.cols()]
                        : ExactGram.zeros(b.cols()));
                widths.put(b.input(), b.cols());
                ExactGram.add(sum, b.firstEntry(), (long[]) part._2());
            } else {
                chunks.add((ExpertInputs.Chunk) part._2());
            }
        }
        if (sums.isEmpty()) {
            return Collections.emptyIterator();
        }
        int layer = first.layer();
        int expert = first.expert();
        List<PrunedWeight> out = new ArrayList<>();
        Path model = ModelFiles.localize(modelUri, ModelFiles.hadoopConf(hadoopConf));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (Map.Entry<String, long[]> input : sums.entrySet()) {
                long start = System.currentTimeMillis();
                long startNanos = System.nanoTime();
                int cols = widths.get(input.getKey());
                double[] statistic = pruning.diagonalsOnly()
                        ? ExpertHessians.diagonal(input.getValue(), cols, true)
                        : ExactGram.toSymmetric(input.getValue(), cols);
                int weights = 0;
                for (String name : ckpt.tensorNames()) {
                    ExpertTensor t = ExpertTensor.parse(name).orElse(null);
                    if (t == null || t.layer() != layer || t.expert() != expert
                            || !t.input().equals(input.getKey())) {
                        continue;
                    }
                    out.add(prune(ckpt, t, statistic, cols));
                    weights++;
                }
                report(layer, expert, input.getKey(), weights, (System.nanoTime() - startNanos) / 1e9, start);
            }
        }
        if (!pruning.reconstructs()) {
            return List.of(new SolvedExpert(layer, expert, out, null, 0)).iterator();
        }
        int tokens = ExpertInputs.tokens(chunks, Sparsifier.RECONSTRUCTION_TOKENS);
        float[] x = ExpertInputs.assemble(chunks, Sparsifier.RECONSTRUCTION_TOKENS,
                widths.getOrDefault(ExpertHessians.GATE_UP, 0));
        return List.of(new SolvedExpert(layer, expert, out, x, tokens)).iterator();
    }

    private PrunedWeight prune(Checkpoint ckpt, ExpertTensor t, double[] statistic, int cols) {
        TensorRef dense = ckpt.get(t.name());
        int rows = (int) dense.shape()[0];
        if (dense.shape()[1] != cols) {
            throw new IllegalArgumentException(t.name() + " in " + modelUri + " has " + dense.shape()[1]
                    + " input columns but its calibration inputs have " + cols);
        }
        float[] pruned = pruning.diagonalsOnly()
                ? Sparsifier.pruneWanda(pruning.pattern(), dense.toFloats(), rows, cols, statistic)
                : Sparsifier.pruneSparseGpt(ckpt, modelUri, t, statistic, pruning.pattern());
        return PrunedWeight.of(t.name(), pruning.pattern(), pruned, rows, cols);
    }

    private void report(int layer, int expert, String input, int weights, double seconds, long start) {
        TaskContext task = TaskContext.get();
        if (stats == null || task == null) {
            return;
        }
        SparkEnv env = SparkEnv.get();
        stats.add(new SolveStats(task.stageId(), task.partitionId(), task.attemptNumber(),
                env == null ? "driver" : env.executorId(), layer, expert, input, weights, seconds, start,
                System.currentTimeMillis()));
    }
}
