package io.moescore.spark.sparsify;

import io.moescore.sparsify.ExpertHessians;
import java.util.Arrays;
import org.apache.spark.Partitioner;

/**
 * Puts every band of one expert projection's Hessian into the same partition, one Hessian per partition: partition
 * (layer index in the pass x experts + expert) x 2 + (0 for gate/up, 1 for down). The solve of that partition then
 * holds one Hessian, and the solves run in parallel across executors.
 */
final class HessianPartitioner extends Partitioner {
    private static final long serialVersionUID = 1L;

    private final int[] layers;
    private final int numExperts;

    HessianPartitioner(int[] layers, int numExperts) {
        this.layers = layers.clone();
        this.numExperts = numExperts;
    }

    @Override
    public int numPartitions() {
        return layers.length * numExperts * 2;
    }

    @Override
    public int getPartition(Object key) {
        HessianBlock b = (HessianBlock) key;
        int layer = Arrays.binarySearch(layers, b.layer());
        if (layer < 0) {
            throw new IllegalStateException("a Hessian of layer " + b.layer() + " in a pass over layers "
                    + Arrays.toString(layers));
        }
        return (layer * numExperts + b.expert()) * 2 + (b.input().equals(ExpertHessians.DOWN) ? 1 : 0);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof HessianPartitioner p && Arrays.equals(layers, p.layers) && numExperts == p.numExperts;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(layers) * 31 + numExperts;
    }
}
