package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.TestModels;
import io.moescore.backend.MemoryBudget;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelConfigFamiliesFixtures;
import io.moescore.sparse.SparsityPattern;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory check before loading: parameter counts from the config equal the checkpoints' tensors and the
 * published sizes of real models, and a model too big for the backend is refused with the numbers before any
 * weight is read.
 */
class MemoryPlanTest {
    @TempDir
    Path dir;

    static long checkpointElements(Path model) {
        long n = 0;
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                n += ckpt.get(name).elementCount();
            }
        }
        return n;
    }

    @Test
    void parameterCountIsEveryTensorOfTheFixtures() {
        List<Path> models = new ArrayList<>(TestModels.hfFixtures());
        models.add(TestModels.demoModel());
        for (Path model : models) {
            assertEquals(checkpointElements(model), ModelConfig.load(model).parameterCount(), model.toString());
        }
    }

    @Test
    void parameterCountOfTheFamilyFixturesOnceGenerated() {
        for (Path model : TestModels.familyFixtures()) {
            // (MXFP4 experts are stored as packed bytes: their element count is not the parameter count)
            if (Files.exists(model.resolve("config.json")) && !model.getFileName().toString().endsWith("mxfp4")) {
                assertEquals(checkpointElements(model), ModelConfig.load(model).parameterCount(), model.toString());
            }
        }
    }

    /** DeepSeek-V3's published 671B (without its 14B multi-token-prediction layer), from its config.json. */
    @Test
    void deepseekV3HasItsPublishedSize() throws IOException {
        ModelConfig c = ModelConfig.parse(fullDeepseekV3(), "DeepSeek-V3");
        assertEquals(671.0e9, c.parameterCount(), 0.001 * 671.0e9);
        assertEquals(58L * 3 * 256 * 7168 * 2048, c.routedExpertParameterCount(), "58 MoE layers of 256 experts");
    }

    /** granite-3.0-1b-a400m: 1.33B parameters, tied embeddings. */
    @Test
    void graniteOneBHasItsPublishedSize() throws IOException {
        ObjectNode n = (ObjectNode) new ObjectMapper().readTree(ModelConfigFamiliesFixtures.GRANITE);
        n.put("vocab_size", 49155).put("hidden_size", 1024).put("intermediate_size", 512).put("num_hidden_layers", 24)
                .put("num_attention_heads", 16).put("num_key_value_heads", 8).put("num_local_experts", 32)
                .put("num_experts_per_tok", 8);
        assertEquals(1.33e9, ModelConfig.parse(n, "granite").parameterCount(), 0.01e9);
    }

    @Test
    void sparseExpertsCountAtTheirPackedSizeWhereTheBackendKeepsThemPacked() throws IOException {
        ModelConfig c = ModelConfig.parse(fullDeepseekV3(), "DeepSeek-V3");
        MemoryBudget gpu = new MemoryBudget(80_000_000_000L, 2, true, "a GPU");
        MemoryBudget cpu = new MemoryBudget(80_000_000_000L, 4, false, "a heap");
        long experts = c.routedExpertParameterCount();
        long others = c.parameterCount() - experts;
        assertEquals(2 * c.parameterCount(), MemoryPlan.of(c, null, gpu).weightBytes());
        assertEquals((long) Math.ceil(2.0 * others + 1.125 * experts),
                MemoryPlan.of(c, SparsityPattern.TWO_FOUR, gpu).weightBytes(), 1.0);
        assertEquals(4 * c.parameterCount(), MemoryPlan.of(c, SparsityPattern.TWO_FOUR, cpu).weightBytes(),
                "the CPU decompresses");
        MemoryPlan plan = MemoryPlan.of(c, null, gpu);
        assertFalse(plan.fits());
        assertEquals(0, plan.largestBatchTokens());
        assertTrue(plan.describe().contains("1342.1 GB") && plan.describe().contains("80.0 GB"), plan.describe());
    }

    @Test
    void theLargestBatchIsWhatFitsBesideTheWeights() {
        ModelConfig c = ModelConfigFamiliesFixtures.glm();
        MemoryPlan plan = MemoryPlan.of(c, null, new MemoryBudget(1_000_000_000L, 4, false, "a heap"));
        assertTrue(plan.fits());
        assertEquals((1_000_000_000L - 4 * c.parameterCount()) / plan.bytesPerToken(), plan.largestBatchTokens());
        // x, two norms, the block output (4 x 64); q 64, k 32, v 32, attention 64; 8 router logits; 2 x (64 + 64)
        assertEquals(4L * (256 + 64 + 32 + 32 + 64 + 8 + 2 * (64 + 64)), plan.bytesPerToken());
    }

    /** A config alone (no weights): the refusal comes before any tensor is looked for. */
    @Test
    void aModelTooBigForTheHeapIsRefusedBeforeLoading() throws IOException {
        Path model = Files.createDirectories(dir.resolve("deepseek-v3"));
        Files.writeString(model.resolve("config.json"), fullDeepseekV3().toString());
        try (CpuBackend cpu = new CpuBackend(1)) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class, () -> Engine.load(model, cpu));
            assertTrue(e.getMessage().contains("does not fit") && e.getMessage().contains("671")
                    && e.getMessage().contains("JVM heap") && e.getMessage().contains(model.toString()),
                    e.getMessage());
        }
    }

    /** DeepSeek-V3's config.json (deepseek-ai/DeepSeek-V3), without its fp8 quantization_config. */
    static ObjectNode fullDeepseekV3() throws IOException {
        ObjectNode n = (ObjectNode) new ObjectMapper().readTree(ModelConfigFamiliesFixtures.DEEPSEEK);
        n.put("vocab_size", 129280).put("hidden_size", 7168).put("intermediate_size", 18432)
                .put("moe_intermediate_size", 2048).put("num_hidden_layers", 61).put("num_attention_heads", 128)
                .put("num_key_value_heads", 128).put("n_routed_experts", 256).put("kv_lora_rank", 512)
                .put("q_lora_rank", 1536).put("qk_rope_head_dim", 64).put("v_head_dim", 128)
                .put("qk_nope_head_dim", 128).put("n_group", 8).put("topk_group", 4).put("num_experts_per_tok", 8)
                .put("first_k_dense_replace", 3).put("max_position_embeddings", 163840);
        ((ObjectNode) n.get("rope_scaling")).put("factor", 40).put("mscale", 1.0).put("mscale_all_dim", 1.0)
                .put("original_max_position_embeddings", 4096);
        return n;
    }
}
