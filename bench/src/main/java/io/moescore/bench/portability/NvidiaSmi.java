package io.moescore.bench.portability;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Asks {@code nvidia-smi} for what gpu-runtime does not expose: maximum SM and memory clocks and the NVIDIA
 * driver version. Best effort: every field is null when nvidia-smi is missing, slow or says something else.
 * The index is the CUDA ordinal, which matches nvidia-smi's unless CUDA_VISIBLE_DEVICES reorders devices.
 */
final class NvidiaSmi {
    record Facts(Integer maxSmClockMhz, Integer maxMemoryClockMhz, String driverVersion) {
    }

    private static final Facts NONE = new Facts(null, null, null);

    private NvidiaSmi() {
    }

    static Facts query(int index) {
        try {
            Process p = new ProcessBuilder("nvidia-smi", "--query-gpu=clocks.max.sm,clocks.max.mem,driver_version",
                    "--format=csv,noheader,nounits", "-i", Integer.toString(index)).redirectErrorStream(true).start();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return NONE;
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            String[] f = out.split("\\s*,\\s*");
            if (p.exitValue() != 0 || f.length != 3) {
                return NONE;
            }
            return new Facts(parseInt(f[0]), parseInt(f[1]), f[2]);
        } catch (IOException e) {
            return NONE;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return NONE;
        }
    }

    private static Integer parseInt(String s) {
        try {
            return Integer.valueOf(s.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
