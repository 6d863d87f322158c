package io.moescore.model;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * A weight holds NaN or an infinity: every score it touches would be NaN. Names the tensor, its file and its first
 * non-finite element (flat and per dimension). Loading with {@code allowNonfinite} skips the check.
 */
public final class NonFiniteWeightException extends ModelFormatException {
    private final String tensor;
    private final long[] index;

    public NonFiniteWeightException(String tensor, Path file, long flatIndex, long[] index, float value) {
        super("tensor " + tensor + " in " + file + " holds " + value + " at index " + Arrays.toString(index)
                + " (element " + flatIndex + ", its first non-finite value): the model's weights are not finite."
                + " Fix the checkpoint, or load with allowNonfinite (score-local --allow-nonfinite,"
                + " spark.moescore.allowNonfinite) to score it anyway, non-finite scores flagged per row");
        this.tensor = tensor;
        this.index = index.clone();
    }

    public String tensor() {
        return tensor;
    }

    /** The first non-finite element's index, one entry per dimension. */
    public long[] index() {
        return index.clone();
    }
}
