package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.BiasedExperts;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.WeightSlice;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;

/**
 * One layer's routed experts as the host holds them before they are placed: the checkpoint's slices (dense), or
 * the arrays the loader made (2:4, 128:2:8 packed; gpt-oss's biased experts). {@link ModelWeights} places resident
 * layers' experts once; a streamed layer's stay here and {@link ExpertStore} places them again for every forward,
 * through the same backend call, so a streamed layer computes on exactly the weights a resident one would.
 */
sealed interface HostExperts {
    /** Places the experts on {@code backend}; the caller owns the result. */
    ExpertWeights place(Backend backend);

    /**
     * The gate, up and down weights of every expert (biases aside), as {@link MemoryPlan} counts them: gate and up
     * are [ffn, hidden], down [hidden, ffn], so three times the first gate's size per expert.
     */
    long weights();

    /** Dense experts read from the checkpoint's slices (which must stay open while these are placed). */
    record Dense(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) implements HostExperts {
        @Override
        public ExpertWeights place(Backend backend) {
            return backend.expertWeights(gate, up, down);
        }

        @Override
        public long weights() {
            return 3L * gate.length * gate[0].rows() * gate[0].cols();
        }
    }

    /** 2:4 packed experts, [gate, up, down][expert]. */
    record Sparse(Sparse24.Packed[][] gateUpDown) implements HostExperts {
        @Override
        public ExpertWeights place(Backend backend) {
            return backend.sparseExpertWeights(gateUpDown[0], gateUpDown[1], gateUpDown[2]);
        }

        @Override
        public long weights() {
            return 3L * gateUpDown[0].length * gateUpDown[0][0].rows() * gateUpDown[0][0].cols();
        }
    }

    /** 128:2:8 packed experts, [gate, up, down][expert]. */
    record VectorSparseExperts(VectorSparse.Packed[][] gateUpDown) implements HostExperts {
        @Override
        public ExpertWeights place(Backend backend) {
            return backend.vectorSparseExpertWeights(gateUpDown[0], gateUpDown[1], gateUpDown[2]);
        }

        @Override
        public long weights() {
            return 3L * gateUpDown[0].length * gateUpDown[0][0].rows() * gateUpDown[0][0].cols();
        }
    }

    /** gpt-oss's experts with their biases and clamped SwiGLU. */
    record Biased(BiasedExperts experts) implements HostExperts {
        @Override
        public ExpertWeights place(Backend backend) {
            return backend.biasedExpertWeights(experts);
        }

        @Override
        public long weights() {
            return 3L * experts.gate().length * experts.hidden() * experts.ffn();
        }
    }
}
