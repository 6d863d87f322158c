package io.moescore.sparsify;

import io.moescore.engine.RoutedInputs;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * SparseGPT's statistics: per (layer, expert, projection input) H = X^T X in fp64 over the calibration tokens
 * routed to that expert. gate and up read the same normed hidden state and share one H [hidden, hidden]; down
 * reads the SwiGLU product, H [ffn, ffn]. Memory: cols^2 x 8 bytes per Hessian, (hidden^2 + ffn^2) x 8 per expert
 * (the demo model: 1.5 MB; a Mixtral-8x7B expert: 1.7 GB), so callers collect a few layers at a time.
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

    private final Set<Integer> layers;
    private final Map<Key, double[]> hessians = new HashMap<>();

    /** Collects the experts of these MoE layers. */
    public ExpertHessians(int... layers) {
        this.layers = IntStream.of(layers).boxed().collect(Collectors.toUnmodifiableSet());
    }

    /** Bytes of one Hessian of a projection with this many input columns. */
    public static long bytes(int cols) {
        return (long) cols * cols * Double.BYTES;
    }

    /** H of a projection input ({@link #GATE_UP} or {@link #DOWN}); null where no calibration token reached it. */
    public double[] get(int layer, int expert, String projectionInput) {
        return hessians.get(new Key(layer, expert, projectionInput));
    }

    /** Every Hessian collected so far, in no particular order. */
    public void forEach(Visitor visitor) {
        hessians.forEach((key, h) -> visitor.visit(key, h, (int) Math.round(Math.sqrt(h.length))));
    }

    @Override
    public void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn) {
        if (!layers.contains(layer) || rows.length == 0) {
            return;
        }
        float[] gathered = new float[rows.length * hidden];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(x, rows[r] * hidden, gathered, r * hidden, hidden);
        }
        addGram(hessians.computeIfAbsent(new Key(layer, expert, GATE_UP), k -> new double[hidden * hidden]),
                gathered, rows.length, hidden);
        addGram(hessians.computeIfAbsent(new Key(layer, expert, DOWN), k -> new double[ffn * ffn]),
                swiglu, rows.length, ffn);
    }

    /** h += a^T a for a [n, cols]; rows of h in parallel, each in a fixed order. */
    private static void addGram(double[] h, float[] a, int n, int cols) {
        double[] byColumn = new double[cols * n];
        for (int t = 0; t < n; t++) {
            for (int c = 0; c < cols; c++) {
                byColumn[c * n + t] = a[t * cols + c];
            }
        }
        IntStream.range(0, cols).parallel().forEach(i -> {
            for (int j = i; j < cols; j++) {
                double sum = 0;
                for (int t = 0; t < n; t++) {
                    sum += byColumn[i * n + t] * byColumn[j * n + t];
                }
                h[i * cols + j] += sum;
                if (j != i) {
                    h[j * cols + i] += sum;
                }
            }
        });
    }
}
