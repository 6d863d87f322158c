package io.moescore.engine;

import io.moescore.backend.MemoryBudget;
import io.moescore.model.ModelConfig;
import io.moescore.sparse.SparsityPattern;

/**
 * A model's memory on a backend, known before any weight loads: the bytes its weights take as placed (a lower
 * bound where the backend's is), the fp32 activations each token of a batch adds, and how many tokens fit beside
 * the weights. A model whose weights alone exceed the memory is refused with these numbers, not by an
 * out-of-memory error halfway through the load.
 *
 * @param parameters          weights the engine places ({@link ModelConfig#parameterCount()})
 * @param weightBytes         their bytes as placed (sparse experts packed where the backend keeps them packed)
 * @param expertBytes         the routed experts' share of weightBytes (what {@link ExpertResidency} may stream)
 * @param bytesPerToken       activation bytes per token of a batch, at least (the forward's fp32 buffers)
 * @param budget              the backend's memory
 */
public record MemoryPlan(long parameters, long weightBytes, long expertBytes, long bytesPerToken,
                         MemoryBudget budget) {
    /** The plan of a model (with the sparsity pattern its checkpoint stores, or null) on a backend's budget. */
    public static MemoryPlan of(ModelConfig c, SparsityPattern stored, MemoryBudget budget) {
        long experts = c.routedExpertParameterCount();
        long others = c.parameterCount() - experts;
        double expertBytesPerWeight = stored != null && budget.packsSparseExperts()
                ? stored.bytesPerWeight() * budget.bytesPerWeight() / 2 : budget.bytesPerWeight();
        long expertBytes = (long) Math.ceil(experts * expertBytesPerWeight);
        long weightBytes = (long) Math.ceil(others * budget.bytesPerWeight()) + expertBytes;
        // x, the two normed copies, the block output; q, k, v, attention output; router logits; and per routed
        // entry the expert's output row and its gate/up intermediates
        long perToken = Float.BYTES * (4L * c.hiddenSize() + c.qDim() + c.kvDim() + c.vDim() + c.attentionOutDim()
                + c.numExperts() + (long) c.topK() * (c.hiddenSize() + 2L * c.expertFfnSize()));
        return new MemoryPlan(c.parameterCount(), weightBytes, expertBytes, perToken, budget);
    }

    /** The same model's plan in another memory of the same kind (a cap on it: {@link ExpertResidency}). */
    public MemoryPlan in(MemoryBudget other) {
        return new MemoryPlan(parameters, weightBytes, expertBytes, bytesPerToken, other);
    }

    /** Whether the weights fit at all. */
    public boolean fits() {
        return weightBytes < budget.availableBytes();
    }

    /** The most tokens one batch can hold beside the weights (0 when they do not fit). */
    public long largestBatchTokens() {
        return fits() ? (budget.availableBytes() - weightBytes) / bytesPerToken : 0;
    }

    /** The weights the device always holds: all but the routed experts. */
    public long nonExpertBytes() {
        return weightBytes - expertBytes;
    }

    /** "6.4 GB of weights (1.61 billion parameters) in the JVM heap (-Xmx) of 16.0 GB; about 2,000,000 tokens ...". */
    public String describe() {
        return gigabytes(weightBytes) + " of weights (" + String.format("%.3g", parameters / 1e9)
                + " billion parameters at " + budget.bytesPerWeight() + " bytes) in " + budget.where() + " of "
                + gigabytes(budget.availableBytes())
                + (fits() ? "; about " + String.format("%,d", largestBatchTokens()) + " tokens per batch fit beside "
                + "them (" + bytesPerToken + " bytes of activations each, at least)" : "");
    }

    static String gigabytes(long bytes) {
        return String.format("%.1f GB", bytes / 1e9);
    }
}
