package io.moescore.sparsify;

import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.select.Backends;
import io.moescore.engine.Engine;
import io.moescore.engine.RoutedInputs;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.TokenBatch;
import java.nio.file.Path;
import java.util.List;

/**
 * A calibration pass: scores the calibration sequences one by one with our CPU engine and shows every routed
 * expert's inputs, layer by layer, to a {@link RoutedInputs}. What the pruning methods learn their statistics from.
 */
final class ExpertCalibration {
    private ExpertCalibration() {
    }

    static void run(Path model, List<int[]> calibration, RoutedInputs sink) {
        try (Backend cpu = Backends.open("cpu", Runtime.getRuntime().availableProcessors(), 0,
                Precision.BF16, false);
             Engine engine = Engine.load(model, cpu)) {
            for (int[] sequence : calibration) {
                engine.score(TokenBatch.of(sequence), ScoreOptions.SUMS_ONLY, sink);
            }
        }
    }
}
