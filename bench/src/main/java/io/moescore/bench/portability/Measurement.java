package io.moescore.bench.portability;

import java.io.Serializable;

/** One timed case on one device; the figures are null when {@code error} says why it could not be timed. */
public record Measurement(String kernel, String shape, int tokens, String dtype, String pattern, Double medianMs,
                          Double tflops, Double gbps, String tileConfig, String error) implements Serializable {

    static Measurement timed(String kernel, String shape, int tokens, String dtype, String pattern, double medianMs,
                             double flops, double bytes, String tileConfig) {
        double seconds = medianMs * 1e-3;
        return new Measurement(kernel, shape, tokens, dtype, pattern, medianMs,
                flops > 0 ? flops / seconds / 1e12 : null, bytes > 0 ? bytes / seconds / 1e9 : null, tileConfig, null);
    }

    static Measurement failed(String kernel, String shape, int tokens, String dtype, String pattern, String error) {
        return new Measurement(kernel, shape, tokens, dtype, pattern, null, null, null, null, error);
    }
}
