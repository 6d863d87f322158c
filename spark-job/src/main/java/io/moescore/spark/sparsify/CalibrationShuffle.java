package io.moescore.spark.sparsify;

import io.moescore.spark.ScoringSpec;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.util.CollectionAccumulator;

/**
 * A calibration pass's output on its way to the experts' solve tasks: every calibration task emits its partial
 * exact sum of each (layer, expert, projection input)'s X^T X in bands and, to reconstruct, its sequences' inputs to
 * each expert ({@link CalibrationPass}); the shuffle sends each to its expert's partition ({@link ExpertPartitioner}),
 * where the solve task adds the bands (exactly, so in any order) and assembles the inputs. Nothing goes through the
 * driver: what the solve stage reads.
 */
public final class CalibrationShuffle {
    private CalibrationShuffle() {
    }

    /**
     * @param layers          the MoE layers of the pass, ascending
     * @param releaseModelUri a model of an earlier pass executors may let go of (null: none)
     * @param stats           where calibration tasks report, or null
     */
    public static JavaPairRDD<ExpertPart, Object> of(JavaPairRDD<Long, int[]> calibration, ScoringSpec spec, int[] layers,
                                              int numExperts, Pruning pruning, String releaseModelUri,
                                              CollectionAccumulator<CalibrationStats> stats) {
        return calibration.mapPartitionsToPair(new CalibrationPass(spec, layers, pruning, releaseModelUri, stats))
                .partitionBy(new ExpertPartitioner(layers, numExperts, pruning.reconstructs()));
    }
}
