package io.moescore.backend.cuda;

import io.moescore.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Which models the CUDA backend can run, decided from the config before anything loads: the features of issue 24
 * that have no kernels here yet (gpt-oss's sinks, router bias and biased clamped-SwiGLU experts; group-limited
 * routing over more than 64 groups) are named; the CPU backend runs them all.
 */
final class CudaModelSupport {
    private CudaModelSupport() {
    }

    /** What the CUDA backend lacks to run a model of this config; empty where it has every kernel. */
    static List<String> missingKernels(ModelConfig c) {
        List<String> missing = new ArrayList<>();
        // latent attention runs through column copies (copy_columns_f32), its q_rope rotated through a copy and its
        // q/k and v heads padded to one width (CudaBackend.attention); CudaNorms.rope: pairs of columns
        int rot = c.rope().rotaryDim();
        if (rot % 2 != 0 || (c.headDim() - rot) % 2 != 0) {
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
