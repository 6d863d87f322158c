package io.moescore.bench.portability;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The portability job's settings, as executors need them.
 *
 * @param model     a model directory every executor can read, for the model-level run; null skips it
 * @param backend   auto or cuda (the GPU where an executor has one, else the CPU), or cpu (always the CPU)
 * @param runLabel  names this run in the table, so merged studies tell clusters apart
 * @param executors wait for this many executors before scheduling (0: take those registered when it starts)
 */
public record PortabilityOptions(KernelSuite suite, String backend, String precision, String model, String runLabel,
                                 int executors) implements Serializable {
    public PortabilityOptions {
        backend = backend.toLowerCase(Locale.ROOT);
        if (!backend.equals("auto") && !backend.equals("cuda") && !backend.equals("cpu")) {
            throw new IllegalArgumentException("--backend must be auto, cuda or cpu, not '" + backend + "'");
        }
        if (executors < 0) {
            throw new IllegalArgumentException("--executors must be 0 or more, got " + executors);
        }
        if (runLabel == null || runLabel.isBlank()) {
            throw new IllegalArgumentException("--label must not be empty");
        }
    }

    Path modelPath() {
        return model == null ? null : Path.of(model);
    }
}
