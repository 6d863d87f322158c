package io.moescore.spark.sparsify;

import io.moescore.model.Checkpoint;
import io.moescore.spark.ModelFiles;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.ExpertTensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.concurrent.ForkJoinPool;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.CollectionAccumulator;

/**
 * A reconstruction task, one per expert: tunes the expert's pruned weights (masks fixed) so that its SwiGLU output
 * reproduces the dense expert's on its calibration inputs, through the same {@link ExpertReconstruction#reconstruct}
 * as the single-process tool, on this executor's CPU ({@link ExpertReconstruction#CPU}: the step a GPU
 * implementation would replace), on {@code cpuThreads} threads ({@code spark.moescore.cpuThreads}, as the CPU
 * backend; 0: the JVM's common pool, every core). Yields the tuned weights, packed; the driver collects only these.
 */
final class ExpertReconstruct implements FlatMapFunction<Iterator<SolvedExpert>, PrunedWeight> {
    private static final long serialVersionUID = 1L;

    private final String modelUri;
    private final Map<String, String> hadoopConf;
    private final Pruning pruning;
    private final int cpuThreads;
    private final CollectionAccumulator<ReconstructionStats> stats;

    /** @param modelUri the dense model, whose experts' outputs are the targets */
    ExpertReconstruct(String modelUri, Map<String, String> hadoopConf, Pruning pruning, int cpuThreads,
                      CollectionAccumulator<ReconstructionStats> stats) {
        this.modelUri = modelUri;
        this.hadoopConf = Map.copyOf(hadoopConf);
        this.pruning = pruning;
        this.cpuThreads = cpuThreads;
        this.stats = stats;
    }

    @Override
    public Iterator<PrunedWeight> call(Iterator<SolvedExpert> experts) {
        List<PrunedWeight> out = new ArrayList<>();
        if (!experts.hasNext()) {
            return out.iterator();
        }
        Path model = ModelFiles.localize(modelUri, ModelFiles.hadoopConf(hadoopConf));
        Map<Integer, SortedMap<Integer, ExpertTensor.Projections>> layers = new HashMap<>();
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            while (experts.hasNext()) {
                SolvedExpert e = experts.next();
                ExpertTensor.Projections p = layers.computeIfAbsent(e.layer(),
                        l -> ExpertTensor.ofLayer(ckpt.tensorNames(), l)).get(e.expert());
                Map<String, PrunedWeight> byName = new HashMap<>();
                e.weights().forEach(w -> byName.put(w.name(), w));
                if (e.tokens() == 0 || p == null || !byName.containsKey(p.gate().name())
                        || !byName.containsKey(p.up().name()) || !byName.containsKey(p.down().name())) {
                    out.addAll(e.weights());
                    continue;
                }
                long start = System.currentTimeMillis();
                long startNanos = System.nanoTime();
                float[][] w = {byName.get(p.gate().name()).dense(), byName.get(p.up().name()).dense(),
                    byName.get(p.down().name()).dense()};
                ExpertReconstruction.Result r = onThreads(() -> ExpertReconstruction.reconstruct(ckpt, p, w[0], w[1],
                        w[2], e.inputs(), e.tokens(), pruning.reconstruction(), ExpertReconstruction.CPU));
                ExpertTensor[] tensors = {p.gate(), p.up(), p.down()};
                for (int i = 0; i < 3; i++) {
                    PrunedWeight before = byName.get(tensors[i].name());
                    out.add(PrunedWeight.of(before.name(), pruning.pattern(), w[i], before.rows(), before.cols()));
                }
                report(e, r, (System.nanoTime() - startNanos) / 1e9, start);
            }
        }
        return out.iterator();
    }

    /** Runs the tuning (its parallel streams) on cpuThreads threads; the result does not depend on how many. */
    private <T> T onThreads(java.util.function.Supplier<T> work) {
        if (cpuThreads <= 0) {
            return work.get();
        }
        ForkJoinPool pool = new ForkJoinPool(cpuThreads);
        try {
            return pool.submit(work::get).join();
        } finally {
            pool.shutdown();
        }
    }

    private void report(SolvedExpert e, ExpertReconstruction.Result r, double seconds, long start) {
        TaskContext task = TaskContext.get();
        if (stats == null || task == null) {
            return;
        }
        SparkEnv env = SparkEnv.get();
        stats.add(new ReconstructionStats(task.stageId(), task.partitionId(), task.attemptNumber(),
                env == null ? "driver" : env.executorId(), e.layer(), e.expert(), e.tokens(), r.initialError(),
                r.finalError(), seconds, start, System.currentTimeMillis()));
    }
}
