package io.moescore.engine;

import io.moescore.backend.MemoryBudget;
import io.moescore.model.ModelConfig;

/**
 * Which MoE layers keep their routed experts on the device under a memory cap ({@code --device-memory}), and which
 * stream them from host memory: the plan of residency, made before any weight loads. Non-expert weights (embedding,
 * attention, norms, routers, shared experts, dense blocks, lm_head) are always resident. Routed experts are resident
 * a whole MoE layer at a time, first layers first, while they fit beside the reserve; the remaining MoE layers are
 * streamed: {@link ExpertStore} uploads each into one of two staging slots just before its experts run (the next
 * one's upload queued before the current one computes). The reserve is the two slots and the activations of one
 * sequence of the model's context (max_position_embeddings tokens), so every sequence the model takes can be scored;
 * the tokens left beside it all bound a batch ({@link #largestBatchTokens}).
 *
 * <p>Granularity is the layer, not the expert: which experts are hottest (a placement plan, issue 30) does not
 * choose residency yet. Scores never depend on residency: a streamed layer's experts are the same weights placed
 * the same way, only later.
 *
 * @param plan               the model's memory on the capped budget
 * @param capped             whether a cap was given (without one, every layer is resident and batches are bounded
 *                           only by the device running out of memory, as before)
 * @param streamed           per decoder layer: whether its routed experts stream (false for dense layers)
 * @param layerExpertBytes   one MoE layer's routed experts as placed
 * @param slots              staging slots reserved (two while at least two layers stream, else as many as stream)
 * @param largestBatchTokens the most tokens one forward may hold beside the resident weights and the slots
 */
public record ExpertResidency(MemoryPlan plan, boolean capped, boolean[] streamed, long layerExpertBytes, int slots,
                              long largestBatchTokens) {
    /** Staging slots of a streamed forward: the layer computing and the next one uploading. */
    public static final int SLOTS = 2;

    public ExpertResidency {
        streamed = streamed.clone();
    }

    /** Every layer resident, no cap (also where the backend cannot tell its memory: {@code plan} null). */
    public static ExpertResidency allResident(ModelConfig c, MemoryPlan plan) {
        return new ExpertResidency(plan, false, new boolean[c.numLayers()], layerBytes(c, plan), 0, Long.MAX_VALUE);
    }

    /**
     * The residency of a model under a cap of {@code cap} bytes (0: none) on a backend whose own memory the plan
     * holds.
     *
     * @throws UnsupportedModelException where the backend cannot tell its memory, or where the non-expert weights,
     *                                   two staging slots and one sequence's activations do not fit (giving the
     *                                   numbers)
     */
    public static ExpertResidency of(ModelConfig c, MemoryPlan plan, long cap) {
        if (cap == 0) {
            return allResident(c, plan);
        }
        if (plan == null) {
            throw new UnsupportedModelException("--device-memory needs a backend that tells its memory and bytes "
                    + "per weight; this one does not");
        }
        MemoryBudget budget = capped(plan.budget(), cap);
        MemoryPlan capped = plan.in(budget);
        long layer = layerBytes(c, plan);
        int moe = moeLayerCount(c);
        long sequence = (long) c.maxPositions() * plan.bytesPerToken();
        long available = budget.availableBytes();
        // the most resident MoE layers k with non-expert + (k + slots) layers + one sequence within the cap
        for (int k = moe; k >= 0; k--) {
            int slots = Math.min(SLOTS, moe - k);
            long fixed = plan.nonExpertBytes() + (k + slots) * layer;
            if (fixed + sequence <= available) {
                return new ExpertResidency(capped, true, streamedAfter(c, k), layer, slots,
                        (available - fixed) / plan.bytesPerToken());
            }
        }
        int slots = Math.min(SLOTS, moe);
        throw new UnsupportedModelException("--device-memory " + cap + " bytes is too small: "
                + MemoryPlan.gigabytes(plan.nonExpertBytes()) + " (" + plan.nonExpertBytes() + " bytes) of non-expert "
                + "weights + " + slots + " staging slots of " + layer + " bytes (one MoE layer's experts each) + "
                + sequence + " bytes of activations for one sequence of " + c.maxPositions() + " tokens ("
                + plan.bytesPerToken() + " bytes each) = " + (plan.nonExpertBytes() + slots * layer + sequence)
                + " bytes, more than the " + available + " bytes of " + budget.where());
    }

    /** A device's own memory under a cap of {@code cap} bytes: the cap, lowered to the memory where smaller. */
    static MemoryBudget capped(MemoryBudget own, long cap) {
        return new MemoryBudget(Math.min(cap, own.availableBytes()), own.bytesPerWeight(), own.packsSparseExperts(),
                "the --device-memory cap" + (cap > own.availableBytes() ? " (lowered to " + own.where() + ")" : ""),
                own.sharedByDevices());
    }

    /** Per decoder layer, whether its routed experts stream (a copy). */
    @Override
    public boolean[] streamed() {
        return streamed.clone();
    }

    /** Whether layer {@code l}'s routed experts stream from host memory. */
    public boolean streams(int l) {
        return streamed[l];
    }

    /** How many MoE layers stream. */
    public int streamedLayers() {
        int n = 0;
        for (boolean s : streamed) {
            n += s ? 1 : 0;
        }
        return n;
    }

    /** The bytes one forward uploads: every streamed layer's experts once. */
    public long streamedBytesPerForward() {
        return streamedLayers() * layerExpertBytes;
    }

    /** "2 MoE layers' experts stream from host memory (7077888 bytes each, 2 staging slots), ...". */
    public String describe() {
        if (!capped) {
            return "every layer's experts resident";
        }
        return streamedLayers() + " MoE layers' experts stream from host memory (" + layerExpertBytes
                + " bytes each, " + slots + " staging slots), the rest resident, in " + plan.budget().where()
                + "; at most " + String.format("%,d", largestBatchTokens) + " tokens per batch ("
                + plan.bytesPerToken() + " bytes of activations each)";
    }

    private static long layerBytes(ModelConfig c, MemoryPlan plan) {
        int moe = moeLayerCount(c);
        return plan == null || moe == 0 ? 0 : plan.expertBytes() / moe;
    }

    private static int moeLayerCount(ModelConfig c) {
        int n = 0;
        for (boolean m : c.moeLayers()) {
            n += m ? 1 : 0;
        }
        return n;
    }

    /** The first {@code resident} MoE layers resident, every later one streamed. */
    static boolean[] streamedAfter(ModelConfig c, int resident) {
        boolean[] moe = c.moeLayers();
        boolean[] out = new boolean[moe.length];
        int seen = 0;
        for (int l = 0; l < moe.length; l++) {
            if (moe[l]) {
                out[l] = seen++ >= resident;
            }
        }
        return out;
    }
}
