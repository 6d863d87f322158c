package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.GATE_PIONEER;
import static io.moescore.backend.cuda.KernelConstants.GATE_QUADRATIC;
import static io.moescore.backend.cuda.KernelConstants.GATE_SIGMOID;
import static io.moescore.backend.cuda.KernelConstants.GATE_SOFTMAX;
import static io.moescore.backend.cuda.KernelConstants.ROUTER_DROP_WORDS;
import static io.moescore.backend.cuda.KernelConstants.ROUTER_MAX_K;
import static io.moescore.backend.cuda.KernelConstants.ROUTER_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ROUTER_WARPS;

import io.moescore.routing.BatchTopKRouter;
import io.moescore.routing.DropExpertsRouter;
import io.moescore.routing.GroupLimitedSigmoidRouter;
import io.moescore.routing.Router;
import io.moescore.routing.ThresholdRouter;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.routing.TopPRouter;
import java.util.Arrays;
import jcuda.driver.CUdeviceptr;

/**
 * The kernels (router.cu, router_variants.cu) that route as a {@link Router} does, found from the router's type
 * and parameters: the routers come from the parsed --routing spec once per layer (RoutingSpec.router), so nothing
 * here reads a spec's text. Each writes every token's experts as one row of chosen/weights [T, {@link #width}],
 * and where the count varies ({@link #varies}) the count per token, which the list kernels and the experts' work
 * list read on the device: no count comes back to the host before the experts run. Buffers are sized for the
 * worst case, width experts for every token.
 */
sealed interface RouterKernel {
    /** Where a router kernel writes: rows of {@code width} experts and gates per token, counts where they vary. */
    record Rows(CUdeviceptr chosen, CUdeviceptr weights, CUdeviceptr perToken, int width) {
    }

    /**
     * The kernel of a router, or null where the CUDA backend has none (a router it does not know, a top-k, top-p
     * MAXK or batch-top-k K above {@code ROUTER_MAX_K}, removed experts of a layer past 64 x ROUTER_DROP_WORDS).
     */
    static RouterKernel of(Router router) {
        RouterKernel kernel = null;
        if (router instanceof TopKSoftmaxRouter r) {
            kernel = new TopK(r.k(), r.renormalize());
        } else if (router instanceof TopPRouter r) {
            kernel = new TopP(r.topP(), r.maxK(), r.renormalize());
        } else if (router instanceof ThresholdRouter r) {
            kernel = r.gate() == ThresholdRouter.Gate.SPARSEMAX ? new Sparsemax() : new Threshold(r.gate(),
                    r.threshold());
        } else if (router instanceof BatchTopKRouter r) {
            kernel = new BlockTopK(r.k(), r.blockRows(), r.renormalize());
        } else if (router instanceof GroupLimitedSigmoidRouter r) {
            kernel = new GroupSigmoid(r);
        } else if (router instanceof DropExpertsRouter r) {
            RouterKernel inner = of(r.inner());
            kernel = inner == null ? null : new Drop(r.dropped(), inner);
        }
        return kernel != null && kernel.fits() ? kernel : null;
    }

    /**
     * How many experts a kernel gives each token: at most {@code most} ({@link #ALL}: every expert of the layer),
     * at least {@code least}; {@code varies}: whether the count varies from token to token (the kernel then
     * writes it per token).
     */
    record Counts(int most, int least, boolean varies) {
        static final int ALL = -1;

        /** k experts for every token. */
        static Counts exactly(int k) {
            return new Counts(k, k, false);
        }
    }

    /** How many experts the kernel gives each token. */
    Counts counts();

    /** Whether the kernel's per-thread arrays hold its experts per token (ROUTER_MAX_K; all experts: no arrays). */
    default boolean fits() {
        return counts().most() <= ROUTER_MAX_K;
    }

    /**
     * The most experts a token gets out of {@code experts}: the width of the rows.
     *
     * @throws IllegalArgumentException where the router asks for more experts than there are (as its CPU twin)
     */
    default int width(int experts) {
        int most = counts().most();
        if (most > experts) {
            throw new IllegalArgumentException(name() + ": " + most + " experts per token of " + experts);
        }
        return most == Counts.ALL ? experts : most;
    }

    /** The fewest experts a token gets (a bound the routed total is checked against). */
    default int least() {
        return counts().least();
    }

    /** Whether the count varies from token to token (the kernel then writes it per token). */
    default boolean varies() {
        return counts().varies();
    }

