package io.moescore.backend.select;

import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.CudaUnavailableException;
import io.moescore.backend.cuda.GpuRuntime;
import io.moescore.model.ModelConfig;
import io.moescore.routing.Router;
import java.util.ArrayList;
import java.util.List;
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

    /**
     * {@code count} devices of the backend of this name, device 0 first, for an engine that spreads its experts over
     * them: on the CPU, logical devices splitting {@code threads} (each at least one; the first ones take the
     * remainder); on cuda, the GPUs {@code deviceOrdinal} to {@code deviceOrdinal + count - 1} (NOT yet run on GPUs).
     * auto picks one backend for them all, as {@link #open} would for device 0. On failure, those opened are closed.
     *
     * @throws IllegalArgumentException as {@link #open} does, e.g. cuda where one of the GPUs is missing
     */
    public static List<Backend> openDevices(String name, int threads, int deviceOrdinal, int count,
                                            Precision precision, boolean deterministic) {
        if (count < 1) {
            throw new IllegalArgumentException("--devices must be at least 1, got " + count);
        }
        String kind = name.toLowerCase(Locale.ROOT);
        if (kind.equals("auto")) {
            kind = GpuRuntime.whyUnavailable(deviceOrdinal) == null ? "cuda" : "cpu";
        }
        List<Backend> opened = new ArrayList<>();
        try {
            for (int d = 0; d < count; d++) {
                int share = Math.max(1, threads / count + (d < threads % count ? 1 : 0));
                opened.add(open(kind, share, deviceOrdinal + d, precision, deterministic));
            }
        } catch (RuntimeException e) {
            for (Backend b : opened) {  // every one closed; a failing close kept beside the cause, not instead of it
                try {
                    b.close();
                } catch (RuntimeException closeFailure) {
                    e.addSuppressed(closeFailure);
                }
            }
            throw e;
        }
        return opened;
    }

    /**
     * What the backend of this name lacks to run a model of this config, asked without opening it (a driver's check
     * before any executor loads): cuda's missing kernels; nothing for cpu, nor for auto (it runs such a model where
     * the executor has no GPU, and is refused naming what is missing where it has one).
     */
    public static List<String> unsupported(String name, ModelConfig config) {
        return name.toLowerCase(Locale.ROOT).equals("cuda") ? CudaBackend.missingKernels(config) : List.of();
    }

    /** Whether the backend of this name runs {@code router} ({@link Backend#canRoute}), asked without opening it. */
    public static boolean routes(String name, Router router) {
        return !name.toLowerCase(Locale.ROOT).equals("cuda") || CudaBackend.routes(router);
    }

    /** The CUDA backend's options: kernels tuned per shape. */
    private static CudaOptions cuda(int deviceOrdinal, Precision precision, boolean deterministic) {
        return CudaOptions.device(deviceOrdinal).withPrecision(precision).withDeterministic(deterministic);
    }
}
