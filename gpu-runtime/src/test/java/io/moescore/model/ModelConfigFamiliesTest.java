package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/**
 * config.json of the issue-24 families (Granite MoE, DeepSeek-V3, GLM-4.5): the fields each reads, in the shapes
 * transformers 4 and 5 write, and one refusal per setting moescore does not implement, naming its field.
 */
class ModelConfigFamiliesTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static final String GRANITE = ModelConfigFamiliesFixtures.GRANITE;
    static final String DEEPSEEK = ModelConfigFamiliesFixtures.DEEPSEEK;
    static final String GLM = ModelConfigFamiliesFixtures.GLM;

    static ObjectNode node(String json) throws IOException {
        return (ObjectNode) JSON.readTree(json);
    }

    static ModelFormatException assertRejected(ObjectNode node, String... mustContain) {
        return ModelConfigTest.assertRejected(node, mustContain);
    }

    // ------------------------------------------------------------------------------------------ granite

    @Test
    void granite() throws IOException {
        ModelConfig c = ModelConfig.parse(node(GRANITE), "test");
        assertEquals(ModelConfig.Family.GRANITEMOE, c.family());
        assertEquals(16, c.headDim());
        assertEquals(8, c.numExperts());
        assertEquals(32, c.expertFfnSize());
        assertTrue(c.normalizeTopK(), "softmax over the top-k logits = renormalised top-k probabilities");
        assertEquals(0.015625, c.attentionScale(), 0.0, "attention_multiplier is the softmax scale");
        assertEquals(new Multipliers(12f, 0.22f, 6f), c.multipliers());
        assertTrue(c.tieWordEmbeddings());
        assertTrue(c.rope().isPlain(16));
        assertNull(c.groupRouting());
        assertNull(c.latentAttention());
        assertEquals("num_local_experts", c.dimExperts().fields());
        assertEquals("intermediate_size", c.dimExpertFfn().fields());
    }

    @Test
    void graniteDefaultsTheMultipliersToOne() throws IOException {
        ObjectNode n = node(GRANITE);
        for (String f : new String[] {"embedding_multiplier", "logits_scaling", "residual_multiplier",
                "attention_multiplier"}) {
            n.remove(f);
        }
        ModelConfig c = ModelConfig.parse(n, "test");
        assertEquals(Multipliers.NONE, c.multipliers());
        assertEquals(1.0, c.attentionScale(), "transformers' GraniteMoeConfig default: 1.0, not 1/sqrt(head_dim)");
    }

    @Test
    void graniteRefusesAZeroOrNonNumericMultiplier() throws IOException {
        for (String f : new String[] {"embedding_multiplier", "logits_scaling", "residual_multiplier",
                "attention_multiplier"}) {
            ObjectNode zero = node(GRANITE);
            zero.put(f, 0.0);
            assertRejected(zero, "test", f);
            ObjectNode text = node(GRANITE);
            text.put(f, "twelve");
            assertRejected(text, "test", f);
        }
    }

    @Test
    void graniteRefusesYarnAndSlidingLayers() throws IOException {
        ObjectNode yarn = node(GRANITE);
        yarn.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 2.0);
        assertRejected(yarn, "rope_scaling", "yarn", "granitemoe");
        ObjectNode sliding = node(GRANITE);
        sliding.put("sliding_window", 16);
        sliding.putArray("layer_types").add("full_attention").add("sliding_attention");
        assertRejected(sliding, "layer_types[1]", "sliding_attention", "granitemoe");
    }

    // ----------------------------------------------------------------------------------------- deepseek

    @Test
    void deepseekV3() throws IOException {
        ModelConfig c = ModelConfig.parse(node(DEEPSEEK), "test");
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, c.family());
        LatentAttention m = c.latentAttention();
        assertEquals(new LatentAttention(24, 32, 16, 8, 12), m);
        assertEquals(24, c.headDim(), "qk_nope_head_dim + qk_rope_head_dim");
        assertEquals(12, c.vHeadDim());
        assertEquals(4 * 24, c.qDim());
        assertEquals(4 * 12, c.attentionOutDim());
        assertEquals(new GroupRouting(4, 2, 2.5f), c.groupRouting());
        assertArrayEquals(new boolean[] {false, true, true}, c.moeLayers(), "first_k_dense_replace 1");
        assertEquals(96, c.denseFfnSize());
        assertEquals(32, c.sharedExpertSize(), "n_shared_experts x moe_intermediate_size");
        assertFalse(c.sharedExpertGated());
        Rope rope = c.rope();
        assertEquals(8, rope.rotaryDim());
        assertTrue(rope.interleaved(), "rope_interleave defaults to true");
        assertNotNull(rope.yarn());
        assertEquals(4.0, rope.yarn().factor());
        assertEquals(64, rope.yarn().originalMaxPositions());
        double ln4 = Math.log(4);
        // _compute_yarn_parameters: mscale and mscale_all_dim both set -> get_mscale(f, mscale) / get_mscale(f, all)
        assertEquals((0.1 * 0.707 * ln4 + 1) / (0.1 * 1.0 * ln4 + 1), rope.yarn().attentionFactor(), 1e-12);
        // DeepseekV3Attention: qk_head_dim^-0.5 x yarn_get_mscale(factor, mscale_all_dim)^2
        double m2 = (0.1 * 1.0 * ln4 + 1) * (0.1 * 1.0 * ln4 + 1);
        assertEquals(m2 / Math.sqrt(24), c.attentionScale(), 1e-12);
        assertEquals("n_routed_experts", c.dimExperts().fields());
        assertEquals("n_shared_experts x moe_intermediate_size", c.dimSharedFfn().fields());
        assertTrue(c.toString().contains("latent attention"), c.toString());
    }

    @Test
    void deepseekInTransformers5ShapeWithAPlainQProj() throws IOException {
        ObjectNode n = node(DEEPSEEK);
        n.remove("rope_scaling");
        n.remove("rope_theta");
        n.remove("topk_method");
        n.remove("scoring_func");
        n.putNull("q_lora_rank");
        n.put("head_dim", 8);  // transformers 5 writes its rotary width here
        n.put("rope_interleave", false);
        n.putObject("rope_parameters").put("rope_theta", 50000.0).put("rope_type", "default");
        ModelConfig c = ModelConfig.parse(n, "test");
        assertEquals(0, c.latentAttention().qLoraRank());
        assertEquals(24, c.headDim());
        assertTrue(c.rope().yarn() == null && !c.rope().interleaved());
        assertEquals(50000.0, c.ropeTheta());
        assertEquals(Math.pow(24, -0.5), c.attentionScale(), 0.0, "no YaRN: qk_head_dim^-0.5");
    }

    @Test
    void deepseekYarnWithoutMscaleAllDimKeepsThePlainScale() throws IOException {
        ObjectNode n = node(DEEPSEEK);
        ((ObjectNode) n.get("rope_scaling")).remove("mscale_all_dim");
        ModelConfig c = ModelConfig.parse(n, "test");
        assertEquals(Math.pow(24, -0.5), c.attentionScale(), 0.0);
        assertEquals(0.1 * Math.log(4) + 1, c.rope().yarn().attentionFactor(), 1e-12, "get_mscale(factor)");
    }

    @Test
    void deepseekRefusals() throws IOException {
        assertRejected(with(DEEPSEEK, "topk_method", "group_limited_greedy"), "test", "topk_method",
                "group_limited_greedy");
        assertRejected(with(DEEPSEEK, "scoring_func", "softmax"), "scoring_func", "softmax");
        assertRejected(with(DEEPSEEK, "moe_layer_freq", 2), "moe_layer_freq");
        assertRejected(with(DEEPSEEK, "num_key_value_heads", 2), "num_key_value_heads", "num_attention_heads");
        assertRejected(with(DEEPSEEK, "n_group", 3), "n_routed_experts", "n_group");
        assertRejected(with(DEEPSEEK, "topk_group", 5), "topk_group", "n_group");
        assertRejected(with(DEEPSEEK, "n_group", 8), "n_group", "2 experts");
        assertRejected(with(DEEPSEEK, "num_experts_per_tok", 5), "num_experts_per_tok", "topk_group");
        assertRejected(with(DEEPSEEK, "first_k_dense_replace", 4), "first_k_dense_replace", "num_hidden_layers");
        assertRejected(with(DEEPSEEK, "routed_scaling_factor", -1), "routed_scaling_factor");
        assertRejected(with(DEEPSEEK, "head_dim", 64), "head_dim", "qk_rope_head_dim");
        assertRejected(with(DEEPSEEK, "qk_rope_head_dim", 7), "rotary dimension", "qk_rope_head_dim");
        for (String f : new String[] {"kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "v_head_dim",
                "qk_nope_head_dim", "n_group", "topk_group", "n_shared_experts", "first_k_dense_replace",
                "routed_scaling_factor", "moe_intermediate_size"}) {
            ObjectNode n = node(DEEPSEEK);
            n.remove(f);
            assertRejected(n, "test", f);
        }
        ObjectNode linear = node(DEEPSEEK);
        ((ObjectNode) linear.get("rope_scaling")).put("type", "linear");
        assertRejected(linear, "rope_scaling", "linear");
        ObjectNode fp8 = node(DEEPSEEK);
        fp8.putObject("quantization_config").put("quant_method", "fp8");
        assertRejected(fp8, "quantization_config", "fp8");
        ObjectNode beta = node(DEEPSEEK);
        ((ObjectNode) beta.get("rope_scaling")).put("beta_fast", "fast");
        assertRejected(beta, "beta_fast");
    }

    // ---------------------------------------------------------------------------------------------- glm

    @Test
    void glm45() throws IOException {
        ModelConfig c = ModelConfig.parse(node(GLM), "test");
        assertEquals(ModelConfig.Family.GLM4_MOE, c.family());
        assertEquals(16, c.headDim());
        assertEquals(8, c.rope().rotaryDim(), "head_dim x partial_rotary_factor");
        assertFalse(c.rope().interleaved());
        assertEquals(ModelConfig.QkNorm.PER_HEAD, c.qkNorm());
        assertTrue(c.qkvBias());
        assertFalse(c.outputBias(), "GLM-4.5's o_proj has no bias");
        assertEquals(new GroupRouting(2, 1, 1.5f), c.groupRouting());
        assertArrayEquals(new boolean[] {false, true, true}, c.moeLayers());
        assertEquals(32, c.sharedExpertSize());
        assertEquals(1.0 / Math.sqrt(16), c.attentionScale(), 0.0);
        assertEquals(1e-5f, c.rmsNormEps());
    }

    @Test
    void glmPartialRotaryInRopeParameters() throws IOException {
        ObjectNode n = node(GLM);
        n.remove("partial_rotary_factor");
        n.remove("rope_theta");
        n.putObject("rope_parameters").put("rope_theta", 10000.0).put("rope_type", "default")
                .put("partial_rotary_factor", 0.25);
        assertEquals(4, ModelConfig.parse(n, "test").rope().rotaryDim());
        ObjectNode twice = node(GLM);
        twice.putObject("rope_parameters").put("rope_type", "default").put("partial_rotary_factor", 0.25);
        assertRejected(twice, "partial_rotary_factor", "twice");
        assertRejected(with(GLM, "partial_rotary_factor", 1.5), "partial_rotary_factor", "1.5");
        assertRejected(with(GLM, "partial_rotary_factor", 0.1), "rotary dimension", "head_dim");
        ModelConfig noNorm = ModelConfig.parse(with(GLM, "use_qk_norm", false), "test");
        assertEquals(ModelConfig.QkNorm.NONE, noNorm.qkNorm());
    }

    @Test
    void partialRotaryStaysRefusedForTheFamiliesThatDoNotUseIt() throws IOException {
        assertRejected(with(GRANITE, "partial_rotary_factor", 0.5), "partial_rotary_factor", "granitemoe");
        assertRejected(with(DEEPSEEK, "partial_rotary_factor", 0.5), "partial_rotary_factor", "deepseek_v3");
    }

    static ObjectNode with(String json, String field, Object value) throws IOException {
        ObjectNode n = node(json);
        n.set(field, JSON.valueToTree(value));
        return n;
    }

    @Test
    void unknownFamilyNamesTheSupportedOnes() throws IOException {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> ModelConfig.parse(with(GRANITE, "model_type", "llama4"), "test"));
        assertTrue(e.getMessage().contains("llama4") && e.getMessage().contains("gpt_oss")
                && e.getMessage().contains("deepseek_v3")
                && e.getMessage().contains("granitemoe") && e.getMessage().contains("glm4_moe"), e.getMessage());
    }
}
