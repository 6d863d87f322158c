package io.moescore.sparsify;

import io.moescore.engine.RoutedInputs;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * SparseGPT's statistics: per (layer, expert, projection input) H = X^T X over the calibration tokens routed to that
 * expert, summed per calibration sequence in fp64 and across sequences exactly ({@link ExactGram}), so that H is the
 * same to the bit however the sequences were batched, partitioned or ordered (the single-process tool and the Spark
 * job's executors give SparseGPT the same input). gate and up read the same normed hidden state and share one H
 * [hidden, hidden]; down reads the SwiGLU product, H [ffn, ffn]. Memory: {@link #bytes} per Hessian, about cols^2 x 8
 * bytes, (hidden^2 + ffn^2) x 8 per expert (the demo model: 1.5 MB; a Mixtral-8x7B expert: 1.7 GB), so callers
 * collect a few layers at a time. {@link #diagonals}: only diag(H), the squared input norms wanda weighs by
 * (cols x 16 bytes), summed the same way, so its entries equal the full H's diagonal to the bit.
 */
public final class ExpertHessians implements RoutedInputs {
    /** The input of gate and up: the layer's normed hidden state. */
    public static final String GATE_UP = "gate_up";
    /** The input of down: the SwiGLU product. */
    public static final String DOWN = "down";

    /** One Hessian's name. */
    public record Key(int layer, int expert, String input) {
    }

    /** Sees one collected Hessian [cols, cols]. */
    public interface Visitor {
        void visit(Key key, double[] hessian, int cols);
    }

    /** Sees one collected Hessian as its exact sum ({@link ExactGram}: the packed upper triangle). */
    public interface ExactVisitor {
        void visit(Key key, long[] sums, int cols);
    }

    private final Set<Integer> layers;
    private final Map<Key, long[]> hessians = new HashMap<>();
    private final Map<Key, Integer> widths = new HashMap<>();
    private final boolean diagonalOnly;
    private int[] offsets;

    /** Collects the Hessians of the experts of these MoE layers. */
    public ExpertHessians(int... layers) {
        this(false, layers);
    }

    private ExpertHessians(boolean diagonalOnly, int... layers) {
        this.diagonalOnly = diagonalOnly;
        this.layers = IntStream.of(layers).boxed().collect(Collectors.toUnmodifiableSet());
    }

    /** Collects only the Hessians' diagonals (each input feature's sum of squares) of these MoE layers. */
    public static ExpertHessians diagonals(int... layers) {
        return new ExpertHessians(true, layers);
    }

    /** Bytes of one Hessian of a projection with this many input columns, as collected. */
    public static long bytes(int cols) {
        return ExactGram.bytes(cols);
    }

    /** Whether this collects only diagonals (then {@link #forEachExact} gives cols entries, not the triangle). */
    public boolean diagonalOnly() {
        return diagonalOnly;
    }

    /** H of a projection input ({@link #GATE_UP} or {@link #DOWN}); null where no calibration token reached it. */
    public double[] get(int layer, int expert, String projectionInput) {
        if (diagonalOnly) {
            throw new IllegalStateException("these Hessians were collected as diagonals only");
        }
        Key key = new Key(layer, expert, projectionInput);
        long[] sums = hessians.get(key);
        return sums == null ? null : ExactGram.toSymmetric(sums, widths.get(key));
    }

    /** diag(H) of a projection input; null where no calibration token reached it. */
    public double[] diagonal(int layer, int expert, String projectionInput) {
        Key key = new Key(layer, expert, projectionInput);
        long[] sums = hessians.get(key);
        return sums == null ? null : diagonal(sums, widths.get(key), diagonalOnly);
    }

    /** diag(H) of an exact sum as {@link #forEachExact} gives it (the triangle, or a diagonal-only sum). */
    public static double[] diagonal(long[] sums, int cols, boolean diagonalOnly) {
        if (diagonalOnly) {
            return ExactGram.toVector(sums, cols);
        }
        double[] d = new double[cols];
        for (int i = 0; i < cols; i++) {
            d[i] = ExactGram.value(sums, ExactGram.rowOffset(i, cols));
        }
        return d;
    }

    /** Every Hessian collected so far, in no particular order. */
    public void forEach(Visitor visitor) {
        if (diagonalOnly) {
            throw new IllegalStateException("these Hessians were collected as diagonals only");
        }
        hessians.forEach((key, h) -> visitor.visit(key, ExactGram.toSymmetric(h, widths.get(key)), widths.get(key)));
    }

    /** Every Hessian collected so far as its exact sum, in no particular order. */
    public void forEachExact(ExactVisitor visitor) {
        hessians.forEach((key, h) -> visitor.visit(key, h, widths.get(key)));
    }

    @Override
    public void sequences(int[] batchIndices, int[] offsets) {
        this.offsets = offsets;
    }

    @Override
    public void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn) {
        if (!layers.contains(layer) || rows.length == 0) {
            return;
        }
        long[] in = sums(new Key(layer, expert, GATE_UP), hidden);
        long[] mid = sums(new Key(layer, expert, DOWN), ffn);
        SequenceGroups groups = SequenceGroups.of(rows, offsets);
        for (int g = 0; g < groups.groups(); g++) {
            add(in, groups.gather(g, x, rows, hidden), groups.size(g), hidden);
            add(mid, groups.gather(g, swiglu, ffn), groups.size(g), ffn);
        }
    }

    private void add(long[] sums, float[] a, int n, int cols) {
        if (!diagonalOnly) {
            ExactGram.addGram(sums, a, n, cols);
            return;
        }
        double[] squares = new double[cols];
        for (int c = 0; c < cols; c++) {
            double sum = 0;
            for (int t = 0; t < n; t++) {
                double v = a[t * cols + c];
                sum += v * v;   // as ExactGram.addGram sums a diagonal entry
            }
            squares[c] = sum;
        }
        ExactGram.addVector(sums, squares);
    }

    private long[] sums(Key key, int cols) {
        widths.put(key, cols);
        return hessians.computeIfAbsent(key, k -> diagonalOnly ? new long[2 * cols] : ExactGram.zeros(cols));
    }
}
