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
 * (the first four and Granite MoE), and each other issue-24 family with every missing piece named.
 */
class CudaMissingKernelsTest {
    @Test
    void theFamiliesWithKernelsLackNothing() {
        for (Path model : TestModels.hfFixtures()) {
            assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfig.load(model)), model.toString());
        }
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfig.load(TestModels.demoModel())));
    }

    @Test
    void deepseekLacksLatentAttentionAndRope() throws Exception {
        String missing = String.join("; ", CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.deepseek()));
        assertTrue(missing.contains("latent attention") && missing.contains("yarn") && missing.contains("interleaved")
                && !missing.contains("group-limited"), missing);  // router_group_sigmoid routes it
    }

    /** Granite's multipliers run on the GPU (scale_f32, logsoftmax_chunk's scale); GLM lacks its partial RoPE. */
    @Test
    void graniteLacksNothingAndGlmThePartialRope() throws Exception {
        assertEquals(List.of(), CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.granite()));
        String glm = String.join("; ", CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.glm()));
        assertTrue(glm.contains("rotary over 8 columns") && !glm.contains("group-limited"), glm);
    }

    @Test
    void gptOssLacksSinksRouterBiasAndBiasedExpertsEvenWithPlainRope() throws Exception {
        String missing = String.join("; ", CudaModelSupport.missingKernels(ModelConfigFamiliesFixtures.gptOss()));
        assertTrue(missing.contains("sinks") && missing.contains("router with a bias")
                && missing.contains("clamped SwiGLU") && missing.contains("yarn"), missing);
        var plain = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(ModelConfigFamiliesFixtures.GPT_OSS);
        plain.putNull("rope_scaling");
        String withoutYarn = String.join("; ", CudaModelSupport.missingKernels(ModelConfig.parse(plain, "test")));
        assertTrue(withoutYarn.contains("sinks") && !withoutYarn.contains("yarn"), withoutYarn);
    }
}
