package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.model.ModelConfig;
import io.moescore.score.ScoreSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The driver's model check refuses, before any task, a model the chosen backend cannot run: a gpt-oss config with
 * backend cuda names the kernels it lacks; with cpu (and auto, decided per executor) it passes. The other checks run
 * on a DeepSeek-V3 config (a dense first layer, group-limited routing).
 */
class ModelCheckBackendTest {
    static final String DEEPSEEK = """
            {"model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 24,
             "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 2, "n_shared_experts": 1, "n_routed_experts": 8, "routed_scaling_factor": 2.5,
             "kv_lora_rank": 16, "q_lora_rank": null, "qk_rope_head_dim": 4, "v_head_dim": 6, "qk_nope_head_dim": 8,
             "n_group": 4, "topk_group": 2, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
             "hidden_act": "silu", "max_position_embeddings": 64}""";

    /** gpt-oss-20b's config.json as released, shrunk (sinks, router bias, clamped SwiGLU: CPU only for now). */
    static final String GPT_OSS = """
            {"architectures": ["GptOssForCausalLM"], "attention_bias": true, "experts_per_token": 4, "head_dim": 16,
             "hidden_act": "silu", "hidden_size": 64, "initial_context_length": 64, "intermediate_size": 64,
             "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
             "max_position_embeddings": 2048, "model_type": "gpt_oss", "num_attention_heads": 8,
             "num_experts_per_tok": 4, "num_hidden_layers": 4, "num_key_value_heads": 2, "num_local_experts": 8,
             "rms_norm_eps": 1e-05,
             "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                              "original_max_position_embeddings": 64, "rope_type": "yarn", "truncate": false},
             "rope_theta": 150000, "sliding_window": 16, "swiglu_limit": 7.0, "tie_word_embeddings": false,
             "torch_dtype": "bfloat16", "vocab_size": 512}""";

    @TempDir
    Path dir;

    ScoringSpec spec(String backend) throws IOException {
        return spec(backend, DEEPSEEK);
    }

