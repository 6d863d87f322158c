package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.BiasedExperts;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.model.Checkpoint;
import io.moescore.model.ConfigDim;
import io.moescore.model.LatentAttention;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.Mxfp4;
import io.moescore.model.TensorRef;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.SparsityPattern;
import static io.moescore.sparse.SparsityPattern.SPARSE_META;
import static io.moescore.sparse.SparsityPattern.SPARSE_VALUES;
import static io.moescore.sparse.SparsityPattern.VECTOR_SPARSE_KEEP;
import io.moescore.sparse.VectorSparse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;
import java.util.stream.IntStream;

/**
 * A model's weights placed on a backend, with every tensor's shape checked against the config.
 * Tensor names follow Hugging Face: {@code model.layers.L.self_attn.q_proj.weight} and so on (DeepSeek's latent
 * attention: {@code q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj}). Experts are
 * read per expert ({@code experts.E.w1/w3/w2} for Mixtral, {@code experts.E.gate_proj/up_proj/down_proj} elsewhere)
 * or from fused 3-D tensors ({@code experts.gate_up_proj} [E, 2I, H], gate rows first, and {@code experts.down_proj}
 * [E, H, I]; Granite's {@code block_sparse_moe.input_linear} and {@code output_linear}), whichever the checkpoint
 * has; DeepSeek-V3 and GLM-4.5 add {@code mlp.gate.e_score_correction_bias} and {@code mlp.shared_experts.*}.
 * Per-expert weights of a compressed checkpoint (the sparsify tool's) are read in the pattern its sparsity.json
 * names ({@link SparsityPattern}; without one, the tensors present tell).
 *
 * <p>Under a memory cap ({@link LoadOptions#deviceMemory}) the routed experts of the MoE layers that do not fit
 * stay on the host ({@link #residency}, {@link #streamedExperts}); such a layer's {@link Layer#experts} is null and
 * {@link ExpertStore} places them for each forward. Dense streamed experts are read from the checkpoint's slices
 * then, so the checkpoint must stay open as long as these weights are used ({@link Engine#load} sees to it).
 */
public final class ModelWeights implements AutoCloseable {
    /**
     * One decoder layer. Nullable fields are absent in that family or layer: with latent attention, k and v are
     * null and q is q_proj (null where q_lora_rank is set); routerCorrectionBias is the group-limited router's
     * e_score_correction_bias, read to the host. qkv: q_proj, k_proj and v_proj stacked as one weight where the
     * backend projects them at once ({@link Backend#fusesQkv}; q, k and v are then null), else null. sinks: gpt-oss's
     * per-head attention sink logits [1, heads]; routerBias: gpt-oss's mlp.router.bias [1, experts]. experts: the
     * routed experts, null in a dense layer and where they stream ({@link ExpertStore} has them).
     */
    public record Layer(Tensor inputNorm, Tensor qkv, Tensor q, Tensor k, Tensor v, Tensor o,
                        Tensor qBias, Tensor kBias, Tensor vBias, Tensor oBias,
                        Tensor qNorm, Tensor kNorm, Latent latent, Tensor postAttentionNorm,
                        Tensor router, float[] routerCorrectionBias, ExpertWeights experts,
                        ExpertWeights sharedExpert, Tensor sharedExpertGate,
                        ExpertWeights denseFfn, Tensor sinks, Tensor routerBias) {
        boolean isMoe() {
            return router != null;
        }
    }

    /**
     * DeepSeek's latent attention projections: q_a_proj (+ bias), q_a_layernorm and q_b_proj (all null where q is
     * a plain q_proj), kv_a_proj_with_mqa (+ bias), kv_a_layernorm and kv_b_proj.
     */
    public record Latent(Tensor qA, Tensor qABias, Tensor qANorm, Tensor qB, Tensor kvA, Tensor kvABias,
                         Tensor kvANorm, Tensor kvB) {
    }

    private final List<AutoCloseable> owned = new ArrayList<>();
    private final Tensor embedding;
    private final List<Layer> layers;
    private final Tensor finalNorm;
    private final Tensor lmHead;
    private final ExpertResidency residency;
    /** Per layer, its routed experts held on the host where they stream (else null). */
    private final HostExperts[] streamed;

