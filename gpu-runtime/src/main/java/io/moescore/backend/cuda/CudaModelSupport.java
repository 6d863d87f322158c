package io.moescore.backend.cuda;

import io.moescore.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Which models the CUDA backend can run, decided from the config before anything loads: the features of issue 24
 * that have no kernels here yet (Granite's multipliers, latent attention, YaRN, partial or interleaved rotary
 * embeddings, the group-limited sigmoid router, gpt-oss's sinks, router bias and biased clamped-SwiGLU experts)
 * are named; the CPU backend runs them all.
 */
final class CudaModelSupport {
    private CudaModelSupport() {
    }

    /** What the CUDA backend lacks to run a model of this config; empty where it has every kernel. */
    static List<String> missingKernels(ModelConfig c) {
        List<String> missing = new ArrayList<>();
        if (c.latentAttention() != null) {
            missing.add("latent attention (q/k heads of " + c.headDim() + " columns, v heads of " + c.vHeadDim()
                    + ", a rotary key shared by every head)");
        }
        // CudaNorms.rope: the first rotaryDim columns of whole heads (latent attention's rotary part is not first)
        int rot = c.rope().rotaryDim();
        if (c.latentAttention() != null || rot % 2 != 0 || (c.headDim() - rot) % 2 != 0) {
            missing.add("a rope kernel for " + c.rope().describe() + " of heads of " + c.headDim());
        }
        if (c.groupRouting() != null && c.groupRouting().groups() > 64) {  // RouterKernel.GroupSigmoid's mask
            missing.add("a router kernel for group-limited sigmoid routing over more than 64 groups (n_group "
                    + c.groupRouting().groups() + ")");
        }
        if (c.attentionSinks()) {
            missing.add("an attention kernel with sinks (a learned logit per head in the softmax denominator)");
        }
        if (c.routerBias()) {
            missing.add("a router with a bias");
        }
        if (c.clampedSwiglu() != null) {
            missing.add("expert kernels with biases and the clamped SwiGLU (swiglu_limit "
                    + c.clampedSwiglu().limit() + ")");
        }
        return missing;
    }
}