    ScoringSpec spec(String backend, String config) throws IOException {
        Files.writeString(dir.resolve("config.json"), config);
        return new ScoringSpec(dir.toString(), ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, backend), "tokens",
                null, Map.of());
    }

    @Test
    void cudaIsRefusedNamingWhatItLacks() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(spec("cuda", GPT_OSS)));
        assertTrue(e.getMessage().contains("gpt_oss") && e.getMessage().contains("sinks")
                && e.getMessage().contains("backend 'cpu'"), e.getMessage());
    }

    @Test
    void cpuAndAutoPass() throws IOException {
        assertEquals(ModelConfig.Family.GPT_OSS, DatasetScorer.checkModel(spec("cpu", GPT_OSS)).family());
        assertEquals(ModelConfig.Family.GPT_OSS, DatasetScorer.checkModel(spec("auto", GPT_OSS)).family());
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, DatasetScorer.checkModel(spec("cuda")).family());  // runs there
    }

    /**
     * A --device-memory cap below what any executor needs (non-expert weights at 2 bytes, two staging slots of the
     * smallest packed experts, one sequence) is refused on the driver naming the option; one that fits passes, and
     * the exact check stays the executors' (a cap that fits here may still be refused there, never the reverse).
     */
    @Test
    void aDeviceMemoryCapNoExecutorCouldUseIsRefusedOnTheDriver() throws IOException {
        ScoringSpec base = spec("auto");
        java.util.function.LongFunction<ScoringSpec> capped = bytes -> new ScoringSpec(base.modelUri(),
                base.settings().with(ScoreSettings.DEVICE_MEMORY, bytes), "tokens", null, Map.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(capped.apply(1000)));
        assertTrue(e.getMessage().contains("model " + dir + ": --device-memory 1000 bytes is too small")
                && e.getMessage().contains("staging slots"), e.getMessage());
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, DatasetScorer.checkModel(capped.apply(1L << 30)).family());
        // a manifest naming 2:4 is read: its packed experts, not the smallest pattern's, size the slots
        Files.writeString(dir.resolve("sparsity.json"), "{\"pattern\": \"2:4\"}");
        long twoFour = smallestThatPasses(capped);
        Files.writeString(dir.resolve("sparsity.json"), "{\"pattern\": \"128:2:8\"}");
        long vectorWise = smallestThatPasses(capped);
        assertTrue(vectorWise < twoFour, "128:2:8 experts need less than 2:4 ones: " + vectorWise + ", " + twoFour);
        Files.delete(dir.resolve("sparsity.json"));
        assertEquals(vectorWise, smallestThatPasses(capped), "no manifest: the smallest pattern's bytes");
    }

    /**
     * With --devices 2 the driver checks each device's share (the executors' rule, {@code DeviceMemoryPlan}): device
     * 0 stages only its half of the MoE layer's experts, so a smaller cap passes than on one device, and a cap just
     * below the smallest is refused naming the device that does not fit, its bytes and its experts.
     */
    @Test
    void withSeveralDevicesTheDriverChecksEachDevicesShare() throws IOException {
        ScoringSpec base = spec("auto");
        java.util.function.LongFunction<ScoringSpec> one = bytes -> new ScoringSpec(base.modelUri(),
                base.settings().with(ScoreSettings.DEVICE_MEMORY, bytes), "tokens", null, Map.of());
        java.util.function.LongFunction<ScoringSpec> two = bytes -> new ScoringSpec(base.modelUri(),
                base.settings().with(ScoreSettings.DEVICE_MEMORY, bytes).with(ScoreSettings.DEVICES, 2), "tokens",
                null, Map.of());
        long oneDevice = smallestThatPasses(one);
        long twoDevices = smallestThatPasses(two);
        assertTrue(twoDevices < oneDevice, "two devices' smallest cap " + twoDevices + ", one device's " + oneDevice);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(two.apply(twoDevices - 1)));
        assertTrue(e.getMessage().contains("--device-memory " + (twoDevices - 1) + " bytes is too small")
                && e.getMessage().contains("on 2 devices: device 0 needs ")
                && e.getMessage().contains("experts 0, 2, 4, 6 of each of the 1 MoE layers"), e.getMessage());
    }

    /** The smallest cap the driver's check passes, by bisection. */
    private static long smallestThatPasses(java.util.function.LongFunction<ScoringSpec> capped) {
        long lo = 1;
        long hi = 1L << 30;
        while (lo < hi) {
            long mid = (lo + hi) >>> 1;
            boolean passes;
            try {
                DatasetScorer.checkModel(capped.apply(mid));
                passes = true;
            } catch (IllegalArgumentException e) {
                passes = false;
            }
            if (passes) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /**
     * A --placement plan reaches the job through the settings, as --device-memory does: one placing the dense first
     * layer (first_k_dense_replace) is refused on the driver naming the file and layer; one of the MoE layer passes.
     */
    @Test
    void aPlacementPlanOfOtherLayersIsRefusedOnTheDriver() throws IOException {
        ScoringSpec base = spec("cpu");
        String experts = "[[0], [1], [0], [1], [0], [1], [0], [1]]";
        Path dense = Files.writeString(dir.resolve("dense.json"), "{\"devices\": 2, \"layers\": [{\"layer\": 0, "
                + "\"experts\": " + experts + "}]}");
        Path moe = Files.writeString(dir.resolve("moe.json"), "{\"devices\": 2, \"layers\": [{\"layer\": 1, "
                + "\"experts\": " + experts + "}]}");
        java.util.function.Function<Path, ScoringSpec> placed = plan -> new ScoringSpec(base.modelUri(),
                ScoreSettings.resolve(s -> s == ScoreSettings.PLACEMENT ? new io.moescore.score.Setting.Given(
                        plan.toString(), "--placement") : s == ScoreSettings.BACKEND
                        ? new io.moescore.score.Setting.Given("cpu", "--backend") : null), "tokens", null, Map.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(placed.apply(dense)));
        assertTrue(e.getMessage().contains(dense + ": layer 0 is not an MoE layer of the model (its MoE layers: [1])"),
                e.getMessage());
        assertEquals(2, placed.apply(moe).settings().resolvedDevices(), "the plan's devices");
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, DatasetScorer.checkModel(placed.apply(moe)).family());
    }

    @Test
    void routingTheModelCannotTakeIsRefusedOnTheDriver() throws IOException {
        ScoringSpec base = spec("cpu");
        java.util.function.Function<String, ScoringSpec> routed = r -> new ScoringSpec(base.modelUri(),
                base.settings().with(ScoreSettings.ROUTING, io.moescore.routing.RoutingSpec.parse(r)), "tokens", null,
                Map.of());
        // DeepSeek-V3's group-limited router: 2 of 4 groups of 2 experts reach 4 experts; no top-p over it
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, DatasetScorer.checkModel(routed.apply("top-k:4")).family());
        assertEquals(ModelConfig.Family.DEEPSEEK_V3, DatasetScorer.checkModel(routed.apply("sparsemax")).family());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(routed.apply("top-k:5")));
        assertTrue(e.getMessage().contains("--routing top-k:5: the model's group-limited router reaches only 4"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DatasetScorer.checkModel(routed.apply("top-p:0.5")));
        assertTrue(e.getMessage().contains("--routing top-p:0.5 needs a softmax top-k router"), e.getMessage());
        Path drop = Files.writeString(dir.resolve("drop.txt"), "0: 1\n");  // layer 0 is dense (first_k_dense)
        e = assertThrows(IllegalArgumentException.class,
                () -> DatasetScorer.checkModel(routed.apply("drop-experts:" + drop)));
        assertTrue(e.getMessage().contains("drops experts of layer 0, which has no routed experts"), e.getMessage());
    }
}
