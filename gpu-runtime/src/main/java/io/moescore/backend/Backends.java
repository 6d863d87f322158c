package io.moescore.backend;

import io.moescore.backend.cpu.CpuBackend;
import java.util.Locale;

/** Opens the backend a user asked for by name: auto, cpu or cuda. */
public final class Backends {
    private Backends() {
    }

    /**
     * @param name          auto (the GPU when one can be used, else the CPU), cpu, or cuda
     * @param threads       CPU threads for the CPU backend
     * @param deviceOrdinal the CUDA device to use (ignored by the CPU backend)
     */
    public static Backend open(String name, int threads, int deviceOrdinal) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "cpu":
            case "auto":
                return new CpuBackend(threads);
            case "cuda":
                throw new IllegalArgumentException("backend 'cuda' (device " + deviceOrdinal + ") is not available in this build: it has no CUDA "
                        + "backend yet; use --backend cpu or auto");
            default:
                throw new IllegalArgumentException("unknown backend '" + name + "' (use auto, cpu or cuda)");
        }
    }
}
