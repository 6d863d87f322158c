package io.moescore.backend;

/** Selecting the largest entries of a row of logits (host side, for every backend). */
public final class TopK {
    private TopK() {
    }

    /** Indices of the k largest of {@code values[from .. from+n)}, largest first, lower index first on ties. */
    public static int[] indices(float[] values, int from, int n, int k) {
        int size = Math.min(k, n);
        int[] best = new int[size];
        int filled = 0;
        for (int i = 0; i < n; i++) {
            float v = values[from + i];
            if (filled == size && !(v > values[from + best[size - 1]])) {
                continue;
            }
            int pos = filled < size ? filled++ : size - 1;
            while (pos > 0 && v > values[from + best[pos - 1]]) {
                best[pos] = best[pos - 1];
                pos--;
            }
            best[pos] = i;
        }
        return best;
    }
}
