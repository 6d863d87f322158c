package io.moescore.sparsify;

import java.util.Arrays;

/**
 * The rows one expert received in a forward pass, grouped by the sequence each belongs to (the unit the calibration
 * statistics are summed in, so that they do not depend on how sequences were batched): group g holds the entries
 * {@code order[start[g]] .. order[start[g + 1] - 1]} of the expert's rows (indices into its row list, in their
 * order there), all of the pass's sequence {@code sequence[g]}; groups in sequence order.
 */
record SequenceGroups(int[] sequence, int[] start, int[] order) {
    /** One group of every row: a pass whose sequences were not told ({@code offsets} null). */
    static SequenceGroups of(int[] rows, int[] offsets) {
        int n = rows.length;
        int[] identity = new int[n];
        Arrays.setAll(identity, i -> i);
        if (offsets == null) {
            return new SequenceGroups(new int[] {0}, new int[] {0, n}, identity);
        }
        int sequences = offsets.length - 1;
        int[] of = new int[n];
        int[] counts = new int[sequences];
        for (int i = 0; i < n; i++) {
            int s = Arrays.binarySearch(offsets, rows[i]);
            s = s >= 0 ? s : -s - 2;   // offsets increase strictly: the engine refuses empty sequences
            if (s < 0 || s >= sequences) {
                throw new IllegalArgumentException("row " + rows[i] + " is outside the pass's sequences "
                        + Arrays.toString(offsets));
            }
            of[i] = s;
            counts[s]++;
        }
        int groups = 0;
        for (int c : counts) {
            groups += c > 0 ? 1 : 0;
        }
        int[] sequence = new int[groups];
        int[] start = new int[groups + 1];
        int[] first = new int[sequences];
        for (int s = 0, g = 0, at = 0; s < sequences; s++) {
            first[s] = at;
            if (counts[s] > 0) {
                sequence[g] = s;
                start[g] = at;
                g++;
                at += counts[s];
            }
        }
        start[groups] = n;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {   // stable: rows keep their order within a sequence
            order[first[of[i]]++] = i;
        }
        return new SequenceGroups(sequence, start, order);
    }

    int groups() {
        return sequence.length;
    }

    int size(int group) {
        return start[group + 1] - start[group];
    }

    /** The group's rows of {@code values} [rows, width] (values row r belongs to the expert's row r). */
    float[] gather(int group, float[] values, int width) {
        float[] out = new float[size(group) * width];
        for (int k = 0; k < size(group); k++) {
            System.arraycopy(values, order[start[group] + k] * width, out, k * width, width);
        }
        return out;
    }

    /** The group's rows of x [tokens, width], x's rows being named by {@code rows}. */
    float[] gather(int group, float[] x, int[] rows, int width) {
        float[] out = new float[size(group) * width];
        for (int k = 0; k < size(group); k++) {
            System.arraycopy(x, rows[order[start[group] + k]] * width, out, k * width, width);
        }
        return out;
    }
}
