package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.model.DType;
import io.moescore.model.LatentAttention;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.SafeTensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CPU engine on tiny random checkpoints of Granite MoE, DeepSeek-V3 and GLM-4.5 written here (fp32, with the
 * tensor names transformers saves), against {@link NaiveFamilyForward}: every next-token log-prob within 1e-4.
 * Each model is also checked to be sensitive to its family's features (a forward that ignores one misses by far
 * more than the tolerance), so a feature the engine dropped would fail. Until the transformers fixtures exist
 * (ReferenceFixtureTest), this is what holds the new families' plumbing.
 */
class FamilyEngineTest {
    static final long SEED = 424242L;
    static final double TOLERANCE = 1e-4;
    static final int[][] SEQUENCES = {{3}, {5, 9}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {60, 2, 33, 17, 8, 45, 12, 0, 63, 31,
            7, 19, 25, 40, 41, 52, 3, 3, 3, 11}};
    static final ObjectMapper JSON = new ObjectMapper();
    static CpuBackend cpu;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        System.out.println("FamilyEngineTest seed " + SEED);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    // ---- the models ------------------------------------------------------------------------------------------

    static final String GRANITE = """
            {"model_type": "granitemoe", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 16,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
             "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
             "rope_theta": 10000.0, "attention_bias": true, "embedding_multiplier": 3.0, "logits_scaling": 2.0,
             "residual_multiplier": 0.5, "attention_multiplier": 0.3, "num_local_experts": 4,
             "num_experts_per_tok": 2}""";

    static final String DEEPSEEK_YARN = """
            {"model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 24,
             "moe_intermediate_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
             "num_key_value_heads": 2, "n_shared_experts": 1, "n_routed_experts": 8, "routed_scaling_factor": 2.5,
             "kv_lora_rank": 16, "q_lora_rank": 12, "qk_rope_head_dim": 4, "v_head_dim": 6, "qk_nope_head_dim": 8,
             "n_group": 4, "topk_group": 2, "num_experts_per_tok": 3, "first_k_dense_replace": 1,
             "norm_topk_prob": true, "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
             "tie_word_embeddings": false, "attention_bias": true, "rope_interleave": true,
             "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                 "original_max_position_embeddings": 16, "beta_fast": 32, "beta_slow": 1,
                                 "mscale": 0.707, "mscale_all_dim": 1.0}}""";

    static final String DEEPSEEK_QPROJ = """
            {"model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 24,
             "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 2, "n_shared_experts": 2, "n_routed_experts": 8, "routed_scaling_factor": 1.0,
             "kv_lora_rank": 16, "q_lora_rank": null, "qk_rope_head_dim": 4, "v_head_dim": 6, "qk_nope_head_dim": 8,
             "n_group": 1, "topk_group": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 0,
             "norm_topk_prob": false, "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
             "tie_word_embeddings": false, "rope_interleave": false, "rope_theta": 500.0}""";

    static final String GLM = """
            {"model_type": "glm4_moe", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 24,
             "moe_intermediate_size": 16, "num_hidden_layers": 3, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 8, "partial_rotary_factor": 0.5, "n_routed_experts": 8,
             "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
             "routed_scaling_factor": 1.5, "norm_topk_prob": true, "first_k_dense_replace": 1,
             "attention_bias": true, "use_qk_norm": true, "hidden_act": "silu", "max_position_embeddings": 64,
             "rms_norm_eps": 1e-5, "rope_theta": 10000, "tie_word_embeddings": false}""";

