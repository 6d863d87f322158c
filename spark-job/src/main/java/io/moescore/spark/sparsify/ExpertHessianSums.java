package io.moescore.spark.sparsify;

import io.moescore.spark.ScoringSpec;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.util.CollectionAccumulator;

/**
 * The Hessians of a calibration pass summed across tasks and executors, keyed by expert: every calibration task
 * emits its partial X^T X of each (layer, expert, projection input) in bands of rows, and the shuffle adds the
 * bands of equal key, with all bands of one Hessian in one partition ({@link HessianPartitioner}). There is no
 * map-side combine (each task emits a key once) and no driver-side copy: what the solve stage reads.
 */
public final class ExpertHessianSums {
    private ExpertHessianSums() {
    }

    /**
     * @param layers          the MoE layers of the pass, ascending
     * @param releaseModelUri a model of an earlier pass executors may let go of (null: none)
     * @param stats           where calibration tasks report, or null
     */
    public static JavaPairRDD<HessianBlock, double[]> of(JavaRDD<int[]> calibration, ScoringSpec spec, int[] layers,
                                                         int numExperts, String releaseModelUri,
                                                         CollectionAccumulator<CalibrationStats> stats) {
        return calibration.mapPartitionsToPair(new CalibrationPass(spec, layers, releaseModelUri, stats))
                .combineByKey(band -> band, ExpertHessianSums::add, ExpertHessianSums::add,
                        new HessianPartitioner(layers, numExperts), false, null);
    }

    private static double[] add(double[] sum, double[] band) {
        for (int i = 0; i < sum.length; i++) {
            sum[i] += band[i];
        }
        return sum;
    }
}
