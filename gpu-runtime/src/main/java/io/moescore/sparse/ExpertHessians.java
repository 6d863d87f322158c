package io.moescore.sparse;

import java.util.HashMap;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * SparseGPT's statistics: per (layer, expert, projection input) H = X^T X in fp64 over the calibration tokens
 * routed to that expert. gate and up read the same normed hidden state and share one H [hidden, hidden]; down
 * reads the SwiGLU product, H [ffn, ffn]. Memory: cols^2 x 8 bytes per Hessian, (hidden^2 + ffn^2) x 8 per expert
 * (the demo model: 1.5 MB; a Mixtral-8x7B expert: 1.7 GB), so {@link Sparsifier} collects one layer at a time.
 */
final class ExpertHessians implements ExpertCalibration.RoutedInputs {
    private final int onlyLayer;
    private final Map<String, double[]> hessians = new HashMap<>();

    /** Collects the experts of one MoE layer. */
    ExpertHessians(int layer) {
        this.onlyLayer = layer;
    }

    static String key(int layer, int expert, String projectionInput) {
        return layer + "/" + expert + "/" + projectionInput;
    }

    /** H for a projection input ("gate_up" or "down"); null where no calibration token reached the expert. */
    double[] get(int layer, int expert, String projectionInput) {
        return hessians.get(key(layer, expert, projectionInput));
    }

    @Override
    public void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn) {
        if (layer != onlyLayer || rows.length == 0) {
            return;
        }
        float[] gathered = new float[rows.length * hidden];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(x, rows[r] * hidden, gathered, r * hidden, hidden);
        }
        addGram(hessians.computeIfAbsent(key(layer, expert, "gate_up"), k -> new double[hidden * hidden]),
                gathered, rows.length, hidden);
        addGram(hessians.computeIfAbsent(key(layer, expert, "down"), k -> new double[ffn * ffn]),
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
