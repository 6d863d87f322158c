package io.moescore.backend.select;

import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.CudaUnavailableException;
import io.moescore.backend.cuda.GpuRuntime;
import java.util.Locale;

/** Opens the backend a user asked for by name: auto, cpu or cuda. */
public final class Backends {
    private Backends() {
    }

    /**
     * @param name          auto (the GPU when a device and kernels exist, else the CPU), cpu, or cuda
     * @param threads       CPU threads for the CPU backend
     * @param deviceOrdinal the CUDA device to use (ignored by the CPU backend)
     * @param precision     how the GPU multiplies (the CPU computes in fp32 always)
     * @param deterministic the GPU's scores batch-invariant (CudaBackend says how; the CPU backend always is)
     * @throws IllegalArgumentException for an unknown name, or cuda where CUDA cannot run (the message says why)
     */
    public static Backend open(String name, int threads, int deviceOrdinal, Precision precision,
                               boolean deterministic) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "cpu":
                return new CpuBackend(threads);
            case "auto":
                if (GpuRuntime.whyUnavailable(deviceOrdinal) == null) {
                    return new CudaBackend(cuda(deviceOrdinal, precision, deterministic));
                }
                return new CpuBackend(threads);
            case "cuda":
                try {
                    return new CudaBackend(cuda(deviceOrdinal, precision, deterministic));
                } catch (CudaUnavailableException e) {
                    throw new IllegalArgumentException("backend 'cuda': " + e.getMessage(), e);
                }
            default:
                throw new IllegalArgumentException("unknown backend '" + name + "' (use auto, cpu or cuda)");
        }
    }

    /** The CUDA backend's options: kernels tuned per shape. */
    private static CudaOptions cuda(int deviceOrdinal, Precision precision, boolean deterministic) {
        return CudaOptions.device(deviceOrdinal).withPrecision(precision).withDeterministic(deterministic);
    }
}
