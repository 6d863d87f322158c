package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelConfigFamiliesFixtures;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Which models the CUDA backend refuses before loading (no device needed): none of the families it has kernels for
 * (the first four, Granite MoE, GLM-4.5 and DeepSeek-V3), and gpt-oss with every missing piece named.
 */
class CudaMissingKernelsTest {
    @Test
    void theFamiliesWithKernelsLackNothing() {
        for (Path model : TestModels.hfFixtures()) {
            assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfig.load(model)), model.toString());
        }
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfig.load(TestModels.demoModel())));
    }

    /**
     * DeepSeek-V3 runs: latent attention through column copies and padded heads, its interleaved YaRN rotary
     * (rope_rows) through a copy of each head's rotary part, its group-limited router on router_group_sigmoid.
     */
    @Test
    void deepseekLacksNothing() throws Exception {
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.deepseek()));
    }

    /**
     * Granite's multipliers (scale_f32, logsoftmax_chunk's scale) and GLM-4.5's partial rotary (rope_rows' rot) and
     * group-limited router (router_group_sigmoid) run on the GPU.
     */
    @Test
    void graniteAndGlmLackNothing() throws Exception {
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.granite()));
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.glm()));
    }

    /** gpt-oss lacks its sinks, router bias and biased experts; its YaRN rotary runs (rope_rows' factor). */
    @Test
    void gptOssLacksSinksRouterBiasAndBiasedExperts() throws Exception {
        String missing = String.join("; ", CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.gptOss()));
        assertTrue(missing.contains("sinks") && missing.contains("router with a bias")
                && missing.contains("clamped SwiGLU") && !missing.contains("rope"), missing);
    }
}
