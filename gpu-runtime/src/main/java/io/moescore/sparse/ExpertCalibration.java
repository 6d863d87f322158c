package io.moescore.sparse;

import io.moescore.backend.cpu.CpuBackend;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import io.moescore.engine.TokenBatch;
import io.moescore.model.ModelConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;

/**
 * A calibration pass: scores the calibration sequences with our CPU engine and shows every routed expert's
 * inputs, layer by layer, to a {@link RoutedInputs}. What the pruning methods learn their statistics from.
 */
final class ExpertCalibration {
    private ExpertCalibration() {
    }

    /** One expert's inputs in one MoE layer and forward pass. */
    interface RoutedInputs {
        /**
         * @param x      the layer's normed hidden states [tokens, hidden]; the expert's tokens are x's rows named by rows
         * @param swiglu silu(x gate^T) * (x up^T) for those tokens [rows.length, ffn]: the input of down
         */
        void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn);
    }

    static void run(Path model, ModelConfig config, List<int[]> calibration, RoutedInputs sink) {
        int[] moeLayers = IntStream.range(0, config.numLayers()).filter(l -> config.moeLayers()[l]).toArray();
        int[] call = {0};
        try (CpuBackend cpu = new CpuBackend(Runtime.getRuntime().availableProcessors());
             Engine engine = Engine.load(model, cpu)) {
            cpu.observeExpertInputs((expert, x, rows, hidden, swiglu, ffn) -> {
                // the backend runs experts 0..E-1 in order once per MoE layer and forward pass
                int layer = moeLayers[(call[0] / config.numExperts()) % moeLayers.length];
                call[0]++;
                sink.accept(layer, expert, x, rows, hidden, swiglu, ffn);
            });
            for (int[] sequence : calibration) {
                call[0] = 0;
                engine.score(TokenBatch.of(sequence), ScoreOptions.SUMS_ONLY);
            }
        }
    }
}
