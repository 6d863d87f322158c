package io.moescore.backend.cuda;

import io.moescore.backend.Precision;
import java.util.Objects;

/**
 * How a {@link CudaBackend} runs. What needs the device to check (the wgmma families need a Hopper) the backend
 * checks when it opens it.
 *
 * @param deviceOrdinal the CUDA device, 0 the first
 * @param precision     how the tensor cores multiply ({@link Precision})
 * @param kernels       TUNED: the autotuner picks per shape; the others pin one kernel family (tests, benchmarks)
 * @param deterministic batch-invariant scores: a sequence's are bit-identical whatever it is batched with (same
 *                      model, GPU architecture and precision): one kernel family whatever the shape (TUNED becomes
 *                      wgmma on a Hopper, mma.sync elsewhere), experts combined in expert order instead of by
 *                      atomics (an entries x hidden fp32 buffer more per layer), lm_head in fixed vocabulary
 *                      chunks. Every other kernel already computes a row from that row alone, in an order that does
 *                      not depend on the batch.
 */
public record CudaOptions(int deviceOrdinal, Precision precision, Kernels kernels, boolean deterministic) {
    public CudaOptions {
        if (deviceOrdinal < 0) {
            throw new IllegalArgumentException("CUDA device ordinal must be 0 or more, got " + deviceOrdinal);
        }
        Objects.requireNonNull(precision, "CUDA backend precision");
        Objects.requireNonNull(kernels, "CUDA backend kernels");
    }

    /** Device {@code deviceOrdinal} with the defaults: bf16, tuned kernels, not deterministic. */
    public static CudaOptions device(int deviceOrdinal) {
        return new CudaOptions(deviceOrdinal, Precision.BF16, Kernels.TUNED, false);
    }

    public CudaOptions withPrecision(Precision value) {
        return new CudaOptions(deviceOrdinal, value, kernels, deterministic);
    }

    public CudaOptions withKernels(Kernels value) {
        return new CudaOptions(deviceOrdinal, precision, value, deterministic);
    }

    public CudaOptions withDeterministic(boolean value) {
        return new CudaOptions(deviceOrdinal, precision, kernels, value);
    }
}
