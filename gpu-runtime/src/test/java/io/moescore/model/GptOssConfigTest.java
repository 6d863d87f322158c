package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** gpt_oss's config.json: every math field read as GptOssConfig means it, or refused by name. */
class GptOssConfigTest {
    private static ModelConfig parse(Consumer<ObjectNode> edit) throws Exception {
        ObjectNode n = (ObjectNode) new ObjectMapper().readTree(ModelConfigFamiliesFixtures.GPT_OSS);
        edit.accept(n);
        return ModelConfig.parse(n, "gptoss.json");
    }

    private static String refused(Consumer<ObjectNode> edit) {
        return assertThrows(ModelFormatException.class, () -> parse(edit)).getMessage();
    }

    @Test
    void theReleasedShapeParses() throws Exception {
        ModelConfig c = parse(n -> { });
        assertEquals(ModelConfig.Family.GPT_OSS, c.family());
        assertEquals(8, c.numExperts());
        assertEquals(4, c.topK());
        assertTrue(c.normalizeTopK(), "softmax over the top-k logits = renormalised softmax top-k");
        assertEquals(64, c.expertFfnSize());
        assertEquals(16, c.headDim());
        assertEquals(0.25, c.attentionScale(), 0.0);
        assertArrayEquals(new int[] {16, 0, 16, 0}, c.slidingWindow());
        assertTrue(c.qkvBias() && c.outputBias() && c.attentionSinks() && c.routerBias());
        assertEquals(new ClampedSwiglu(1.702f, 7f), c.clampedSwiglu());
        assertEquals(1e-5f, c.rmsNormEps());
        Rope.Yarn y = c.rope().yarn();
        assertEquals(32.0, y.factor(), 0.0);
        assertFalse(y.truncate());
        assertEquals(64, y.originalMaxPositions());
        assertEquals(150000.0, c.ropeTheta(), 0.0);
        assertFalse(c.rope().interleaved());
        assertEquals("num_local_experts = 8", c.dimExperts().describe());
    }

    @Test
    void fieldsAndDefaultsAsGptOssConfigHasThem() throws Exception {
        assertEquals(new ClampedSwiglu(1.702f, 7f), parse(n -> n.remove("swiglu_limit")).clampedSwiglu());
        assertEquals(2.5f, parse(n -> n.put("swiglu_limit", 2.5)).clampedSwiglu().limit());
        assertEquals(2, parse(n -> {
            n.remove("num_experts_per_tok");
            n.put("experts_per_token", 2);
        }).topK());
        // without layer_types: sliding on layers 0, 2, ... ((i + 1) % 2), window default 128
        assertArrayEquals(new int[] {16, 0, 16, 0}, parse(n -> n.remove("layer_types")).slidingWindow());
        assertArrayEquals(new int[] {128, 0, 128, 0}, parse(n -> {
            n.remove("layer_types");
            n.remove("sliding_window");
        }).slidingWindow());
        assertEquals(null, parse(n -> n.putNull("rope_scaling")).rope().yarn());
        assertFalse(parse(n -> n.put("attention_bias", false)).qkvBias());
        // router_aux_loss_coef does not change scores
        assertEquals(parse(n -> { }).toString(), parse(n -> n.put("router_aux_loss_coef", 0.0)).toString());
    }

    @Test
    void unsupportedFieldsAreRefusedByName() {
        assertTrue(refused(n -> n.put("experts_per_token", 3)).contains("experts_per_token"));
        assertTrue(refused(n -> ((ObjectNode) n.get("quantization_config")).put("quant_method", "fp8"))
                .contains("quantization_config (fp8)"));
        assertTrue(refused(n -> n.put("swiglu_limit", -1)).contains("swiglu_limit"));
        assertTrue(refused(n -> n.put("hidden_act", "gelu")).contains("hidden_act"));
        assertTrue(refused(n -> {
            n.remove("rope_scaling");
        }).contains("rope_scaling"));
        assertTrue(refused(n -> n.putArray("layer_types").add("sliding_attention")).contains("layer_types"));
        assertTrue(refused(n -> n.putArray("layer_types").add("chunked_attention").add("full_attention")
                .add("full_attention").add("full_attention")).contains("chunked_attention"));
        assertTrue(refused(n -> ((ObjectNode) n.get("rope_scaling")).put("rope_type", "longrope"))
                .contains("longrope"));
        // MXFP4 is accepted for gpt_oss only
        String mixtral = ModelConfigFamiliesFixtures.GRANITE.replace("\"rope_scaling\": null,",
                "\"rope_scaling\": null, \"quantization_config\": {\"quant_method\": \"mxfp4\"},");
        assertTrue(assertThrows(ModelFormatException.class, () -> ModelConfig.parse(new ObjectMapper()
                .readTree(mixtral), "g")).getMessage().contains("mxfp4"));
    }

    @Test
    void parameterCountIncludesSinksBiasesAndRouterBias() throws Exception {
        ModelConfig c = parse(n -> { });
        ModelConfig plain = parse(n -> n.put("attention_bias", false));
        long h = 64;
        // the attention biases of q (8 x 16), k and v (2 x 16 each) and o (64), per layer
        assertEquals(4 * (128 + 32 + 32 + h), c.parameterCount() - plain.parameterCount());
        assertTrue(c.parameterCount() > c.routedExpertParameterCount());
    }
}
