package io.moescore.sparsify;

import io.moescore.model.Checkpoint;
import io.moescore.model.ModelFormatException;
import io.moescore.model.TensorRef;
import java.io.Serializable;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Tunes one pruned expert's kept weights so that its SwiGLU output reproduces the dense expert's on the calibration
 * tokens routed to it: Adam on the mean squared error over random minibatches, the 2:4 masks fixed (pruned weights
 * stay zero, so the result packs as before). Gate, up and down move together, which SparseGPT, one matrix at a time
 * against its own inputs, cannot do: on the demo model this takes sequential SparseGPT from x1.21 to x1.12 of the
 * dense perplexity (bench/NOTES.md, "2:4 accuracy"; PyTorch twin:
 * src/test/python/expert_reconstruction_experiment.py).
 *
 * <p>Shapes: x [tokens, hidden]; gate and up [ffn, hidden]; down [hidden, ffn], row-major. Arithmetic in fp32,
 * deterministic for a seed whatever the thread count (every output row is summed by one thread in a fixed order).
 * The single-process tool and the Spark job's executors both tune through {@link #reconstruct}; the inner step (one
 * minibatch's forward and backward through the expert, {@link Step}) is the one piece a GPU implementation would
 * replace ({@link #CPU} is the reference).
 */
public final class ExpertReconstruction {
    private static final double BETA1 = 0.9;
    private static final double BETA2 = 0.999;
    private static final double EPSILON = 1e-8;

    /**
     * The inner step of the tuning: the gradients of one minibatch's loss with respect to the expert's three
     * weights (its SwiGLU forward and backward; the masks are the caller's business: pruned weights' gradients are
     * ignored). What a GPU implementation would provide; it must equal {@link #CPU}'s to fp32 rounding.
     */
    @FunctionalInterface
    public interface Step {
        /** {d/dgate, d/dup, d/ddown} of the mean over [n, hidden] of (expert(x) - target)^2. */
        float[][] gradients(float[] x, float[] target, int n, int hidden, int ffn, float[] gate, float[] up,
                            float[] down);
    }

    /** The reference step, in plain Java on the CPU. */
    public static final Step CPU = ExpertReconstruction::gradients;

    /** steps 0: no tuning. batch: tokens per step, drawn with replacement. */
    public record Options(int steps, double learningRate, int batch, long seed) implements Serializable {
        public static final Options NONE = new Options(0, 0, 0, 0);

        /** The settings measured on the demo model (NOTES.md): Adam at 1e-3, minibatches of 512 tokens. */
        public static Options of(int steps) {
            return new Options(steps, 1e-3, 512, 7);
        }

        public Options {
            if (steps < 0 || (steps > 0 && (batch <= 0 || !(learningRate > 0)))) {
                throw new IllegalArgumentException("reconstruction needs steps >= 0, and with steps a positive batch"
                        + " and learning rate (got steps " + steps + ", batch " + batch + ", lr " + learningRate + ")");
            }
        }
    }

    /** Mean squared error over all tokens before and after tuning. */
    public record Result(double initialError, double finalError) {
    }

    private ExpertReconstruction() {
    }

    /**
     * Tunes one expert of a checkpoint: its pruned weights (in place) against the checkpoint's dense ones, on its
     * calibration inputs x [tokens, hidden].
     *
     * @param dense the dense model the expert's weights are read from
     */
    public static Result reconstruct(Checkpoint dense, ExpertTensor.Projections expert, float[] gate, float[] up,
                                     float[] down, float[] x, int tokens, Options options, Step step) {
        TensorRef g = dense.get(expert.gate().name());
        int ffn = (int) g.shape()[0];
        int hidden = (int) g.shape()[1];
        if (x.length != (long) tokens * hidden) {
            throw new ModelFormatException(expert.gate().name() + " reads " + hidden + " input columns but its "
                    + "calibration inputs are " + tokens + " rows of " + (tokens == 0 ? "?" : x.length / tokens));
        }
        return tune(x, tokens, hidden, ffn, g.toFloats(), dense.get(expert.up().name()).toFloats(),
                dense.get(expert.down().name()).toFloats(), gate, up, down, options, step);
    }

    /** Tunes gate, up and down (the pruned weights) in place against the dense ones on x. */
    public static Result tune(float[] x, int tokens, int hidden, int ffn, float[] denseGate, float[] denseUp,
                              float[] denseDown, float[] gate, float[] up, float[] down, Options options) {
        return tune(x, tokens, hidden, ffn, denseGate, denseUp, denseDown, gate, up, down, options, CPU);
    }

    /** {@link #tune(float[], int, int, int, float[], float[], float[], float[], float[], float[], Options)} by step. */
    public static Result tune(float[] x, int tokens, int hidden, int ffn, float[] denseGate, float[] denseUp,
                              float[] denseDown, float[] gate, float[] up, float[] down, Options options, Step step) {
        if (x.length != (long) tokens * hidden || gate.length != (long) ffn * hidden || up.length != gate.length
                || down.length != gate.length || denseGate.length != gate.length || denseUp.length != gate.length
                || denseDown.length != gate.length) {
            throw new IllegalArgumentException("expert reconstruction: " + tokens + " tokens x " + hidden
                    + " hidden and ffn " + ffn + " do not match the arrays given");
        }
        float[] target = forward(x, tokens, hidden, ffn, denseGate, denseUp, denseDown).y;
        double initial = error(forward(x, tokens, hidden, ffn, gate, up, down).y, target);
        if (options.steps() == 0 || tokens == 0) {
            return new Result(initial, initial);
        }
        Adam[] adam = {new Adam(gate), new Adam(up), new Adam(down)};
        SplittableRandom random = new SplittableRandom(options.seed());
        int b = options.batch();
        float[] xb = new float[b * hidden];
        float[] tb = new float[b * hidden];
        for (int k = 0; k < options.steps(); k++) {
            for (int i = 0; i < b; i++) {
                int t = random.nextInt(tokens);
                System.arraycopy(x, t * hidden, xb, i * hidden, hidden);
                System.arraycopy(target, t * hidden, tb, i * hidden, hidden);
            }
            float[][] grad = step.gradients(xb, tb, b, hidden, ffn, gate, up, down);
            adam[0].step(gate, grad[0], options.learningRate());
            adam[1].step(up, grad[1], options.learningRate());
            adam[2].step(down, grad[2], options.learningRate());
        }
        return new Result(initial, error(forward(x, tokens, hidden, ffn, gate, up, down).y, target));
    }

    /** {d/dgate, d/dup, d/ddown} of the mean over [n, hidden] of (expert(x) - target)^2. */
    static float[][] gradients(float[] x, float[] target, int n, int hidden, int ffn, float[] gate, float[] up,
                               float[] down) {
        Pass p = forward(x, n, hidden, ffn, gate, up, down);
        float[] dy = new float[n * hidden];
        float scale = 2f / ((float) n * hidden);
        for (int i = 0; i < dy.length; i++) {
            dy[i] = scale * (p.y[i] - target[i]);
        }
        float[] dDown = matmul(transpose(dy, n, hidden), hidden, n, p.s, ffn);   // [hidden, ffn]
        float[] ds = matmul(dy, n, hidden, down, ffn);                           // [n, ffn]
        float[] da = new float[n * ffn];
        float[] du = new float[n * ffn];
        for (int i = 0; i < da.length; i++) {
            float sigmoid = (float) (1 / (1 + Math.exp(-p.a[i])));
            du[i] = ds[i] * p.a[i] * sigmoid;                                     // silu(a)
            da[i] = ds[i] * p.u[i] * sigmoid * (1 + p.a[i] * (1 - sigmoid));      // silu'(a)
        }
        float[] dGate = matmul(transpose(da, n, ffn), ffn, n, x, hidden);         // [ffn, hidden]
        float[] dUp = matmul(transpose(du, n, ffn), ffn, n, x, hidden);
        return new float[][] {dGate, dUp, dDown};
    }

    /** Mean squared error of the expert's output against target. */
    static double error(float[] x, float[] target, int n, int hidden, int ffn, float[] gate, float[] up, float[] down) {
        return error(forward(x, n, hidden, ffn, gate, up, down).y, target);
    }

    /** One expert's forward pass, keeping what the backward pass needs: a = x gate^T, u = x up^T, s, y. */
    private record Pass(float[] a, float[] u, float[] s, float[] y) {
    }

    private static Pass forward(float[] x, int n, int hidden, int ffn, float[] gate, float[] up, float[] down) {
        float[] a = matmul(x, n, hidden, transpose(gate, ffn, hidden), ffn);
        float[] u = matmul(x, n, hidden, transpose(up, ffn, hidden), ffn);
        float[] s = new float[n * ffn];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (a[i] / (1 + Math.exp(-a[i]))) * u[i];
        }
        return new Pass(a, u, s, matmul(s, n, ffn, transpose(down, hidden, ffn), hidden));
    }

    private static double error(float[] y, float[] target) {
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            double d = y[i] - target[i];
            sum += d * d;
        }
        return y.length == 0 ? 0 : sum / y.length;
    }

    /** c [n, m] = a [n, k] b [k, m]; rows of c in parallel, each summed in k order. */
    static float[] matmul(float[] a, int n, int k, float[] b, int m) {
        float[] c = new float[n * m];
        IntStream.range(0, n).parallel().forEach(i -> {
            int ci = i * m;
            for (int p = 0; p < k; p++) {
                float av = a[i * k + p];
                if (av == 0) {
                    continue;
                }
                int bp = p * m;
                for (int j = 0; j < m; j++) {
                    c[ci + j] += av * b[bp + j];
                }
            }
        });
        return c;
    }

    static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[a.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = a[r * cols + c];
            }
        }
        return t;
    }

    /** Adam's moments for one weight; only the weights kept by the 2:4 mask (non-zero at the start) move. */
    private static final class Adam {
        private final boolean[] kept;
        private final double[] m;
        private final double[] v;
        private int t;

        Adam(float[] w) {
            kept = new boolean[w.length];
            for (int i = 0; i < w.length; i++) {
                kept[i] = w[i] != 0;
            }
            m = new double[w.length];
            v = new double[w.length];
        }

        void step(float[] w, float[] grad, double lr) {
            t++;
            double c1 = 1 - Math.pow(BETA1, t);
            double c2 = 1 - Math.pow(BETA2, t);
            for (int i = 0; i < w.length; i++) {
                if (!kept[i]) {
                    continue;
                }
                m[i] = BETA1 * m[i] + (1 - BETA1) * grad[i];
                v[i] = BETA2 * v[i] + (1 - BETA2) * grad[i] * grad[i];
                w[i] -= (float) (lr * (m[i] / c1) / (Math.sqrt(v[i] / c2) + EPSILON));
            }
        }
    }
}
