package io.moescore.spark.sparsify;

import io.moescore.model.ModelConfig;
import io.moescore.spark.ScoringSpec;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.CollectionAccumulator;

/**
 * One calibration pass of the sparsify job over some MoE layers: calibration on the executors, the shuffle by
 * expert, the solves ({@link CalibrationShuffle}, {@link ExpertSolve}: one Spark job of two stages) and, to
 * reconstruct, a second job over the solved experts, persisted on the executors with their calibration inputs
 * (memory, spilling to local disk) until each is tuned ({@link ExpertReconstruct}: one stage, a task per expert).
 * The driver receives only the pruned (or reconstructed) weights, packed.
 */
final class SparsifyPass {
    /** Above this many bytes of packed weights per pass, the driver fetches them a partition at a time. */
    private static final long COLLECT_AT_ONCE_BYTES = 256L << 20;

    private SparsifyPass() {
    }

    /**
     * Runs a pass; adds its weights to {@code pruned} (by tensor name) and returns its statistics.
     *
     * @param passSpec        the model the pass calibrates through (a sequential pass: the partly pruned copy)
     * @param releaseModelUri a model copy an earlier pass used that executors may let go of (null: none)
     * @param denseModelUri   the dense model, whose weights are pruned and whose experts are the targets
     */
    static SparsifySummary.Pass run(SparkContext sc, JavaPairRDD<Long, int[]> calibration, ScoringSpec passSpec,
                                    ModelConfig config, int[] layers, Pruning pruning, String releaseModelUri,
                                    String denseModelUri, double progressSeconds, Map<String, PrunedWeight> pruned) {
        CollectionAccumulator<CalibrationStats> calibrated = sc.collectionAccumulator("moescore calibration");
        CollectionAccumulator<SolveStats> solved = sc.collectionAccumulator("moescore solves");
        CollectionAccumulator<ReconstructionStats> tuned = sc.collectionAccumulator("moescore reconstructions");
        JavaRDD<SolvedExpert> experts = CalibrationShuffle.of(calibration, passSpec, layers, config.numExperts(),
                        pruning, releaseModelUri, calibrated)
                .mapPartitions(new ExpertSolve(denseModelUri, passSpec.hadoopConf(), pruning, solved));
        long packedBytes = (long) (layers.length * config.numExperts() * 3.0 * config.hiddenSize()
                * config.expertFfnSize() * pruning.pattern().bytesPerWeight() * 2);
        String step = "layers " + Arrays.toString(layers);
        if (!pruning.reconstructs()) {
            try (StageProgress p = StageProgress.start(sc, step, List.of("calibration", "solve"), progressSeconds,
                    () -> sofar(calibrated, solved, tuned), System.err::println)) {
                collect(experts.flatMap(e -> e.weights().iterator()), packedBytes, pruned);
            }
        } else {
            experts.persist(StorageLevel.MEMORY_AND_DISK());
            try {
                long reached;
                try (StageProgress p = StageProgress.start(sc, step, List.of("calibration", "solve"),
                        progressSeconds, () -> sofar(calibrated, solved, tuned), System.err::println)) {
                    reached = experts.count();
                }
                System.err.printf(Locale.ROOT, "moescore sparsify: %s: %d Hessians solved; reconstructing %d "
                        + "experts (%d steps each) on the executors%n", step, solved.value().size(), reached,
                        pruning.reconstruction().steps());
                try (StageProgress p = StageProgress.start(sc, step + " reconstruction", List.of("reconstruct"),
                        progressSeconds, () -> sofar(calibrated, solved, tuned), System.err::println)) {
                    collect(experts.mapPartitions(new ExpertReconstruct(denseModelUri, passSpec.hadoopConf(),
                            pruning, passSpec.settings().cpuThreads(), tuned)), packedBytes, pruned);
                }
            } finally {
                experts.unpersist(false);
            }
        }
        SparsifySummary.Pass pass = SparsifySummary.Pass.of(layers, calibrated.value(), solved.value(),
                tuned.value());
        System.err.printf(Locale.ROOT, "moescore sparsify: %s: calibration %,d tokens in %.1f s (%,.0f tokens/s), "
                        + "%d Hessians solved in %.1f s%s%n", step, pass.tokens(), pass.calibrationSeconds(),
                pass.tokensPerSecond(), pass.solves().size(), pass.solveSeconds(), pass.reconstructions().isEmpty()
                        ? "" : String.format(Locale.ROOT, ", %d experts reconstructed in %.1f s, error %s",
                        pass.reconstructions().size(), pass.reconstructionSeconds(),
                        SparsifySummary.errors(pass.reconstructions())));
        return pass;
    }

    /** The weights into {@code pruned}; past {@link #COLLECT_AT_ONCE_BYTES}, a partition at a time. */
    private static void collect(JavaRDD<PrunedWeight> weights, long packedBytes, Map<String, PrunedWeight> pruned) {
        if (packedBytes <= COLLECT_AT_ONCE_BYTES) {
            weights.collect().forEach(w -> pruned.put(w.name(), w));
            return;
        }
        // every task first, in parallel, then the weights a partition at a time (spark.driver.maxResultSize)
        weights.persist(StorageLevel.MEMORY_AND_DISK()).count();
        weights.toLocalIterator().forEachRemaining(w -> pruned.put(w.name(), w));
        weights.unpersist(false);
    }

    private static String sofar(CollectionAccumulator<CalibrationStats> calibrated,
                                CollectionAccumulator<SolveStats> solved,
                                CollectionAccumulator<ReconstructionStats> tuned) {
        List<CalibrationStats> c = calibrated.value();
        return String.format(Locale.ROOT, "%,d calibration tokens, %d Hessians solved%s",
                c.stream().mapToLong(CalibrationStats::tokens).sum(), solved.value().size(),
                tuned.value().isEmpty() ? "" : ", " + tuned.value().size() + " experts reconstructed");
    }
}
