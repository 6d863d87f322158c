package io.moescore.spark.sparsify;

import io.moescore.sparsify.ExpertHessians;
import java.util.Arrays;
import org.apache.spark.Partitioner;

/**
 * Puts everything of one expert's that a solve task needs into one partition. Per Hessian (the solves of gate/up
 * and of down in parallel): partition (layer index in the pass x experts + expert) x 2 + (0 for gate/up, 1 for
 * down). Per expert (to reconstruct it after its solves, or for wanda): partition layer index x experts + expert,
 * holding both Hessians' bands and the expert's calibration inputs.
 */
final class ExpertPartitioner extends Partitioner {
    private static final long serialVersionUID = 1L;

    private final int[] layers;
    private final int numExperts;
    private final boolean perExpert;

    ExpertPartitioner(int[] layers, int numExperts, boolean perExpert) {
        this.layers = layers.clone();
        this.numExperts = numExperts;
        this.perExpert = perExpert;
    }

    @Override
    public int numPartitions() {
        return layers.length * numExperts * (perExpert ? 1 : 2);
    }

    @Override
    public int getPartition(Object key) {
        ExpertPart part = (ExpertPart) key;
        int layer = Arrays.binarySearch(layers, part.layer());
        if (layer < 0) {
            throw new IllegalStateException("a part of layer " + part.layer() + " in a pass over layers "
                    + Arrays.toString(layers));
        }
        int expert = layer * numExperts + part.expert();
        if (perExpert) {
            return expert;
        }
        if (!(part instanceof HessianBlock b)) {
            throw new IllegalStateException("expert inputs in a pass partitioned per Hessian: " + part);
        }
        return expert * 2 + (b.input().equals(ExpertHessians.DOWN) ? 1 : 0);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExpertPartitioner p && Arrays.equals(layers, p.layers) && numExperts == p.numExperts
                && perExpert == p.perExpert;
    }

    @Override
    public int hashCode() {
        return (Arrays.hashCode(layers) * 31 + numExperts) * 2 + (perExpert ? 1 : 0);
    }
}
