package io.moescore.spark.sparsify;

import io.moescore.model.Checkpoint;
import io.moescore.model.TensorRef;
import io.moescore.spark.ModelFiles;
import io.moescore.sparsify.ExpertTensor;
import io.moescore.sparse.Sparse24;
import io.moescore.sparsify.SparseGpt;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.CollectionAccumulator;
import scala.Tuple2;

/**
 * A solve task: assembles its partition's one Hessian from its summed bands, reads the weights that take that
 * input (gate and up, or down, of one expert) from the dense model, prunes each 2:4 by SparseGPT and packs it.
 * A partition without bands (an expert no calibration token reached) yields nothing: the driver falls back to
 * magnitude for it.
 */
final class ExpertSolve implements FlatMapFunction<Iterator<Tuple2<HessianBlock, double[]>>, PrunedWeight> {
    private static final long serialVersionUID = 1L;

    private final String modelUri;
    private final Map<String, String> hadoopConf;
    private final CollectionAccumulator<SolveStats> stats;

    /** @param modelUri the dense model whose weights are pruned (for a sequential job too: never a pruned copy) */
    ExpertSolve(String modelUri, Map<String, String> hadoopConf, CollectionAccumulator<SolveStats> stats) {
        this.modelUri = modelUri;
        this.hadoopConf = Map.copyOf(hadoopConf);
        this.stats = stats;
    }

    @Override
    public Iterator<PrunedWeight> call(Iterator<Tuple2<HessianBlock, double[]>> bands) {
        if (!bands.hasNext()) {
            return Collections.emptyIterator();
        }
        long start = System.currentTimeMillis();
        long startNanos = System.nanoTime();
        HessianBlock first = null;
        double[] h = null;
        while (bands.hasNext()) {
            Tuple2<HessianBlock, double[]> band = bands.next();
            HessianBlock key = band._1();
            if (first == null) {
                first = key;
                h = new double[Math.multiplyExact(key.cols(), key.cols())];
            } else if (!key.sameHessian(first)) {
                throw new IllegalStateException("one solve partition holds two Hessians: " + first.hessian() + " and "
                        + key.hessian());
            }
            System.arraycopy(band._2(), 0, h, key.firstRow() * key.cols(), band._2().length);
        }
        List<PrunedWeight> out = new ArrayList<>();
        Path model = ModelFiles.localize(modelUri, ModelFiles.hadoopConf(hadoopConf));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                ExpertTensor t = ExpertTensor.parse(name).orElse(null);
                if (t == null || t.layer() != first.layer() || t.expert() != first.expert()
                        || !t.input().equals(first.input())) {
                    continue;
                }
                TensorRef dense = ckpt.get(name);
                int rows = (int) dense.shape()[0];
                int cols = (int) dense.shape()[1];
                if (cols != first.cols()) {
                    throw new IllegalArgumentException(name + " in " + modelUri + " has " + cols + " input columns "
                            + "but its calibration inputs have " + first.cols());
                }
                float[] pruned = SparseGpt.prune24(dense.toFloats(), rows, cols, h);
                out.add(PrunedWeight.of(name, Sparse24.pack(pruned, rows, cols)));
            }
        }
        report(first, out.size(), (System.nanoTime() - startNanos) / 1e9, start);
        return out.iterator();
    }

    private void report(HessianBlock hessian, int weights, double seconds, long start) {
        TaskContext task = TaskContext.get();
        if (stats == null || task == null) {
            return;
        }
        SparkEnv env = SparkEnv.get();
        stats.add(new SolveStats(task.stageId(), task.partitionId(), task.attemptNumber(),
                env == null ? "driver" : env.executorId(), hessian.layer(), hessian.expert(), hessian.input(),
                weights, seconds, start, System.currentTimeMillis()));
    }
}
