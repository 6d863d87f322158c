package io.moescore.routing;

import java.util.Arrays;
import java.util.Locale;

/**
 * MiSTer's threshold gates: per token, probabilities p over the experts from its router logits z, and every expert
 * with p_e above the threshold t is used with gate p_e, the raw probability (no renormalisation, whatever the
 * model's norm_topk_prob). A token gets a variable number of experts, possibly none (its MoE output is then zero,
 * plus the shared experts where the model has them).
 * <ul>
 * <li>{@code sigmoid:T}: p_e = 1 / (1 + exp(-z_e)); used where p_e &gt; T;</li>
 * <li>{@code softmax:T}: p = softmax(z); used where p_e &gt; T;</li>
 * <li>{@code sparsemax}: p = sparsemax(z) = max(z_e - tau, 0), with z sorted descending z_(1) &gt;= z_(2) &gt;= ...,
 *     m = the largest j with 1 + j z_(j) &gt; z_(1) + ... + z_(j), tau = (z_(1) + ... + z_(m) - 1) / m; used where
 *     p_e &gt; 0 (the threshold is 0);</li>
 * <li>{@code quadratic:T}: p = softmax(z^2) (element-wise square); used where p_e &gt; T;</li>
 * <li>{@code pioneer:T}: p = softmax(cos^2(z)); used where p_e &gt; T.</li>
 * </ul>
 * Non-finite logits, as in {@link TopKSoftmaxRouter}: NaN is larger than any threshold, so a NaN probability always
 * passes and reaches the token's scores (which the engine flags) rather than silently dropping the expert. Softmax,
 * quadratic and pioneer rows with no defined softmax (a NaN or infinite input to it, or all -Infinity) have all
 * probabilities NaN and so use every expert; sigmoid is per expert (only a NaN logit gives NaN); sparsemax gives
 * -Infinity logits 0 and makes the whole row NaN where a logit is NaN or +Infinity or all are -Infinity.
 */
public record ThresholdRouter(Gate gate, float threshold) implements Router {
    /** How probabilities are made from the logits. */
    public enum Gate {
        SIGMOID, SOFTMAX, SPARSEMAX, QUADRATIC, PIONEER;

        /** The name in a routing spec: {@code sigmoid}. */
        public String userName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public ThresholdRouter {
        if (gate == Gate.SPARSEMAX ? threshold != 0 : !(threshold >= 0 && threshold < 1)) {
            throw new IllegalArgumentException(gate.userName() + " threshold must lie in [0, 1) (sparsemax: 0), got "
                    + threshold);
        }
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        float[] p = new float[numExperts];
        float[] in = new float[numExperts];
        int[] keep = new int[numExperts];
        for (int t = 0; t < rows; t++) {
            int base = t * numExperts;
            probabilities(logits, base, numExperts, in, p);
            int m = 0;
            for (int e = 0; e < numExperts; e++) {
                if (p[e] > threshold || Float.isNaN(p[e])) {
                    keep[m++] = e;
                }
            }
            chosen[t] = Arrays.copyOf(keep, m);
            gates[t] = new float[m];
            for (int j = 0; j < m; j++) {
                gates[t][j] = p[keep[j]];
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    /** This gate's probabilities of the row at {@code base} into {@code p} ({@code in}: scratch). */
    private void probabilities(float[] logits, int base, int n, float[] in, float[] p) {
        switch (gate) {
            case SIGMOID -> {
                for (int e = 0; e < n; e++) {
                    p[e] = 1f / (1f + (float) Math.exp(-logits[base + e]));
                }
            }
            case SOFTMAX -> softmax(logits, base, n, p);
            case QUADRATIC, PIONEER -> {
                for (int e = 0; e < n; e++) {
                    float z = logits[base + e];
                    float c = (float) Math.cos(z);
                    in[e] = gate == Gate.QUADRATIC ? z * z : c * c;
                }
                softmax(in, 0, n, p);
            }
            case SPARSEMAX -> sparsemax(logits, base, n, p);
        }
    }

    private static void softmax(float[] z, int base, int n, float[] p) {
        float sum = Gates.softmaxNumerators(z, base, n, p);
        for (int e = 0; e < n; e++) {
            p[e] /= sum;
        }
    }

    /** sparsemax (Martins and Astudillo, 2016) of one row; see the class comment for its non-finite rows. */
    static void sparsemax(float[] logits, int base, int n, float[] p) {
        float[] sorted = new float[n];
        int finite = 0;
        boolean undefined = false;
        for (int e = 0; e < n; e++) {
            float z = logits[base + e];
            if (Float.isNaN(z) || z == Float.POSITIVE_INFINITY) {
                undefined = true;
            } else if (z != Float.NEGATIVE_INFINITY) {
                sorted[finite++] = z;
            }
        }
        if (undefined || finite == 0) {
            Arrays.fill(p, 0, n, Float.NaN);
            return;
        }
        Arrays.sort(sorted, 0, finite);  // ascending: z_(j) is sorted[finite - j]
        float cumulative = 0;
        float supportSum = 0;
        int support = 0;
        for (int j = 1; j <= finite; j++) {
            float z = sorted[finite - j];
            cumulative += z;
            if (1 + j * z > cumulative) {
                support = j;
                supportSum = cumulative;
            }
        }
        float tau = (supportSum - 1) / support;
        for (int e = 0; e < n; e++) {
            p[e] = Math.max(logits[base + e] - tau, 0f);
        }
    }
}
