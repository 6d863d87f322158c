package io.moescore.bench.roofline;

import io.moescore.model.ModelConfig;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What each op of one forward pass must compute and move at the least, from the model's dimensions: FLOPs of its
 * matrix products and the bytes it cannot avoid reading and writing in DRAM, as the CUDA backend stores them
 * (activations fp32 between ops, GEMM inputs and weights 16-bit, normed activations 16-bit where only products read
 * them). The roofline then says how close each op's measured time is to the GPU's limit: max(FLOPs / peak,
 * bytes / bandwidth). Causal attention counts its FLOPs once (the masked half is not work).
 */
public final class OpCosts {
    private OpCosts() {
    }

    /** The dimensions a forward's costs depend on (written into ForwardBenchmark's JSON). */
    public record Dims(int vocab, int hidden, int layers, int heads, int kvHeads, int headDim, int experts, int topK,
                       int expertFfn, int sharedExpertFfn, boolean qkNorm) {
        public static Dims of(ModelConfig c) {
            return new Dims(c.vocabSize(), c.hiddenSize(), c.numLayers(), c.numHeads(), c.numKvHeads(), c.headDim(),
                    c.numExperts(), c.topK(), c.expertFfnSize(), c.sharedExpertSize(),
                    c.qkNorm() != ModelConfig.QkNorm.NONE);
        }

        int qDim() {
            return heads * headDim;
        }

        int kvDim() {
            return kvHeads * headDim;
        }
    }

    /** One op's floor: FLOPs of its products and bytes it must move (per forward, all layers). */
    public record Cost(double flops, double bytes) {
        Cost plus(Cost o) {
            return new Cost(flops + o.flops, bytes + o.bytes);
        }

        Cost times(double n) {
            return new Cost(flops * n, bytes * n);
        }
    }

    /**
     * The floor of every op the profile names, for {@code tokens} tokens in sequences of {@code seq}, op name ->
     * cost. Names the backend does not report stay out of the table. {@code qkNormWithRope}: the backend ran q and
     * k's norms with RoPE (the op rmsNormRope), so rmsNorm is the first input norm alone.
     */
    public static Map<String, Cost> of(Dims d, long tokens, int seq, boolean qkNormWithRope) {
        double t = tokens;
        double h = d.hidden();
        double q = d.qDim();
        double kv = d.kvDim();
        double l = d.layers();
        double f32 = 4;
        double half = 2;
        Map<String, Cost> costs = new LinkedHashMap<>();
        costs.put("embed", new Cost(0, t * h * (half + f32)));
        // q, k, v, o and the router per layer: weights once, 16-bit inputs, fp32 outputs
        double linearFlops = 2 * t * h * (q + 2 * kv) + 2 * t * q * h + 2 * t * h * d.experts();
        double linearBytes = half * (h * (q + 2 * kv) + q * h + h * d.experts())
                + t * (3 * h * half + (q + 2 * kv) * f32)          // q, k, v from the normed copy
                + t * (q * (f32 + half) + h * f32)                 // o: attention's output converted, written
                + t * (h * f32 + d.experts() * f32);               // router: fp32 in and out
        costs.put("linear", new Cost(linearFlops, linearBytes).times(l));
        // causal attention: QK^T and PV over the keys before each query, half copies of q, k, v read, fp32 out
        double attnFlops = 4 * t * (seq + 1) / 2.0 * d.headDim() * d.heads();
        double attnBytes = t * (q + 2 * kv) * half + t * q * f32 + t * kv * (f32 + half); // + v's copy made
        costs.put("attention", new Cost(attnFlops, attnBytes).times(l));
        // RoPE on q and k in place, writing their half copies; the same bytes with their norms in the one pass
        costs.put("rope", new Cost(0, t * (q + kv) * (2 * f32 + half)).times(l));
        costs.put("rmsNormRope", costs.get("rope"));
        // whole-row norms: the first input norm; q/k norms in place where the model has them (unless with RoPE)
        costs.put("rmsNorm", new Cost(0, t * h * (f32 + half)
                + (d.qkNorm() && !qkNormWithRope ? l * t * (q + kv) * 2 * f32 : 0)));
        // x += delta; normed = rmsnorm(x): read x, delta, write x, the normed copy (+ fp32 before the ffn block)
        costs.put("addRmsNorm", new Cost(0, l * t * h * (3 * f32 + half) + l * t * h * (3 * f32 + half + f32)));
        double k = d.topK();
        double e = d.experts();
        double ff = d.expertFfn();
        // routed experts: gate, up, down over the routed rows; every expert's weights read once
        double expertFlops = 2 * t * k * 3 * h * ff;
        double expertBytes = e * 3 * h * ff * half + t * h * half + t * k * (2 * ff * half) + t * k * h * f32;
        costs.put("experts", new Cost(expertFlops, expertBytes).times(l));
        costs.put("route", new Cost(0, t * e * f32 + 4 * t * k * 4).times(l));
        // lm_head and log-softmax: the vocabulary's weights once, logits written and read back in chunks
        double v = d.vocab();
        costs.put("logProbs", new Cost(2 * t * h * v, v * h * half + t * h * half + 2 * t * v * f32));
        if (d.sharedExpertFfn() > 0) {
            double sf = d.sharedExpertFfn();
            costs.put("ffn", new Cost(2 * t * 3 * h * sf, 3 * h * sf * half + t * h * (half + f32)).times(l));
        }
        return costs;
    }
}