    /**
     * Queues the kernels that route the [rows, experts] logits into {@code out}. {@code sequenceStarts}: the first
     * row of each sequence of the batch, then rows (only batch-level gating reads it).
     */
    void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts, Rows out);

    /** The kernel's name in messages. */
    String name();

    /** router_topk_softmax: the model's own router and top-k:K. */
    record TopK(int k, boolean renormalize) implements RouterKernel {
        @Override
        public Counts counts() {
            return Counts.exactly(k);
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            launcher.launch("router_topk_softmax", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS, 0, logits, rows,
                    experts, k, renormalize ? 1 : 0, out.chosen(), out.weights());
        }

        @Override
        public String name() {
            return "router_topk_softmax";
        }
    }

    /** router_top_p: top-p:P[:MAXK], 1 to maxK experts per token. */
    record TopP(float topP, int maxK, boolean renormalize) implements RouterKernel {
        @Override
        public Counts counts() {
            return new Counts(maxK, 1, true);
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            launcher.launch("router_top_p", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS, 0, logits, rows, experts,
                    maxK, topP, renormalize ? 1 : 0, out.chosen(), out.weights(), out.perToken());
        }

        @Override
        public String name() {
            return "router_top_p";
        }
    }

    /** router_threshold: sigmoid:T, softmax:T, quadratic:T, pioneer:T; 0 to every expert per token. */
    record Threshold(ThresholdRouter.Gate gate, float threshold) implements RouterKernel {
        @Override
        public Counts counts() {
            return new Counts(Counts.ALL, 0, true);
        }

        /** The gate as router_variants.cu numbers it (constants.cuh). */
        int gateCode() {
            return switch (gate) {
                case SIGMOID -> GATE_SIGMOID;
                case SOFTMAX -> GATE_SOFTMAX;
                case QUADRATIC -> GATE_QUADRATIC;
                case PIONEER -> GATE_PIONEER;
                case SPARSEMAX -> throw new IllegalStateException("sparsemax has its own kernel");
            };
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            launcher.launch("router_threshold", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS, 0, logits, rows,
                    experts, gateCode(), threshold, out.chosen(), out.weights(), out.perToken());
        }

        @Override
        public String name() {
            return "router_threshold (" + gate.userName() + ")";
        }
    }

    /** router_sparsemax: 0 to every expert per token. */
    record Sparsemax() implements RouterKernel {
        @Override
        public Counts counts() {
            return new Counts(Counts.ALL, 0, true);
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            launcher.launch("router_sparsemax", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS,
                    perWarpFloats(experts), logits, rows, experts, out.chosen(), out.weights(), out.perToken());
        }

        @Override
        public String name() {
            return "router_sparsemax";
        }
    }

    /**
     * router_block_experts then router_block_gates: batch-top-k:K (the whole batch one block) and batch-top-k:K:B
     * (blocks of B rows within each sequence, {@link #blockStarts}); k experts for every token.
     */
    record BlockTopK(int k, int blockRows, boolean renormalize) implements RouterKernel {
        @Override
        public Counts counts() {
            return Counts.exactly(k);
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            int[] starts = blockStarts(sequenceStarts, blockRows, rows);
            int blocks = starts.length - 1;
            DevicePool pool = launcher.pool();
            long expertBytes = Math.max(4L, (long) blocks * k * 4);
            CUdeviceptr blockExperts = pool.allocate(expertBytes);
            try (CudaTensor.Ints device = launcher.uploadQueued(starts)) {
                launcher.launch("router_block_experts", blocks(blocks, ROUTER_WARPS), 1, ROUTER_THREADS,
                        perWarpFloats(experts), logits, experts, device.device, blocks, k, blockExperts);
                launcher.launch("router_block_gates", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS, 0, logits, rows,
                        experts, device.device, blocks, k, blockExperts, renormalize ? 1 : 0, out.chosen(),
                        out.weights());
            } finally {
                pool.release(blockExperts, expertBytes);  // reused only in this stream's order
            }
        }

        @Override
        public String name() {
            return "router_block_experts";
        }
    }

    /**
     * router_group_sigmoid: DeepSeek-V3's and GLM-4.5's group-limited sigmoid router (noaux_tc) as {@code router}
     * defines it; k experts for every token. The correction biases travel with each launch (E floats, queued behind
     * the stream's work).
     */
    record GroupSigmoid(GroupLimitedSigmoidRouter router) implements RouterKernel {
        @Override
        public Counts counts() {
            return Counts.exactly(router.k());
        }

        /** Groups as a 64-bit mask, the chosen groups in per-thread arrays. */
        @Override
        public boolean fits() {
            return router.k() <= ROUTER_MAX_K && router.topkGroups() <= ROUTER_MAX_K && router.groups() <= 64;
        }

        /** @throws IllegalArgumentException where the layer's experts do not make the groups (as the CPU twin) */
        @Override
        public int width(int experts) {
            router.requireLayer(experts, name() + ": ");
            return router.k();
        }

        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            width(experts);
            float[] bias = router.correctionBias();
            int[] bits = new int[bias.length];
            for (int e = 0; e < bits.length; e++) {
                bits[e] = Float.floatToRawIntBits(bias[e]);
            }
            try (CudaTensor.Ints device = launcher.uploadQueued(bits)) {  // read as floats
                launcher.launch("router_group_sigmoid", blocks(rows, ROUTER_WARPS), 1, ROUTER_THREADS,
                        perWarpFloats(2 * experts), logits, rows, experts, router.groups(), router.topkGroups(),
                        router.k(), device.device, router.renormalize() ? 1 : 0, router.scalingFactor(),
                        out.chosen(), out.weights());
            }
        }

        @Override
        public String name() {
            return "router_group_sigmoid";
        }
    }

    /** router_drop_experts, then the model's router on what it leaves: drop-experts:FILE. */
    record Drop(boolean[] dropped, RouterKernel inner) implements RouterKernel {
        public Drop {
            dropped = dropped.clone();
        }

        @Override
        public Counts counts() {
            return inner.counts();
        }

        @Override
        public int width(int experts) {
            requireExperts(experts);
            return inner.width(experts);
        }

        @Override
        public boolean fits() {
            return dropped.length <= 64 * ROUTER_DROP_WORDS;
        }

        /**
         * As DropExpertsRouter, the inner router sees the masked batch as one sequence (the routers it wraps look
         * at one token at a time). The removed experts go with the launch, as router_drop_experts' DropMask.
         */
        @Override
        public void launch(CudaLauncher launcher, CUdeviceptr logits, int rows, int experts, int[] sequenceStarts,
                           Rows out) {
            requireExperts(experts);
            DevicePool pool = launcher.pool();
            long n = (long) rows * experts;
            CUdeviceptr masked = pool.allocate(Math.max(4L, n * 4));
            try {
                launcher.launch("router_drop_experts", blocks(n, 256), 1, 256, 0, logits, n, experts, mask(dropped),
                        masked);
                inner.launch(launcher, masked, rows, experts, new int[] {0, rows}, out);
            } finally {
                pool.release(masked, Math.max(4L, n * 4));  // reused only in this stream's order
            }
        }

        /** The removed experts as router_drop_experts reads them: expert e is bit e % 64 of word e / 64. */
        static long[] mask(boolean[] dropped) {
            long[] words = new long[ROUTER_DROP_WORDS];
            for (int e = 0; e < dropped.length; e++) {
                if (dropped[e]) {
                    words[e >> 6] |= 1L << (e & 63);
                }
            }
            return words;
        }

        private void requireExperts(int experts) {
            if (experts != dropped.length) {
                throw new IllegalArgumentException("expert drop list for " + dropped.length + " experts routes "
                        + experts);
            }
        }

        @Override
        public String name() {
            return "router_drop_experts + " + inner.name();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Drop d && Arrays.equals(dropped, d.dropped) && inner.equals(d.inner);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(dropped) * 31 + inner.hashCode();
        }

        @Override
        public String toString() {
            return "Drop(" + Arrays.toString(dropped) + ", " + inner + ")";
        }
    }

    /**
     * The first row of each block of batch-level gating, then {@code rows}: with {@code blockRows} 0 the whole
     * batch is one block; otherwise each sequence is cut into blocks of {@code blockRows} of its rows from its first
     * (its last block may be shorter), as BatchTopKRouter cuts it. Empty sequences add no block.
     *
     * @throws IllegalArgumentException where the sequence starts do not cover the rows (as BatchTopKRouter)
     */
    static int[] blockStarts(int[] sequenceStarts, int blockRows, int rows) {
        if (sequenceStarts.length < 2 || sequenceStarts[0] != 0 || sequenceStarts[sequenceStarts.length - 1] != rows) {
            throw new IllegalArgumentException("sequence starts " + Arrays.toString(sequenceStarts)
                    + " do not cover the batch's " + rows + " rows");
        }
        if (blockRows == 0) {
            return rows == 0 ? new int[] {0} : new int[] {0, rows};
        }
        int count = 0;
        for (int s = 0; s + 1 < sequenceStarts.length; s++) {
            count += Math.max(0, (sequenceStarts[s + 1] - sequenceStarts[s] + blockRows - 1) / blockRows);
        }
        int[] starts = new int[count + 1];
        int b = 0;
        for (int s = 0; s + 1 < sequenceStarts.length; s++) {
            for (int from = sequenceStarts[s]; from < sequenceStarts[s + 1]; from += blockRows) {
                starts[b++] = from;
            }
        }
        starts[count] = rows;
        return starts;
    }

    /**
     * Dynamic shared memory of the kernels that keep E floats per warp (router_sparsemax, router_block_experts),
     * within the 48 KB every device grants without opting in.
     *
     * @throws IllegalArgumentException for more experts than that holds
     */
    static int perWarpFloats(int experts) {
        long bytes = (long) ROUTER_WARPS * experts * Float.BYTES;
        if (bytes > 48 * 1024) {
            throw new IllegalArgumentException("the CUDA router holds at most " + 48 * 1024 / ROUTER_WARPS
                    / Float.BYTES + " values per token for sparsemax, batch-top-k and the group-limited router, not "
                    + experts);
        }
        return (int) bytes;
    }
}
