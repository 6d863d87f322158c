package io.moescore.cli;

import io.moescore.sparsify.CalibrationRows;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.Sparsifier;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moescore sparsify}: writes a 2:4 or 128:2:8 compressed checkpoint that executors load directly. */
@Command(name = "sparsify", mixinStandardHelpOptions = true,
        description = "Prunes every expert's weights 2:4 or 128:2:8 (magnitude, wanda or sparsegpt) and writes a "
                + "compressed checkpoint.")
final class SparsifyCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "dense Hugging Face model directory")
    Path model;

    @Option(names = "--out", required = true, description = "output directory")
    Path out;

    @Option(names = "--pattern", defaultValue = "2:4", description = "2:4 (2 of every 4 input columns kept, 50%%) or "
            + "128:2:8 (Samoyeds' vector-wise 75%%: per 128 input columns one row of each pair kept, 2:4 inside) "
            + "(default: ${DEFAULT-VALUE})")
    String pattern;

    @Option(names = "--method", defaultValue = "magnitude",
            description = "magnitude, wanda or sparsegpt (default: ${DEFAULT-VALUE})")
    String method;

    @Option(names = "--calibration", description = "JSON lines of {\"tokens\": [...]} for wanda and sparsegpt")
    Path calibration;

    @Option(names = "--sequential", description = "sparsegpt: calibrate each layer on activations through the "
            + "already pruned layers before it (one calibration pass per MoE layer either way)")
    boolean sequential;

    @Option(names = "--reconstruct-steps", defaultValue = "0", description = "sparsegpt: then tune each expert's kept "
            + "weights so it reproduces the dense expert on its calibration tokens (Adam, steps of 512 tokens, masks "
            + "fixed; 200 took the demo model from x1.21 to x1.12 of dense perplexity) (default: ${DEFAULT-VALUE})")
    int reconstructSteps;

    @Override
    public Integer call() throws Exception {
        try {
            List<int[]> rows = calibration == null ? List.of() : CalibrationRows.read(calibration);
            Sparsifier.Result r = Sparsifier.sparsify(model, out, pattern, method, sequential,
                    reconstructSteps == 0 ? ExpertReconstruction.Options.NONE
                            : ExpertReconstruction.Options.of(reconstructSteps), rows);
            System.err.printf("moescore: pruned %d expert weights %s by %s%s%s (%d calibration tokens) into %s%n",
                    r.tensorsPruned(), pattern, method, sequential ? " (sequential)" : "",
                    reconstructSteps > 0 ? ", experts reconstructed in " + reconstructSteps + " steps" : "",
                    r.calibrationTokens(), out);
            r.fallbacksPerLayer().forEach((layer, count) -> System.err.printf(
                    "moescore: layer %d: %d expert weights fell back to magnitude (no calibration token reached "
                            + "their expert)%n", layer, count));
            return 0;
        } catch (IllegalArgumentException | io.moescore.model.ModelFormatException e) {
            System.err.println("moescore sparsify: " + e.getMessage());
            return 2;
        }
    }
}
