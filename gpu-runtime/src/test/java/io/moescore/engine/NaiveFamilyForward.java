package io.moescore.engine;

import io.moescore.model.GroupRouting;
import io.moescore.model.LatentAttention;
import io.moescore.model.ModelConfig;
import io.moescore.model.Rope;
import java.util.Arrays;
import java.util.Map;

/**
 * A second forward pass for the tests of the issue-24 families, written apart from the engine and its backend: one
 * sequence at a time, in double precision, each step in the order and form of transformers' modeling code
 * (modeling_granitemoe, modeling_deepseek_v3, modeling_glm4_moe, modeling_gpt_oss): interleaved rotary pairs gathered to the halves
 * before rotate_half, the router as top-k then softmax (Granite) or transformers' group mask, the experts looped as
 * transformers loops them. Weights by their checkpoint names, row-major as stored.
 */
final class NaiveFamilyForward {
    private final ModelConfig c;
    private final Map<String, float[]> w;

    NaiveFamilyForward(ModelConfig config, Map<String, float[]> weights) {
        this.c = config;
        this.w = weights;
    }

    /** log p(tokens[i+1] | tokens[..i]) for i < n-1. */
    double[] nextTokenLogProbs(int[] tokens) {
        int n = tokens.length;
        int h = c.hiddenSize();
        double[][] x = new double[n][];
        float[] embed = w.get("model.embed_tokens.weight");
        for (int t = 0; t < n; t++) {
            x[t] = new double[h];
            for (int i = 0; i < h; i++) {
                x[t][i] = embed[tokens[t] * h + i] * (double) c.multipliers().embedding();
            }
        }
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] normed = new double[n][];
            for (int t = 0; t < n; t++) {
                normed[t] = rmsNorm(x[t], w.get(p + "input_layernorm.weight"), c.rmsNormEps());
            }
            double[][] attn = c.latentAttention() != null ? latentAttention(p + "self_attn.", normed)
                    : attention(p + "self_attn.", normed, l);
            for (int t = 0; t < n; t++) {
                double[] o = linear(p + "self_attn.o_proj", attn[t], c.outputBias());
                for (int i = 0; i < h; i++) {
                    x[t][i] += o[i] * c.multipliers().residual();
                }
                double[] ffnIn = rmsNorm(x[t], w.get(p + "post_attention_layernorm.weight"), c.rmsNormEps());
                double[] y = c.moeLayers()[l] ? moe(p, ffnIn) : mlp(p + "mlp.", ffnIn);
                for (int i = 0; i < h; i++) {
                    x[t][i] += y[i] * c.multipliers().residual();
                }
            }
        }
        float[] head = w.containsKey("lm_head.weight") ? w.get("lm_head.weight") : embed;
        double[] out = new double[Math.max(0, n - 1)];
        for (int t = 0; t + 1 < n; t++) {
            double[] f = rmsNorm(x[t], w.get("model.norm.weight"), c.rmsNormEps());
            double[] logits = new double[c.vocabSize()];
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < logits.length; v++) {
                logits[v] = dot(head, v * h, f) / c.multipliers().logitsDivisor();
                max = Math.max(max, logits[v]);
            }
            double sum = 0;
            for (double lv : logits) {
                sum += Math.exp(lv - max);
            }
            out[t] = logits[tokens[t + 1]] - max - Math.log(sum);
        }
        return out;
    }

    // ---- attention ---------------------------------------------------------------------------------------------

    /** q, k, v projections (+ biases), per-head q/k norm, rotary on the first rotaryDim columns of each head. */
    private double[][] attention(String a, double[][] x, int layer) {
        int n = x.length;
        int heads = c.numHeads();
        int kvHeads = c.numKvHeads();
        int d = c.headDim();
        double[][][] q = new double[n][][];
        double[][][] k = new double[n][][];
        double[][][] v = new double[n][][];
        for (int t = 0; t < n; t++) {
            q[t] = split(linear(a + "q_proj", x[t], c.qkvBias()), heads, d);
            k[t] = split(linear(a + "k_proj", x[t], c.qkvBias()), kvHeads, d);
            v[t] = split(linear(a + "v_proj", x[t], c.qkvBias()), kvHeads, d);
            for (int hd = 0; hd < heads; hd++) {
                if (c.qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
                    q[t][hd] = rmsNorm(q[t][hd], w.get(a + "q_norm.weight"), c.rmsNormEps());
                }
                q[t][hd] = ropeFirst(q[t][hd], t);
            }
            for (int hd = 0; hd < kvHeads; hd++) {
                if (c.qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
                    k[t][hd] = rmsNorm(k[t][hd], w.get(a + "k_norm.weight"), c.rmsNormEps());
                }
                k[t][hd] = ropeFirst(k[t][hd], t);
            }
        }
        return softmaxAttention(q, k, v, heads / kvHeads, c.slidingWindow()[layer],
                c.attentionSinks() ? w.get(a + "sinks") : null);
    }

    /** DeepSeek-V3's attention as DeepseekV3Attention.forward computes it. */
    private double[][] latentAttention(String a, double[][] x) {
        LatentAttention m = c.latentAttention();
        int n = x.length;
        int heads = c.numHeads();
        int nope = m.qkNopeHeadDim();
        int rope = m.qkRopeHeadDim();
        int vd = m.vHeadDim();
        double[][][] q = new double[n][][];
        double[][][] k = new double[n][heads][];
        double[][][] v = new double[n][heads][];
        for (int t = 0; t < n; t++) {
            double[] qAll = m.qLoraRank() == 0 ? linear(a + "q_proj", x[t], false)
                    : linear(a + "q_b_proj", rmsNorm(linear(a + "q_a_proj", x[t], c.qkvBias()),
                            w.get(a + "q_a_layernorm.weight"), 1e-6), false);
            q[t] = split(qAll, heads, nope + rope);
            double[] compressed = linear(a + "kv_a_proj_with_mqa", x[t], c.qkvBias());
            double[] kPass = Arrays.copyOfRange(compressed, 0, m.kvLoraRank());
            double[] kRot = rope(Arrays.copyOfRange(compressed, m.kvLoraRank(), m.kvLoraRank() + rope), t);
            double[][] kv = split(linear(a + "kv_b_proj", rmsNorm(kPass, w.get(a + "kv_a_layernorm.weight"), 1e-6),
                    false), heads, nope + vd);
            for (int hd = 0; hd < heads; hd++) {
                double[] qRot = rope(Arrays.copyOfRange(q[t][hd], nope, nope + rope), t);
                System.arraycopy(qRot, 0, q[t][hd], nope, rope);
                k[t][hd] = new double[nope + rope];
                System.arraycopy(kv[hd], 0, k[t][hd], 0, nope);
                System.arraycopy(kRot, 0, k[t][hd], nope, rope);
                v[t][hd] = Arrays.copyOfRange(kv[hd], nope, nope + vd);
            }
        }
        return softmaxAttention(q, k, v, 1, 0, null);
    }

    /**
     * Causal softmax(scale q.k) v per head, the heads' outputs side by side; keys j with t - j &lt; window where
     * window &gt; 0 (transformers' sliding_window_overlay: kv_idx &gt; q_idx - window). With sinks (gpt-oss's
     * eager_attention_forward): combined = cat(scores, sink[head]); combined -= max(combined); probs =
     * softmax(combined)[:-1], the sink's share dropped.
     */
    private double[][] softmaxAttention(double[][][] q, double[][][] k, double[][][] v, int group, int window,
                                        float[] sinks) {
        int n = q.length;
        int heads = q[0].length;
        int vd = v[0][0].length;
        double[][] out = new double[n][heads * vd];
        for (int t = 0; t < n; t++) {
            for (int hd = 0; hd < heads; hd++) {
                int kh = hd / group;
                int first = window > 0 ? Math.max(0, t - window + 1) : 0;
                double[] s = new double[t + 1];
                double max = sinks == null ? Double.NEGATIVE_INFINITY : sinks[hd];
                for (int j = first; j <= t; j++) {
                    s[j] = dot(q[t][hd], k[j][kh]) * c.attentionScale();
                    max = Math.max(max, s[j]);
                }
                double sum = sinks == null ? 0 : Math.exp(sinks[hd] - max);
                for (int j = first; j <= t; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = first; j <= t; j++) {
                    for (int i = 0; i < vd; i++) {
                        out[t][hd * vd + i] += s[j] / sum * v[j][kh][i];
                    }
                }
            }
        }
        return out;
    }

    /** Rotary embedding of the first rotaryDim columns of a head, the rest passed through (GLM's partial rotary). */
    private double[] ropeFirst(double[] head, int position) {
        int d = c.rope().rotaryDim();
        double[] out = head.clone();
        System.arraycopy(rope(Arrays.copyOfRange(head, 0, d), position), 0, out, 0, d);
        return out;
    }

    /**
     * transformers' rotary step: apply_rotary_pos_emb_interleave gathers the even columns to the first half and the
     * odd ones to the second, then x cos + rotate_half(x) sin, with cos and sin x the attention factor.
     */
    private double[] rope(double[] r, int position) {
        Rope rope = c.rope();
        int d = r.length;
        double[] x = r.clone();
        if (rope.interleaved()) {
            for (int i = 0; i < d / 2; i++) {
                x[i] = r[2 * i];
                x[i + d / 2] = r[2 * i + 1];
            }
        }
        float[] inv = rope.inverseFrequencies();
        double[] out = new double[d];
        for (int j = 0; j < d; j++) {
            double angle = position * (double) inv[j % (d / 2)];
            double rotated = j < d / 2 ? -x[j + d / 2] : x[j - d / 2];
            out[j] = (x[j] * Math.cos(angle) + rotated * Math.sin(angle)) * rope.attentionFactor();
        }
        return out;
    }

    // ---- feed-forward ------------------------------------------------------------------------------------------

    private double[] mlp(String prefix, double[] x) {
        double[] g = linear(prefix + "gate_proj", x, false);
        double[] u = linear(prefix + "up_proj", x, false);
        for (int i = 0; i < g.length; i++) {
            g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        }
        return linear(prefix + "down_proj", g, false);
    }

    private double[] moe(String p, double[] x) {
        if (c.family() == ModelConfig.Family.GPT_OSS) {
            return gptOssMoe(p + "mlp.", x);
        }
        int e = c.numExperts();
        int h = c.hiddenSize();
        boolean granite = c.family() == ModelConfig.Family.GRANITEMOE;
        String moe = granite ? p + "block_sparse_moe." : p + "mlp.";
        double[] logits = linear(moe + (granite ? "router.layer" : "gate"), x, false);
        int[] chosen;
        double[] gates;
        if (c.groupRouting() == null) {
            // GraniteMoeTopKGating: top-k logits, softmax over them
            chosen = topK(logits, c.topK());
            gates = new double[chosen.length];
            double max = logits[chosen[0]];
            double sum = 0;
            for (int j = 0; j < chosen.length; j++) {
                gates[j] = Math.exp(logits[chosen[j]] - max);
                sum += gates[j];
            }
            for (int j = 0; j < gates.length; j++) {
                gates[j] /= sum;
            }
        } else {
            // DeepseekV3TopkRouter.get_topk_indices and forward
            GroupRouting g = c.groupRouting();
            float[] bias = w.get(moe + "gate.e_score_correction_bias");
            double[] s = new double[e];
            double[] choice = new double[e];
            for (int i = 0; i < e; i++) {
                s[i] = 1 / (1 + Math.exp(-logits[i]));
                choice[i] = s[i] + bias[i];
            }
            int per = e / g.groups();
            double[] groupScores = new double[g.groups()];
            for (int gr = 0; gr < g.groups(); gr++) {
                int[] two = topK(Arrays.copyOfRange(choice, gr * per, (gr + 1) * per), 2);
                groupScores[gr] = choice[gr * per + two[0]] + choice[gr * per + two[1]];
            }
            int[] groups = topK(groupScores, g.topkGroups());
            boolean[] keep = new boolean[e];
            for (int gr : groups) {
                Arrays.fill(keep, gr * per, (gr + 1) * per, true);
            }
            double[] masked = choice.clone();
            for (int i = 0; i < e; i++) {
                masked[i] = keep[i] ? masked[i] : 0.0;
            }
            chosen = topK(masked, c.topK());
            gates = new double[chosen.length];
            double sum = 0;
            for (int j = 0; j < chosen.length; j++) {
                gates[j] = s[chosen[j]];
                sum += gates[j];
            }
            for (int j = 0; j < gates.length; j++) {
                gates[j] = (c.normalizeTopK() ? gates[j] / (sum + 1e-20) : gates[j]) * g.scalingFactor();
            }
        }
        double[] out = new double[h];
        int ffn = c.expertFfnSize();
        for (int j = 0; j < chosen.length; j++) {
            double[] y;
            if (granite) {
                // GraniteMoeParallelExperts: input_linear [E, 2I, H], chunk(2): gate then up; output_linear [E, H, I]
                float[] in = w.get(moe + "input_linear.weight");
                float[] down = w.get(moe + "output_linear.weight");
                int ex = chosen[j];
                double[] gu = new double[2 * ffn];
                for (int r = 0; r < 2 * ffn; r++) {
                    gu[r] = dot(in, (ex * 2 * ffn + r) * h, x);
                }
                double[] act = new double[ffn];
                for (int i = 0; i < ffn; i++) {
                    act[i] = gu[i] / (1 + Math.exp(-gu[i])) * gu[ffn + i];
                }
                y = new double[h];
                for (int r = 0; r < h; r++) {
                    y[r] = dot(down, (ex * h + r) * ffn, act);
                }
            } else {
                y = mlp(moe + "experts." + chosen[j] + ".", x);
            }
            for (int i = 0; i < h; i++) {
                out[i] += gates[j] * y[i];
            }
        }
        if (c.sharedExpertSize() > 0) {
            double[] shared = mlp(moe + "shared_experts.", x);
            for (int i = 0; i < h; i++) {
                out[i] += shared[i];
            }
        }
        return out;
    }

    /**
     * modeling_gpt_oss: GptOssTopKRouter (logits = x W^T + b; top-k of the logits; softmax over the k chosen), then
     * GptOssExperts as it computes them, x @ W: gate_up = x @ gate_up_proj[e] + gate_up_proj_bias[e] with
     * gate_up_proj [E, H, 2F]; gate = gate_up[::2], up = gate_up[1::2]; gate = clamp(gate, max=limit); up =
     * clamp(up, -limit, limit); glu = gate sigmoid(1.702 gate); y = ((up + 1) glu) @ down_proj[e] + down_proj_bias[e]
     * with down_proj [E, F, H]; out = sum of the routing weight times y.
     */
    private double[] gptOssMoe(String moe, double[] x) {
        int h = c.hiddenSize();
        int ffn = c.expertFfnSize();
        double limit = c.clampedSwiglu().limit();
        double[] logits = linear(moe + "router", x, true);
        int[] chosen = topK(logits, c.topK());
        double[] gates = new double[chosen.length];
        double sum = 0;
        for (int j = 0; j < chosen.length; j++) {
            gates[j] = Math.exp(logits[chosen[j]] - logits[chosen[0]]);
            sum += gates[j];
        }
        float[] gateUp = w.get(moe + "experts.gate_up_proj");
        float[] gateUpBias = w.get(moe + "experts.gate_up_proj_bias");
        float[] down = w.get(moe + "experts.down_proj");
        float[] downBias = w.get(moe + "experts.down_proj_bias");
        double[] out = new double[h];
        for (int j = 0; j < chosen.length; j++) {
            int e = chosen[j];
            double[] gu = new double[2 * ffn];
            for (int col = 0; col < 2 * ffn; col++) {
                double acc = gateUpBias[e * 2 * ffn + col];
                for (int i = 0; i < h; i++) {
                    acc += x[i] * gateUp[(e * h + i) * 2 * ffn + col];
                }
                gu[col] = acc;
            }
            double[] act = new double[ffn];
            for (int f = 0; f < ffn; f++) {
                double gate = Math.min(gu[2 * f], limit);
                double up = Math.max(-limit, Math.min(gu[2 * f + 1], limit));
                act[f] = (up + 1) * gate / (1 + Math.exp(-1.702 * gate));
            }
            for (int col = 0; col < h; col++) {
                double acc = downBias[e * h + col];
                for (int f = 0; f < ffn; f++) {
                    acc += act[f] * down[(e * ffn + f) * h + col];
                }
                out[col] += gates[j] / sum * acc;
            }
        }
        return out;
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    /** The indices of the k largest values, largest first (the lower index first on ties). */
    private static int[] topK(double[] v, int k) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (a, b) -> v[a] != v[b] ? Double.compare(v[b], v[a]) : Integer.compare(a, b));
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = idx[i];
        }
        return out;
    }

    private double[] linear(String name, double[] x, boolean bias) {
        float[] m = w.get(name + ".weight");
        if (m == null) {
            throw new IllegalArgumentException("no weight " + name);
        }
        int rows = m.length / x.length;
        double[] out = new double[rows];
        float[] b = bias ? w.get(name + ".bias") : null;
        for (int r = 0; r < rows; r++) {
            out[r] = dot(m, r * x.length, x) + (b == null ? 0 : b[r]);
        }
        return out;
    }

    private static double[] rmsNorm(double[] x, float[] weight, double eps) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * scale * weight[i];
        }
        return out;
    }

    private static double[][] split(double[] x, int parts, int width) {
        double[][] out = new double[parts][];
        for (int i = 0; i < parts; i++) {
            out[i] = Arrays.copyOfRange(x, i * width, (i + 1) * width);
        }
        return out;
    }

    private static double dot(float[] m, int offset, double[] x) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            s += m[offset + i] * x[i];
        }
        return s;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