    private ModelWeights(Loader load, ModelConfig c, ExpertResidency residency) {
        this.residency = residency;
        this.streamed = new HostExperts[c.numLayers()];
        Checkpoint ckpt = load.ckpt;
        ConfigDim h = c.dimHidden();
        embedding = load.matrix("model.embed_tokens.weight", c.dimVocab(), h);
        List<Layer> list = new ArrayList<>();
        boolean fuseQkv = load.backend.fusesQkv(c);
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            String a = p + "self_attn.";
            Tensor qNorm = null;
            Tensor kNorm = null;
            if (c.qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
                qNorm = load.vector(a + "q_norm.weight", c.dimHead());
                kNorm = load.vector(a + "k_norm.weight", c.dimHead());
            } else if (c.qkNorm() == ModelConfig.QkNorm.WHOLE_PROJECTION) {
                qNorm = load.vector(a + "q_norm.weight", c.dimQ());
                kNorm = load.vector(a + "k_norm.weight", c.dimKv());
            }
            Tensor router = null;
            float[] correction = null;
            HostExperts routed = null;
            ExpertWeights shared = null;
            Tensor sharedGate = null;
            ExpertWeights dense = null;
            Tensor routerBias = null;
            if (c.moeLayers()[l]) {
                if (c.family() == ModelConfig.Family.GPT_OSS) {
                    // modeling_gpt_oss: mlp.router (weight [E, H], bias [E]); mlp.experts' fused tensors
                    String moe = p + "mlp.";
                    router = load.matrix(moe + "router.weight", c.dimExperts(), h);
                    routerBias = load.vector(moe + "router.bias", c.dimExperts());
                    routed = load.gptOssExperts(moe + "experts.", c);
                } else if (c.family() == ModelConfig.Family.GRANITEMOE) {
                    // modeling_granitemoe: router.layer [E, H]; input_linear [E, 2I, H] (gate rows first) and
                    // output_linear [E, H, I], as the fused layout
                    String moe = p + "block_sparse_moe.";
                    router = load.matrix(moe + "router.layer.weight", c.dimExperts(), h);
                    routed = load.fusedExperts(moe + "input_linear.weight", moe + "output_linear.weight", c);
                } else {
                    String moe = ckpt.has(p + "block_sparse_moe.gate.weight") ? p + "block_sparse_moe." : p + "mlp.";
                    router = load.matrix(moe + "gate.weight", c.dimExperts(), h);
                    routed = load.experts(moe + "experts.", c);
                    if (c.groupRouting() != null) {
                        correction = load.ref(moe + "gate.e_score_correction_bias", c.dimExperts()).toFloats();
                    }
                    if (c.sharedExpertSize() > 0 && c.sharedExpertGated()) {
                        shared = load.ffn(moe + "shared_expert.", c.dimSharedFfn(), h);
                        sharedGate = load.matrix(moe + "shared_expert_gate.weight", ConfigDim.of("one gate", 1), h);
                    } else if (c.sharedExpertSize() > 0) {
                        shared = load.ffn(moe + "shared_experts.", c.dimSharedFfn(), h);
                    }
                }
            } else {
                dense = load.ffn(p + "mlp.", c.dimDenseFfn(), h);
            }
            // routed experts: placed now, or held on the host to stream
            ExpertWeights experts = null;
            if (routed != null && residency.streams(l)) {
                streamed[l] = routed;
            } else if (routed != null) {
                experts = load.placeRouted(l, routed);
            }
            Latent latent = c.latentAttention() == null ? null : load.latent(a, c);
            boolean projections = latent == null;
            // q, k, v: one stacked weight where the backend projects them at once, else three
            Tensor qkv = fuseQkv ? load.stacked(load.slice(a + "q_proj.weight", c.dimQ(), h),
                    load.slice(a + "k_proj.weight", c.dimKv(), h), load.slice(a + "v_proj.weight", c.dimKv(), h))
                    : null;
            boolean separate = projections && !fuseQkv;
            Tensor q = separate || latent != null && c.latentAttention().qLoraRank() == 0
                    ? load.matrix(a + "q_proj.weight", c.dimQ(), h) : null;
            list.add(new Layer(
                    load.vector(p + "input_layernorm.weight", h),
                    qkv,
                    q,
                    separate ? load.matrix(a + "k_proj.weight", c.dimKv(), h) : null,
                    separate ? load.matrix(a + "v_proj.weight", c.dimKv(), h) : null,
                    load.matrix(a + "o_proj.weight", h, c.dimAttentionOut()),
                    projections && c.qkvBias() ? load.vector(a + "q_proj.bias", c.dimQ()) : null,
                    projections && c.qkvBias() ? load.vector(a + "k_proj.bias", c.dimKv()) : null,
                    projections && c.qkvBias() ? load.vector(a + "v_proj.bias", c.dimKv()) : null,
                    c.outputBias() ? load.vector(a + "o_proj.bias", h) : null,
                    qNorm, kNorm, latent,
                    load.vector(p + "post_attention_layernorm.weight", h),
                    router, correction, experts, shared, sharedGate, dense,
                    c.attentionSinks() ? load.vector(a + "sinks", ConfigDim.of("num_attention_heads", c.numHeads()))
                            : null,
                    routerBias));
        }
        layers = List.copyOf(list);
        finalNorm = load.vector("model.norm.weight", h);
        if (ckpt.has("lm_head.weight")) {
            lmHead = load.matrix("lm_head.weight", c.dimVocab(), h);
        } else if (c.tieWordEmbeddings()) {
            lmHead = embedding;
        } else {
            throw new ModelFormatException("model " + ckpt.directory() + " has no tensor lm_head.weight and "
                    + "config.json does not tie word embeddings");
        }
        owned.addAll(load.placed);
    }

    /** Places every weight of the checkpoint on the backend; on failure, what was placed is released. */
    public static ModelWeights load(Backend backend, ModelConfig config, Checkpoint checkpoint) {
        return load(backend, config, checkpoint, LoadOptions.DEFAULT);
    }

    /**
     * As {@link #load(Backend, ModelConfig, Checkpoint)}; with a {@code pruneExperts} pattern (null: none) the
     * routed experts of a dense checkpoint are pruned to it by magnitude while loading (for benchmarks and quick
     * experiments; {@code sparsify --method magnitude} writes the same weights to disk).
     */
    public static ModelWeights load(Backend backend, ModelConfig config, Checkpoint checkpoint,
                                    SparsityPattern pruneExperts) {
        return load(backend, config, checkpoint, LoadOptions.DEFAULT.withPruneExperts(pruneExperts));
    }

    /**
     * Places every weight of the checkpoint on the backend as the options say; unless they allow non-finite
     * weights, a NaN or infinity fails the load naming its tensor and index. On failure, what was placed is released.
     */
    public static ModelWeights load(Backend backend, ModelConfig config, Checkpoint checkpoint, LoadOptions options) {
        return load(backend, config, checkpoint, options, ExpertResidency.of(config,
                Engine.memoryPlan(config, checkpoint.directory(), backend), options.deviceMemory()));
    }

    /** As {@link #load(Backend, ModelConfig, Checkpoint, LoadOptions)} with a residency given (tests force one). */
    static ModelWeights load(Backend backend, ModelConfig config, Checkpoint checkpoint, LoadOptions options,
                             ExpertResidency residency) {
        return load(backend, config, checkpoint, options, residency, ExpertDevices.on(backend));
    }

    /**
     * As {@link #load(Backend, ModelConfig, Checkpoint, LoadOptions)} with a residency given, the routed experts of
     * resident layers placed through {@code routedOn} (on several devices: {@link DeviceGroup}).
     */
    static ModelWeights load(Backend backend, ModelConfig config, Checkpoint checkpoint, LoadOptions options,
                             ExpertResidency residency, ExpertDevices routedOn) {
        Loader loader = new Loader(backend, checkpoint, options, routedOn);
        try {
            return new ModelWeights(loader, config, residency);
        } catch (RuntimeException e) {
            loader.placed.forEach(ModelWeights::closeQuietly);
            throw e;
        }
    }

    public Tensor embedding() {
        return embedding;
    }

    public List<Layer> layers() {
        return layers;
    }

    public Tensor finalNorm() {
        return finalNorm;
    }

    public Tensor lmHead() {
        return lmHead;
    }

    /** Which layers' routed experts are resident and which stream (all resident without a cap). */
    public ExpertResidency residency() {
        return residency;
    }

    /** Layer {@code l}'s routed experts as the host holds them, where they stream; else null. */
    HostExperts streamedExperts(int l) {
        return streamed[l];
    }

    @Override
    public void close() {
        owned.forEach(ModelWeights::closeQuietly);
        owned.clear();
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            throw new IllegalStateException("cannot release weights", e);
        }
    }

    /** Reads tensors by name, checks shapes, places them, and remembers them for release. */
    private static final class Loader {
        final Backend backend;
        /** Where the routed experts go ({@link ExpertDevices#on} the backend, or spread over several devices). */
        final ExpertDevices routedOn;
        final Checkpoint ckpt;
        /** Everything placed so far, so a failed load can release it. */
        final List<AutoCloseable> placed = new ArrayList<>();
        /** The pattern the checkpoint's sparsity.json names, or null. */
        final SparsityPattern stored;
        final SparsityPattern pruneExperts;
        final boolean allowNonfinite;

        Loader(Backend backend, Checkpoint ckpt, LoadOptions options, ExpertDevices routedOn) {
            this.backend = backend;
            this.routedOn = routedOn;
            this.ckpt = ckpt;
            this.stored = SparsityPattern.ofCheckpoint(ckpt.directory());
            this.pruneExperts = options.pruneExperts();
            this.allowNonfinite = options.allowNonfinite();
        }

        /** A tensor of the shape the config implies, read with the finiteness check unless non-finite is allowed. */
        TensorRef ref(String name, ConfigDim... shape) {
            TensorRef ref = ckpt.get(name, shape);
            return allowNonfinite ? ref : ref.checkingFinite();
        }

        Tensor place(WeightSlice slice) {
            Tensor t = backend.weight(slice);
            placed.add(t);
            return t;
        }

        /** Weights of equal columns placed as one, rows one after another ({@link Backend#stackedWeight}). */
        Tensor stacked(WeightSlice... slices) {
            Tensor t = backend.stackedWeight(slices);
            placed.add(t);
            return t;
        }

        Tensor matrix(String name, ConfigDim rows, ConfigDim cols) {
            return place(slice(name, rows, cols));
        }

        Tensor vector(String name, ConfigDim n) {
            return place(WeightSlice.whole(ref(name, n), 1, n.intSize()));
        }

        /** Places experts held on the host (a dense block's, a shared expert's). */
        ExpertWeights place(HostExperts host) {
            ExpertWeights w = host.place(backend);
            placed.add(w);
            return w;
        }

        /** Places layer {@code l}'s routed experts where they go ({@link #routedOn}). */
        ExpertWeights placeRouted(int l, HostExperts host) {
            ExpertWeights w = routedOn.place(l, host);
            placed.add(w);
            return w;
        }

        /** How the experts are stored, judged by sparsity.json or, without one, by the first weight's tensors. */
        SparsityPattern storedPattern(String firstWeight) {
            if (stored != null) {
                return stored;
            }
            if (ckpt.has(firstWeight + VECTOR_SPARSE_KEEP)) {
                return SparsityPattern.VECTOR_128_2_8;
            }
            return ckpt.has(firstWeight + SPARSE_VALUES) ? SparsityPattern.TWO_FOUR : null;
        }

        /** A 2:4 packed weight written by the sparsify tool: NAME.sp24_values and NAME.sp24_meta. */
        Sparse24.Packed packed(String name, ConfigDim rows, ConfigDim cols) {
            TensorRef values = ref(name + SPARSE_VALUES, rows, cols.divide(2));
            TensorRef meta = ref(name + SPARSE_META, rows, cols.divide(32));
            return new Sparse24.Packed(rows.intSize(), cols.intSize(), values.toFloats(), meta.toInts());
        }

        /** A 128:2:8 weight written by the sparsify tool: its condensed matrix 2:4 packed, and NAME.vs128_keep. */
        VectorSparse.Packed vectorPacked(String name, ConfigDim rowDim, ConfigDim cols) {
            int rows = rowDim.intSize();
            String keepName = name + VECTOR_SPARSE_KEEP;
            if (!ckpt.has(keepName)) {
                throw new ModelFormatException("model " + ckpt.directory() + " is " + VectorSparse.PATTERN
                        + " sparse (its " + SparsityPattern.MANIFEST + ") but has no tensor " + keepName);
            }
            if (rows % 2 != 0) {
                throw new ModelFormatException("tensor " + name + " in " + ckpt.directory() + " has " + rows
                        + " rows: " + VectorSparse.PATTERN + " sparsity needs an even number");
            }
            TensorRef keep = ref(keepName, rowDim.divide(2),
                    new ConfigDim(VectorSparse.Packed.slices(cols.intSize()), cols.fields() + " / 128 slices"));
            Sparse24.Packed condensed = packed(name, rowDim.divide(2), cols);
            try {
                return new VectorSparse.Packed(rows, cols.intSize(), keep.toBytes(), condensed);
            } catch (IllegalArgumentException e) {
                throw new ModelFormatException("tensor " + keepName + " in " + keep.file() + ": " + e.getMessage());
            }
        }

        WeightSlice slice(String name, ConfigDim rows, ConfigDim cols) {
            return WeightSlice.whole(ref(name, rows, cols), rows.intSize(), cols.intSize());
        }

        /** A dense SwiGLU block: one expert. */
        ExpertWeights ffn(String prefix, ConfigDim ffn, ConfigDim hidden) {
            return place(HostExperts.dense(new WeightSlice[] {slice(prefix + "gate_proj.weight", ffn, hidden)},
                    new WeightSlice[] {slice(prefix + "up_proj.weight", ffn, hidden)},
                    new WeightSlice[] {slice(prefix + "down_proj.weight", hidden, ffn)}));
        }

        /**
         * Experts stored as two 3-D tensors: gate and up [E, 2I, H] (gate rows first; Granite's input_linear) and
         * down [E, H, I] (Granite's output_linear).
         */
        HostExperts fusedExperts(String gateUpName, String downName, ModelConfig c) {
            int n = c.numExperts();
            int ffn = c.expertFfnSize();
            int h = c.hiddenSize();
            TensorRef gateUp = ref(gateUpName, c.dimExperts(), c.dimExpertFfn().times(2), c.dimHidden());
            TensorRef downAll = ref(downName, c.dimExperts(), c.dimHidden(), c.dimExpertFfn());
            WeightSlice[] gate = new WeightSlice[n];
            WeightSlice[] up = new WeightSlice[n];
            WeightSlice[] down = new WeightSlice[n];
            long gateUpStride = 2L * ffn * h;
            long downStride = (long) h * ffn;
            for (int e = 0; e < n; e++) {
                gate[e] = new WeightSlice(gateUp, e * gateUpStride, ffn, h);
                up[e] = new WeightSlice(gateUp, e * gateUpStride + (long) ffn * h, ffn, h);
                down[e] = new WeightSlice(downAll, e * downStride, h, ffn);
            }
            return dense(gate, up, down);
        }

        /**
         * gpt-oss's experts (modeling_gpt_oss GptOssExperts), which compute x @ W (weights stored [in, out], the
         * transpose of nn.Linear's):
         * <pre>
         *   gate_up = x @ gate_up_proj[e] + gate_up_proj_bias[e]      gate_up_proj [E, H, 2F], bias [E, 2F]
         *   gate, up = gate_up[..., ::2], gate_up[..., 1::2]           (interleaved columns, gate first)
         *   y = ClampedSwiglu(gate, up) @ down_proj[e] + down_proj_bias[e]   down_proj [E, F, H], bias [E, H]
         * </pre>
         * so gate row f (our [ffn, hidden] layout) is column 2f of gate_up_proj[e], up row f column 2f + 1, and
         * down row h (our [hidden, ffn]) column h of down_proj[e]. Released checkpoints store the two weights as
         * MXFP4 ({@link Mxfp4}: NAME_blocks / NAME_scales), already [out, in] once dequantized: gate row f is row
         * 2f of gate_up_proj's [2F, H], down is [H, F] as is. Biases are always plain tensors.
         */
        HostExperts gptOssExperts(String prefix, ModelConfig c) {
            if (pruneExperts != null) {
                throw new UnsupportedOperationException("--prune-experts " + pruneExperts + " is not implemented for "
                        + "gpt_oss's biased experts (" + prefix + "gate_up_proj)");
            }
            int n = c.numExperts();
            int ffn = c.expertFfnSize();
            int h = c.hiddenSize();
            ConfigDim e = c.dimExperts();
            ConfigDim two = c.dimExpertFfn().times(2);
            // per expert: gate_up as [2F, H] (output feature rows), down as [H, F]
            IntFunction<float[]> gateUp;
            IntFunction<float[]> down;
            if (ckpt.has(prefix + "gate_up_proj_blocks")) {
                Mxfp4.Weight gu = Mxfp4.read(ckpt, prefix + "gate_up_proj", e, two, c.dimHidden());
                Mxfp4.Weight d = Mxfp4.read(ckpt, prefix + "down_proj", e, c.dimHidden(), c.dimExpertFfn());
                gateUp = gu::expert;
                down = d::expert;
            } else {
                TensorRef gu = ref(prefix + "gate_up_proj", e, c.dimHidden(), two);
                TensorRef d = ref(prefix + "down_proj", e, c.dimExpertFfn(), c.dimHidden());
                gateUp = x -> transpose(gu.toFloats((long) x * h * 2 * ffn, h * 2 * ffn), h, 2 * ffn);
                down = x -> transpose(d.toFloats((long) x * ffn * h, ffn * h), ffn, h);
            }
            float[] gateUpBias = ref(prefix + "gate_up_proj_bias", e, two).toFloats();
            float[] downBias = ref(prefix + "down_proj_bias", e, c.dimHidden()).toFloats();
            float[][] gate = new float[n][ffn * h];
            float[][] up = new float[n][ffn * h];
            float[][] downs = new float[n][];
            float[][] gateBias = new float[n][ffn];
            float[][] upBias = new float[n][ffn];
            float[][] downBiases = new float[n][];
            for (int x = 0; x < n; x++) {
                float[] gu = gateUp.apply(x);
                for (int f = 0; f < ffn; f++) {
                    System.arraycopy(gu, 2 * f * h, gate[x], f * h, h);
                    System.arraycopy(gu, (2 * f + 1) * h, up[x], f * h, h);
                    gateBias[x][f] = gateUpBias[x * 2 * ffn + 2 * f];
                    upBias[x][f] = gateUpBias[x * 2 * ffn + 2 * f + 1];
                }
                downs[x] = down.apply(x);
                downBiases[x] = Arrays.copyOfRange(downBias, x * h, (x + 1) * h);
            }
            return HostExperts.biased(new BiasedExperts(h, ffn, gate, up, downs, gateBias, upBias, downBiases,
                    c.clampedSwiglu()));
        }

        /** [rows, cols] to [cols, rows]. */
        private static float[] transpose(float[] a, int rows, int cols) {
            float[] out = new float[a.length];
            for (int r = 0; r < rows; r++) {
                for (int col = 0; col < cols; col++) {
                    out[col * rows + r] = a[r * cols + col];
                }
            }
            return out;
        }

        /** The latent attention projections of one layer ({@code a}: its self_attn. prefix). */
        Latent latent(String a, ModelConfig c) {
            LatentAttention m = c.latentAttention();
            ConfigDim h = c.dimHidden();
            boolean bias = c.qkvBias();
            boolean qLora = m.qLoraRank() > 0;
            return new Latent(
                    qLora ? matrix(a + "q_a_proj.weight", m.dimQLora(), h) : null,
                    qLora && bias ? vector(a + "q_a_proj.bias", m.dimQLora()) : null,
                    qLora ? vector(a + "q_a_layernorm.weight", m.dimQLora()) : null,
                    qLora ? matrix(a + "q_b_proj.weight", c.dimQ(), m.dimQLora()) : null,
                    matrix(a + "kv_a_proj_with_mqa.weight", m.dimKvA(), h),
                    bias ? vector(a + "kv_a_proj_with_mqa.bias", m.dimKvA()) : null,
                    vector(a + "kv_a_layernorm.weight", m.dimKvLora()),
                    matrix(a + "kv_b_proj.weight", ConfigDim.of("num_attention_heads", c.numHeads())
                            .times(m.dimKvBHead()), m.dimKvLora()));
        }

        HostExperts experts(String prefix, ModelConfig c) {
            int n = c.numExperts();
            int ffn = c.expertFfnSize();
            int h = c.hiddenSize();
            ConfigDim ffnDim = c.dimExpertFfn();
            ConfigDim hDim = c.dimHidden();
            WeightSlice[] gate = new WeightSlice[n];
            WeightSlice[] up = new WeightSlice[n];
            WeightSlice[] down = new WeightSlice[n];
            if (ckpt.has(prefix + "gate_up_proj")) {
                return fusedExperts(prefix + "gate_up_proj", prefix + "down_proj", c);
            }
            boolean mixtralNames = ckpt.has(prefix + "0.w1.weight") || ckpt.has(prefix + "0.w1.weight" + SPARSE_VALUES);
            String[] names = mixtralNames ? new String[] {"w1.weight", "w3.weight", "w2.weight"}
                    : new String[] {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
            ConfigDim[][] dims = {{ffnDim, hDim}, {ffnDim, hDim}, {hDim, ffnDim}};
            SparsityPattern pattern = storedPattern(prefix + "0." + names[0]);
            if (pattern == SparsityPattern.VECTOR_128_2_8) {
                VectorSparse.Packed[][] packed = new VectorSparse.Packed[3][n];
                for (int e = 0; e < n; e++) {
                    for (int w = 0; w < 3; w++) {
                        packed[w][e] = vectorPacked(prefix + e + "." + names[w], dims[w][0], dims[w][1]);
                    }
                }
                return HostExperts.vectorSparse(packed);
            }
            if (pattern == SparsityPattern.TWO_FOUR) {
                Sparse24.Packed[][] packed = new Sparse24.Packed[3][n];
                for (int e = 0; e < n; e++) {
                    for (int w = 0; w < 3; w++) {
                        packed[w][e] = packed(prefix + e + "." + names[w], dims[w][0], dims[w][1]);
                    }
                }
                return HostExperts.sparse(packed);
            }
            WeightSlice[][] all = {gate, up, down};
            for (int e = 0; e < n; e++) {
                for (int w = 0; w < 3; w++) {
                    all[w][e] = slice(prefix + e + "." + names[w], dims[w][0], dims[w][1]);
                }
            }
            return dense(gate, up, down);
        }

        /** Dense experts, pruned to {@link #pruneExperts} by magnitude on the way where one is asked for. */
        private HostExperts dense(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
            int n = gate.length;
            WeightSlice[][] all = {gate, up, down};
            if (pruneExperts == SparsityPattern.VECTOR_128_2_8) {
                VectorSparse.Packed[][] packed = new VectorSparse.Packed[3][n];
                IntStream.range(0, 3 * n).parallel().forEach(i -> {
                    WeightSlice w = all[i / n][i % n];
                    packed[i / n][i % n] = VectorSparse.pack(
                            VectorSparse.pruneMagnitude(floats(w), w.rows(), w.cols()), w.rows(), w.cols());
                });
                return HostExperts.vectorSparse(packed);
            }
            if (pruneExperts == SparsityPattern.TWO_FOUR) {
                Sparse24.Packed[][] packed = new Sparse24.Packed[3][n];
                IntStream.range(0, 3 * n).parallel().forEach(i -> {
                    WeightSlice w = all[i / n][i % n];
                    packed[i / n][i % n] = Sparse24.pack(
                            Sparse24.pruneMagnitude(floats(w), w.rows(), w.cols()), w.rows(), w.cols());
                });
                return HostExperts.sparse(packed);
            }
            return HostExperts.dense(gate, up, down);
        }

        private static float[] floats(WeightSlice w) {
            return w.tensor().toFloats(w.firstElement(), w.rows() * w.cols());
        }
    }
}