    /** Random weights for every tensor the config implies, scaled like make_hf_fixtures.py's spread_init. */
    static Map<String, float[]> weights(ModelConfig c, Random r, Map<String, long[]> shapes) {
        Map<String, float[]> w = new LinkedHashMap<>();
        Consumer<Object[]> add = a -> {
            String name = (String) a[0];
            long[] shape = new long[a.length - 1];
            long n = 1;
            for (int i = 1; i < a.length; i++) {
                shape[i - 1] = ((Number) a[i]).longValue();
                n *= shape[i - 1];
            }
            float[] v = new float[(int) n];
            boolean vector = shape.length == 1;
            double scale = name.contains("embed_tokens") ? 1 : name.endsWith("lm_head.weight")
                    || name.endsWith("gate.weight") || name.endsWith("router.layer.weight")
                    || name.endsWith("router.weight") ? 2.0 / Math.sqrt(
                    shape[shape.length - 1]) : 1.0 / Math.sqrt(shape[shape.length - 1]);
            for (int i = 0; i < n; i++) {
                if (name.endsWith("e_score_correction_bias")) {
                    v[i] = (float) (0.15 * r.nextDouble());
                } else if (vector) {
                    v[i] = (float) ((name.endsWith("bias") ? 0 : 1) + 0.2 * r.nextGaussian());
                } else {
                    v[i] = (float) (r.nextGaussian() * scale);
                }
            }
            w.put(name, v);
            shapes.put(name, shape);
        };
        int h = c.hiddenSize();
        add.accept(new Object[] {"model.embed_tokens.weight", c.vocabSize(), h});
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            String a = p + "self_attn.";
            add.accept(new Object[] {p + "input_layernorm.weight", h});
            add.accept(new Object[] {p + "post_attention_layernorm.weight", h});
            LatentAttention m = c.latentAttention();
            if (m != null) {
                if (m.qLoraRank() > 0) {
                    add.accept(new Object[] {a + "q_a_proj.weight", m.qLoraRank(), h});
                    add.accept(new Object[] {a + "q_a_layernorm.weight", m.qLoraRank()});
                    add.accept(new Object[] {a + "q_b_proj.weight", c.qDim(), m.qLoraRank()});
                    if (c.qkvBias()) {
                        add.accept(new Object[] {a + "q_a_proj.bias", m.qLoraRank()});
                    }
                } else {
                    add.accept(new Object[] {a + "q_proj.weight", c.qDim(), h});
                }
                add.accept(new Object[] {a + "kv_a_proj_with_mqa.weight", m.kvLoraRank() + m.qkRopeHeadDim(), h});
                if (c.qkvBias()) {
                    add.accept(new Object[] {a + "kv_a_proj_with_mqa.bias", m.kvLoraRank() + m.qkRopeHeadDim()});
                }
                add.accept(new Object[] {a + "kv_a_layernorm.weight", m.kvLoraRank()});
                add.accept(new Object[] {a + "kv_b_proj.weight", c.numHeads() * (m.qkNopeHeadDim() + m.vHeadDim()),
                        m.kvLoraRank()});
            } else {
                add.accept(new Object[] {a + "q_proj.weight", c.qDim(), h});
                add.accept(new Object[] {a + "k_proj.weight", c.kvDim(), h});
                add.accept(new Object[] {a + "v_proj.weight", c.kvDim(), h});
                if (c.qkvBias()) {
                    add.accept(new Object[] {a + "q_proj.bias", c.qDim()});
                    add.accept(new Object[] {a + "k_proj.bias", c.kvDim()});
                    add.accept(new Object[] {a + "v_proj.bias", c.kvDim()});
                }
                if (c.qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
                    add.accept(new Object[] {a + "q_norm.weight", c.headDim()});
                    add.accept(new Object[] {a + "k_norm.weight", c.headDim()});
                }
            }
            if (c.attentionSinks()) {
                add.accept(new Object[] {a + "sinks", c.numHeads()});
            }
            add.accept(new Object[] {a + "o_proj.weight", h, c.attentionOutDim()});
            if (c.outputBias()) {
                add.accept(new Object[] {a + "o_proj.bias", h});
            }
            int e = c.numExperts();
            int ffn = c.expertFfnSize();
            if (!c.moeLayers()[l]) {
                ffn(add, p + "mlp.", c.denseFfnSize(), h);
            } else if (c.family() == ModelConfig.Family.GPT_OSS) {
                String moe = p + "mlp.";
                add.accept(new Object[] {moe + "router.weight", e, h});
                add.accept(new Object[] {moe + "router.bias", e});
                add.accept(new Object[] {moe + "experts.gate_up_proj", e, h, 2 * ffn});
                add.accept(new Object[] {moe + "experts.gate_up_proj_bias", e, 2 * ffn});
                add.accept(new Object[] {moe + "experts.down_proj", e, ffn, h});
                add.accept(new Object[] {moe + "experts.down_proj_bias", e, h});
            } else if (c.family() == ModelConfig.Family.GRANITEMOE) {
                add.accept(new Object[] {p + "block_sparse_moe.router.layer.weight", e, h});
                add.accept(new Object[] {p + "block_sparse_moe.input_linear.weight", e, 2 * ffn, h});
                add.accept(new Object[] {p + "block_sparse_moe.output_linear.weight", e, h, ffn});
            } else {
                add.accept(new Object[] {p + "mlp.gate.weight", e, h});
                add.accept(new Object[] {p + "mlp.gate.e_score_correction_bias", e});
                for (int x = 0; x < e; x++) {
                    ffn(add, p + "mlp.experts." + x + ".", ffn, h);
                }
                ffn(add, p + "mlp.shared_experts.", c.sharedExpertSize(), h);
            }
        }
        add.accept(new Object[] {"model.norm.weight", h});
        if (!c.tieWordEmbeddings()) {
            add.accept(new Object[] {"lm_head.weight", c.vocabSize(), h});
        }
        return w;
    }

    static void ffn(Consumer<Object[]> add, String prefix, int ffn, int h) {
        add.accept(new Object[] {prefix + "gate_proj.weight", ffn, h});
        add.accept(new Object[] {prefix + "up_proj.weight", ffn, h});
        add.accept(new Object[] {prefix + "down_proj.weight", h, ffn});
    }

    /** A model directory with this config and random fp32 weights; returns the weights. */
    Map<String, float[]> write(String config, Path model, long seed) throws IOException {
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), config);
        ModelConfig c = ModelConfig.load(model);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> w = weights(c, new Random(seed), shapes);
        assertEquals(c.parameterCount(), w.values().stream().mapToLong(v -> v.length).sum(),
                "ModelConfig.parameterCount() counts every tensor written");
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        w.forEach((name, values) -> writer.add(name, DType.F32, values, shapes.get(name)));
        writer.write(model.resolve("model.safetensors"));
        return w;
    }

    /** The engine's log-probs of every sequence, scored together (packed) and each alone: the same bits. */
    static double[][] engineLogProbs(Path model) {
        return engineLogProbs(model, cpu);
    }

    /** {@link #engineLogProbs(Path)} on a given backend. */
    static double[][] engineLogProbs(Path model, CpuBackend cpu) {
        try (Engine engine = Engine.load(model, cpu)) {
            ScoreOptions opts = new ScoreOptions(true, 0);
            ScoreBatch packed = engine.score(TokenBatch.of(SEQUENCES), opts);
            double[][] out = new double[SEQUENCES.length][];
            for (int s = 0; s < SEQUENCES.length; s++) {
                SequenceScore score = packed.scores().get(s);
                assertNull(score.error());
                SequenceScore alone = engine.score(TokenBatch.of(SEQUENCES[s]), opts).scores().get(0);
                assertArrayEquals(alone.tokenLogProbs(), score.tokenLogProbs(), "sequence " + s + " packed vs alone");
                out[s] = new double[score.tokenLogProbs().length];
                for (int i = 0; i < out[s].length; i++) {
                    out[s][i] = score.tokenLogProbs()[i];
                }
            }
            return out;
        }
    }

    /** The largest |engine - naive| over every token of every sequence. */
    static double worst(double[][] engine, ModelConfig config, Map<String, float[]> w) {
        NaiveFamilyForward naive = new NaiveFamilyForward(config, w);
        double worst = 0;
        for (int s = 0; s < SEQUENCES.length; s++) {
            double[] expected = naive.nextTokenLogProbs(SEQUENCES[s]);
            assertEquals(expected.length, engine[s].length);
            for (int i = 0; i < expected.length; i++) {
                double err = Math.abs(engine[s][i] - expected[i]);
                worst = Double.isNaN(err) ? Double.POSITIVE_INFINITY : Math.max(worst, err);
            }
        }
        return worst;
    }

    /**
     * The engine matches the naive forward of this config, and misses by more than 100 x the tolerance the naive
     * forward of each variant (the same weights read as if a feature were absent or different).
     */
    void check(String name, String config, long seed, Map<String, Consumer<ObjectNode>> variants) throws IOException {
        Path model = dir.resolve(name);
        Map<String, float[]> w = write(config, model, seed);
        ModelConfig c = ModelConfig.load(model);
        double[][] engine = engineLogProbs(model);
        double worst = worst(engine, c, w);
        System.out.printf("%s: worst |engine - naive| %.2e%n", name, worst);
        assertTrue(worst <= TOLERANCE, name + ": worst " + worst);
        for (Map.Entry<String, Consumer<ObjectNode>> v : variants.entrySet()) {
            ObjectNode changed = (ObjectNode) JSON.readTree(config);
            v.getValue().accept(changed);
            double off = worst(engine, ModelConfig.parse(changed, v.getKey()), w);
            System.out.printf("%s without %s: %.2e%n", name, v.getKey(), off);
            assertTrue(off > 100 * TOLERANCE, name + ": the naive forward " + v.getKey() + " is as close (" + off
                    + "): the feature is not exercised");
        }
    }

    @Test
    void graniteMatchesTheNaiveForward() throws IOException {
        check("granite", GRANITE, SEED, Map.of(
                "embedding_multiplier", n -> n.put("embedding_multiplier", 1.0),
                "residual_multiplier", n -> n.put("residual_multiplier", 1.0),
                "logits_scaling", n -> n.put("logits_scaling", 1.0),
                "attention_multiplier", n -> n.remove("attention_multiplier")));
    }

    @Test
    void deepseekWithQLoraYarnAndInterleavedRopeMatchesTheNaiveForward() throws IOException {
        check("deepseek-yarn", DEEPSEEK_YARN, SEED + 1, Map.of(
                "interleaved pairs", n -> n.put("rope_interleave", false),
                "yarn", n -> ((ObjectNode) n.get("rope_parameters")).put("rope_type", "default"),
                "the group limit", n -> n.put("topk_group", 4),
                "routed_scaling_factor", n -> n.put("routed_scaling_factor", 1.0)));
    }

    @Test
    void deepseekWithQProjAndSharedExpertsMatchesTheNaiveForward() throws IOException {
        check("deepseek-qproj", DEEPSEEK_QPROJ, SEED + 2, Map.of(
                "norm_topk_prob false", n -> n.put("norm_topk_prob", true)));
    }

    @Test
    void glmMatchesTheNaiveForward() throws IOException {
        check("glm", GLM, SEED + 3, Map.of(
                "partial rotary", n -> n.put("partial_rotary_factor", 1.0),
                "the group limit", n -> n.put("topk_group", 2)));
    }

    @Test
    void aMissingLatentTensorIsNamed() throws IOException {
        Path model = dir.resolve("deepseek-missing");
        write(DEEPSEEK_QPROJ, model, SEED);
        // the checkpoint has q_proj; a config asking for q_lora_rank 12 needs q_a_proj
        Files.writeString(model.resolve("config.json"),
                DEEPSEEK_QPROJ.replace("\"q_lora_rank\": null", "\"q_lora_rank\": 12"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Engine.load(model, cpu));
        assertTrue(e.getMessage().contains("q_a_proj"), e.getMessage());
    }

    /**
     * Granite's fused experts pruned 2:4 by magnitude while loading (--prune-experts): the engine equals the naive
     * forward over the same weights pruned here, slice by slice (gate, up, down of each expert).
     */
    @Test
    void graniteFusedExpertsArePrunedOnLoad() throws IOException {
        Path model = dir.resolve("granite-pruned");
        // 2:4 packing takes multiples of 32 columns: experts of 32
        Map<String, float[]> w = write(GRANITE.replace("\"intermediate_size\": 16", "\"intermediate_size\": 32"),
                model, SEED + 4);
        ModelConfig c = ModelConfig.load(model);
        int e = c.numExperts();
        int ffn = c.expertFfnSize();
        int h = c.hiddenSize();
        for (int l = 0; l < c.numLayers(); l++) {
            String moe = "model.layers." + l + ".block_sparse_moe.";
            float[] in = w.get(moe + "input_linear.weight").clone();
            float[] out = w.get(moe + "output_linear.weight").clone();
            for (int x = 0; x < e; x++) {
                for (int half = 0; half < 2; half++) {  // gate rows, then up rows
                    int from = (x * 2 + half) * ffn * h;
                    float[] slice = java.util.Arrays.copyOfRange(in, from, from + ffn * h);
                    System.arraycopy(io.moescore.sparse.Sparse24.pruneMagnitude(slice, ffn, h), 0, in, from, ffn * h);
                }
                int from = x * h * ffn;
                float[] down = java.util.Arrays.copyOfRange(out, from, from + h * ffn);
                System.arraycopy(io.moescore.sparse.Sparse24.pruneMagnitude(down, h, ffn), 0, out, from, h * ffn);
            }
            w.put(moe + "input_linear.weight", in);
            w.put(moe + "output_linear.weight", out);
        }
        LoadOptions prune = LoadOptions.DEFAULT.withPruneExperts(io.moescore.sparse.SparsityPattern.TWO_FOUR);
        try (Engine engine = Engine.load(model, cpu, prune)) {
            ScoreBatch b = engine.score(TokenBatch.of(SEQUENCES), new ScoreOptions(true, 0));
            double[][] got = new double[SEQUENCES.length][];
            for (int s = 0; s < got.length; s++) {
                float[] lp = b.scores().get(s).tokenLogProbs();
                got[s] = new double[lp.length];
                for (int i = 0; i < lp.length; i++) {
                    got[s][i] = lp[i];
                }
            }
            double worst = worst(got, c, w);
            assertTrue(worst <= TOLERANCE, "pruned granite: worst " + worst);
        }
    }
}
