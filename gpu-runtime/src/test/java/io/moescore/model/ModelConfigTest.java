package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.TestModels;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** config.json parsing: every fixture's key fields, and one error per unsupported or inconsistent setting. */
class ModelConfigTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path fixture(String name) {
        return TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf").resolve(name);
    }

    static ObjectNode configOf(String fixture) throws IOException {
        return (ObjectNode) JSON.readTree(fixture(fixture).resolve("config.json").toFile());
    }

    /** Parses the node and expects a ModelFormatException whose message holds every string given. */
    static ModelFormatException assertRejected(ObjectNode node, String... mustContain) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelConfig.parse(node, "test"));
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), () -> "message should contain '" + s + "': " + e.getMessage());
        }
        return e;
    }

    // ---------------------------------------------------------------------------------------- fixtures

    @Test
    void mixtral() {
        ModelConfig c = ModelConfig.load(fixture("mixtral-bf16"));
        assertEquals(ModelConfig.Family.MIXTRAL, c.family());
        assertEquals(512, c.vocabSize());
        assertEquals(64, c.hiddenSize());
        assertEquals(2, c.numLayers());
        assertEquals(4, c.numHeads());
        assertEquals(2, c.numKvHeads());
        assertEquals(16, c.headDim(), "head_dim null: hidden_size / num_attention_heads");
        assertEquals(64, c.qDim());
        assertEquals(32, c.kvDim());
        assertEquals(48, c.expertFfnSize());
        assertEquals(0, c.denseFfnSize());
        assertEquals(8, c.numExperts(), "from num_local_experts");
        assertEquals(2, c.topK());
        assertTrue(c.normalizeTopK());
        assertEquals(0, c.sharedExpertSize());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-6f, c.rmsNormEps());
        assertEquals(256, c.maxPositions());
        assertFalse(c.tieWordEmbeddings());
        assertFalse(c.qkvBias());
        assertFalse(c.outputBias());
        assertEquals(ModelConfig.QkNorm.NONE, c.qkNorm());
        assertTrue(Float.isNaN(c.clipQkv()));
        assertArrayEquals(new int[] {0, 0}, c.slidingWindow(), "sliding_window null");
        assertArrayEquals(new boolean[] {true, true}, c.moeLayers());
    }

    @Test
    void qwen2Moe() {
        ModelConfig c = ModelConfig.load(fixture("qwen2moe-fp32"));
        assertEquals(ModelConfig.Family.QWEN2_MOE, c.family());
        assertEquals(16, c.headDim());
        assertEquals(6, c.numExperts());
        assertEquals(3, c.topK());
        assertEquals(32, c.expertFfnSize());
        assertEquals(96, c.denseFfnSize());
        assertEquals(80, c.sharedExpertSize());
        assertArrayEquals(new boolean[] {true, false}, c.moeLayers(), "mlp_only_layers [1]");
        assertTrue(c.qkvBias());
        assertFalse(c.outputBias());
        assertTrue(c.tieWordEmbeddings());
        assertFalse(c.normalizeTopK());
        assertEquals(50000.0, c.ropeTheta());
        assertEquals(ModelConfig.QkNorm.NONE, c.qkNorm());
        assertArrayEquals(new int[] {0, 0}, c.slidingWindow());
    }

    @Test
    void qwen3MoeSharded() {
        ModelConfig c = ModelConfig.load(fixture("qwen3moe-bf16-sharded"));
        assertEquals(ModelConfig.Family.QWEN3_MOE, c.family());
        assertEquals(24, c.headDim(), "explicit head_dim, not 64 / 4");
        assertEquals(96, c.qDim());
        assertEquals(48, c.kvDim());
        assertEquals(8, c.numExperts(), "taken from num_local_experts");
        assertEquals(2, c.topK());
        assertEquals(40, c.expertFfnSize());
        assertEquals(0, c.sharedExpertSize());
        assertTrue(c.normalizeTopK());
        assertEquals(1_000_000.0, c.ropeTheta());
        assertEquals(ModelConfig.QkNorm.PER_HEAD, c.qkNorm());
        assertFalse(c.qkvBias());
        assertArrayEquals(new boolean[] {true, true}, c.moeLayers());
    }

    @Test
    void olmoe() {
        for (String name : new String[] {"olmoe-fp32", "olmoe-fp32-fused"}) {
            ModelConfig c = ModelConfig.load(fixture(name));
            assertEquals(ModelConfig.Family.OLMOE, c.family(), name);
            assertEquals(ModelConfig.QkNorm.WHOLE_PROJECTION, c.qkNorm(), name);
            assertEquals(8, c.numExperts(), name);
            assertEquals(3, c.topK(), name);
            assertEquals(32, c.expertFfnSize(), name);
            assertEquals(4, c.numKvHeads(), name);
            assertFalse(c.normalizeTopK(), name);
            assertFalse(c.qkvBias(), name);
            assertFalse(c.outputBias(), name);
            assertTrue(Float.isNaN(c.clipQkv()), "clip_qkv null: " + name);
            assertEquals(10000.0, c.ropeTheta(), name);
            assertArrayEquals(new boolean[] {true, true}, c.moeLayers(), name);
        }
    }

    @Test
    void demoModel() {
        ModelConfig c = ModelConfig.load(TestModels.demoModel());
        assertEquals(ModelConfig.Family.MIXTRAL, c.family());
        assertEquals(4096, c.vocabSize());
        assertEquals(192, c.hiddenSize());
        assertEquals(32, c.headDim());
        assertEquals(4, c.numLayers());
        assertEquals(384, c.expertFfnSize());
        assertEquals(1e-5f, c.rmsNormEps());
        assertEquals(1024, c.maxPositions());
    }

    @Test
    void everyFixtureParses() {
        for (Path p : TestModels.hfFixtures()) {
            ModelConfig c = ModelConfig.load(p);
            assertTrue(c.toString().startsWith(c.family().modelType), c.toString());
        }
    }

    // ----------------------------------------------------------------------------------- variations

    @Test
    void ropeThetaAtTopLevelTransformers4() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.remove("rope_parameters");
        n.put("rope_theta", 500000.0);
        assertEquals(500000.0, ModelConfig.parse(n, "test").ropeTheta());
        n.put("rope_theta", 1000000);
        assertEquals(1000000.0, ModelConfig.parse(n, "test").ropeTheta(), "an integer rope_theta is fine");
        n.putNull("rope_scaling");
        assertEquals(1000000.0, ModelConfig.parse(n, "test").ropeTheta(), "rope_scaling null is plain rope");
    }

    @Test
    void ropeThetaDefaultsTo10000() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.remove("rope_parameters");
        assertEquals(10000.0, ModelConfig.parse(n, "test").ropeTheta());
    }

    @Test
    void ropeParametersWinOverTopLevelRopeTheta() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.put("rope_theta", 123.0);
        assertEquals(50000.0, ModelConfig.parse(n, "test").ropeTheta());
    }

    @Test
    void ropeScalingDefaultIsAccepted() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.putObject("rope_scaling").put("type", "default");
        assertEquals(10000.0, ModelConfig.parse(n, "test").ropeTheta());
    }

    @Test
    void numExpertsTakenFromEitherName() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.remove("num_local_experts");
        n.put("num_experts", 4);
        assertEquals(4, ModelConfig.parse(n, "test").numExperts());
    }

    @Test
    void qwen2SparseStepAndSlidingWindow() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.put("num_hidden_layers", 4);
        n.remove("layer_types");
        n.putArray("mlp_only_layers");
        n.put("decoder_sparse_step", 2);
        n.put("use_sliding_window", true);
        n.put("sliding_window", 64);
        n.put("max_window_layers", 3);
        ModelConfig c = ModelConfig.parse(n, "test");
        assertArrayEquals(new boolean[] {false, true, false, true}, c.moeLayers());
        assertArrayEquals(new int[] {0, 0, 0, 64}, c.slidingWindow());
    }

    // --------------------------------------------------------------------------------------- errors

    @Test
    void unknownModelType() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("model_type", "llama");
        ModelFormatException e = assertRejected(n, "model_type", "llama");
        assertTrue(e.getMessage().startsWith("test"), "names the source: " + e.getMessage());
    }

    @Test
    void missingModelType() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.remove("model_type");
        assertRejected(n, "test", "model_type", "missing");
    }

    @Test
    void ropeScalingYarn() throws IOException {
        ObjectNode n = configOf("qwen3moe-bf16-sharded");
        ObjectNode scaling = n.putObject("rope_scaling");
        scaling.put("rope_type", "yarn");
        scaling.put("factor", 4.0);
        scaling.put("original_max_position_embeddings", 32768);
        assertRejected(n, "test", "rope_scaling", "yarn");
    }

    @Test
    void ropeScalingOldTypeKey() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.putObject("rope_scaling").put("type", "dynamic").put("factor", 2.0);
        assertRejected(n, "rope_scaling", "dynamic");
    }

    @Test
    void ropeParametersLinear() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        ((ObjectNode) n.get("rope_parameters")).put("rope_type", "linear").put("factor", 2.0);
        assertRejected(n, "test", "rope_parameters", "linear");
    }

    @Test
    void partialRotaryFactor() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("partial_rotary_factor", 0.5);
        assertRejected(n, "partial_rotary_factor");
        n.remove("partial_rotary_factor");
        ((ObjectNode) n.get("rope_parameters")).put("partial_rotary_factor", 0.25);
        assertRejected(n, "rope_parameters", "partial_rotary_factor");
    }

    @Test
    void hiddenActGelu() throws IOException {
        ObjectNode n = configOf("olmoe-fp32");
        n.put("hidden_act", "gelu");
        assertRejected(n, "test", "hidden_act", "gelu");
    }

    @Test
    void headsNotAMultipleOfKvHeads() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_key_value_heads", 3);
        assertRejected(n, "num_attention_heads", "num_key_value_heads");
    }

    @Test
    void topKAboveNumExperts() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_experts_per_tok", 9);
        assertRejected(n, "num_experts_per_tok", "9", "8");
    }

    @Test
    void topKZero() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_experts_per_tok", 0);
        assertRejected(n, "num_experts_per_tok");
    }

    @Test
    void missingRequiredField() throws IOException {
        ObjectNode n = configOf("qwen3moe-bf16-sharded");
        n.remove("moe_intermediate_size");
        assertRejected(n, "test", "moe_intermediate_size", "missing");
    }

    @Test
    void nonIntegerField() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("hidden_size", 64.5);
        assertRejected(n, "test", "hidden_size");
        n.put("hidden_size", "64");
        assertRejected(n, "test", "hidden_size");
        n.put("hidden_size", 1L << 40);
        assertRejected(n, "test", "hidden_size");
    }

    @Test
    void nonBooleanField() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("tie_word_embeddings", "false");
        assertRejected(n, "test", "tie_word_embeddings");
    }

    @Test
    void hiddenNotAMultipleOfHeadsWithoutHeadDim() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_attention_heads", 6);
        n.put("num_key_value_heads", 3);
        assertRejected(n, "test", "hidden_size", "num_attention_heads");
    }

    @Test
    void oddHeadDim() throws IOException {
        ObjectNode n = configOf("qwen3moe-bf16-sharded");
        n.put("head_dim", 25);
        assertRejected(n, "head_dim");
    }

    @Test
    void layerTypesWrongLength() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.putArray("layer_types").add("full_attention");
        assertRejected(n, "test", "layer_types");
    }

    @Test
    void slidingAttentionWithoutWindow() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.putArray("layer_types").add("full_attention").add("sliding_attention");
        n.put("sliding_window", 0);
        assertRejected(n, "test", "sliding_window");
    }

    @Test
    void zeroDecoderSparseStep() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.put("decoder_sparse_step", 0);
        assertRejected(n, "test", "decoder_sparse_step");
    }

    // Degenerate sizes must be format errors too, not arithmetic or allocation failures inside the parser.

    @Test
    void zeroAttentionHeadsWithoutHeadDim() throws IOException {
        // mixtral's head_dim is null, so the parser derives hidden_size / num_attention_heads.
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_attention_heads", 0);
        assertRejected(n, "num_attention_heads");
    }

    @Test
    void negativeLayerCount() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_hidden_layers", -1);
        assertRejected(n, "num_hidden_layers");
    }

    @Test
    void zeroLayers() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_hidden_layers", 0);
        assertThrows(ModelFormatException.class, () -> ModelConfig.parse(n, "test"));
    }

    @Test
    void zeroKvHeads() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_key_value_heads", 0);
        assertThrows(ModelFormatException.class, () -> ModelConfig.parse(n, "test"));
    }

    @Test
    void ropeThetaNotANumber() throws IOException {
        // At the top level a non-number rope_theta is refused ...
        ObjectNode top = configOf("mixtral-bf16");
        top.remove("rope_parameters");
        top.put("rope_theta", "abc");
        assertRejected(top, "test", "rope_theta");
        // ... and inside rope_parameters (transformers 5) it must be too, not read as 0.0 (which makes every
        // rotary frequency infinite and every score NaN).
        ObjectNode nested = configOf("mixtral-bf16");
        ((ObjectNode) nested.get("rope_parameters")).put("rope_theta", "abc");
        assertRejected(nested, "test", "rope_theta");
    }

    @Test
    void zeroExperts() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_local_experts", 0);
        assertRejected(n, "num_local_experts");
    }

    // ------------------------------------------------------------- invalid numbers and absurd sizes (issue 22)

    @Test
    void nonPositiveRmsNormEps() throws IOException {
        for (double eps : new double[] {-1, 0, 1e-50, 1e300}) {  // 1e-50 and 1e300 are 0 and infinite as floats
            ObjectNode n = configOf("mixtral-bf16");
            n.put("rms_norm_eps", eps);
            assertRejected(n, "test", "rms_norm_eps", "positive");
        }
    }

    @Test
    void negativeSlidingWindow() throws IOException {
        ObjectNode n = configOf("qwen2moe-fp32");
        n.put("sliding_window", -5);
        assertRejected(n, "test", "sliding_window", "-5");
        ObjectNode mixtral = configOf("mixtral-bf16");
        mixtral.put("sliding_window", -5);
        assertRejected(mixtral, "sliding_window", "-5");
    }

    @Test
    void otherNegativeOrNonPositiveNumbers() throws IOException {
        ObjectNode window = configOf("qwen2moe-fp32");
        window.remove("layer_types");  // without it, use_sliding_window and max_window_layers decide
        window.put("use_sliding_window", true);
        window.put("sliding_window", 16);
        window.put("max_window_layers", -1);
        assertRejected(window, "max_window_layers", "-1");
        ObjectNode shared = configOf("qwen2moe-fp32");
        shared.put("shared_expert_intermediate_size", -8);
        assertRejected(shared, "shared_expert_intermediate_size", "-8");
        ObjectNode clip = configOf("olmoe-fp32");
        clip.put("clip_qkv", -1);
        assertRejected(clip, "clip_qkv");
        ObjectNode mlpOnly = configOf("qwen3moe-bf16-sharded");
        mlpOnly.putArray("mlp_only_layers").add(-1);
        assertRejected(mlpOnly, "mlp_only_layers", "-1");
    }

    @Test
    void hugeLayerCountIsRefusedBeforeAllocating() throws IOException {
        // 2^31 - 1 layers used to size per-layer arrays first: OutOfMemoryError instead of a message
        ObjectNode n = configOf("mixtral-bf16");
        n.put("num_hidden_layers", Integer.MAX_VALUE);
        assertRejected(n, "test", "num_hidden_layers", Integer.toString(Integer.MAX_VALUE),
                Integer.toString(ModelConfig.MAX_LAYERS));
        ObjectNode experts = configOf("mixtral-bf16");
        experts.put("num_local_experts", Integer.MAX_VALUE);
        assertRejected(experts, "num_local_experts", "at most " + ModelConfig.MAX_EXPERTS);
    }

    @Test
    void hugeHeadDimIsNamedNotOverflowed() throws IOException {
        ObjectNode n = configOf("mixtral-bf16");
        n.put("head_dim", 1 << 30);
        ModelFormatException e = assertRejected(n, "test", "num_attention_heads x head_dim", "1073741824");
        assertFalse(java.util.regex.Pattern.compile("-\\d").matcher(e.getMessage()).find(),
                () -> "an overflowed negative size: " + e.getMessage());
    }

    @Test
    void configDimensionsNameTheirFields() throws IOException {
        ModelConfig mixtral = ModelConfig.parse(configOf("mixtral-bf16"), "test");
        assertEquals("num_attention_heads x head_dim = " + mixtral.qDim(), mixtral.dimQ().describe());
        assertEquals("num_local_experts = 8", mixtral.dimExperts().describe());
        assertEquals("2 x intermediate_size = " + 2 * mixtral.expertFfnSize(),
                mixtral.dimExpertFfn().times(2).describe());
        ModelConfig qwen = ModelConfig.parse(configOf("qwen3moe-bf16-sharded"), "test");
        assertEquals("moe_intermediate_size", qwen.dimExpertFfn().fields());
        assertEquals("num_experts", qwen.dimExperts().fields());
    }
}
