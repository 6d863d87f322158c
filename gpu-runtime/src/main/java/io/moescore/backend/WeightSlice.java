package io.moescore.backend;

import io.moescore.model.TensorRef;

/**
 * A 2-D weight to place on a backend: {@code rows x cols} elements of a checkpoint tensor starting at element
 * {@code firstElement} (a whole tensor, or one expert of a fused 3-D tensor). Vectors are 1 x n.
 */
public record WeightSlice(TensorRef tensor, long firstElement, int rows, int cols) {
    public WeightSlice {
        if (firstElement < 0 || firstElement + (long) rows * cols > tensor.elementCount()) {
            throw new IllegalArgumentException("slice of " + rows + " x " + cols + " at " + firstElement
                    + " outside tensor " + tensor.name());
        }
    }

    public static WeightSlice whole(TensorRef tensor, int rows, int cols) {
        return new WeightSlice(tensor, 0, rows, cols);
    }

    public String describe() {
        return tensor.name() + (firstElement == 0 && (long) rows * cols == tensor.elementCount() ? ""
                : "[" + firstElement + "..+" + (long) rows * cols + "]");
    }
}
