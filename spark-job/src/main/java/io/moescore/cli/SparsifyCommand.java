package io.moescore.cli;

import io.moescore.score.Setting;
import io.moescore.spark.CommandSettings;
import io.moescore.spark.sparsify.SparsifyOptions;
import io.moescore.sparsify.CalibrationRows;
import io.moescore.sparsify.Sparsifier;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code moescore sparsify}: writes a 2:4 or 128:2:8 compressed checkpoint that executors load directly, in this
 * process. {@code --reconstruct-steps} is the Spark job's setting ({@link SparsifyOptions#RECONSTRUCT_STEPS}), made
 * into a flag by {@link CommandSettings}.
 */
@Command(name = "sparsify", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Prunes every expert's weights 2:4 or 128:2:8 (magnitude, wanda or sparsegpt) and writes a "
                + "compressed checkpoint.")
final class SparsifyCommand implements Callable<Integer>, CommandSettings.Command {
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

    @Spec
    CommandSpec spec;

    @Override
    public List<Setting<?>> settings() {
        return List.of(SparsifyOptions.RECONSTRUCT_STEPS);
    }

    @Override
    public boolean readsConf() {
        return false;
    }

    @Override
    public Integer call() throws Exception {
        try {
            int steps = SparsifyOptions.RECONSTRUCT_STEPS.resolve(CommandSettings.source(spec, null));
            List<int[]> rows = calibration == null ? List.of() : CalibrationRows.read(calibration);
            Sparsifier.Result r = Sparsifier.sparsify(model, out, pattern, method, sequential,
                    SparsifyOptions.reconstruction(steps), rows);
            System.err.printf("moescore: pruned %d expert weights %s by %s%s%s (%d calibration tokens) into %s%n",
                    r.tensorsPruned(), pattern, method, sequential ? " (sequential)" : "",
                    steps > 0 ? ", experts reconstructed in " + steps + " steps" : "", r.calibrationTokens(), out);
            if (!r.reconstructed().isEmpty()) {
                System.err.printf("moescore: %d experts reconstructed, mean squared error %.3e -> %.3e on average%n",
                        r.reconstructed().size(), mean(r, true), mean(r, false));
            }
            r.fallbacksPerLayer().forEach((layer, count) -> System.err.printf(
                    "moescore: layer %d: %d expert weights fell back to magnitude (no calibration token reached "
                            + "their expert)%n", layer, count));
            return 0;
        } catch (IllegalArgumentException | io.moescore.model.ModelFormatException e) {
            System.err.println("moescore sparsify: " + e.getMessage());
            return 2;
        }
    }

    private static double mean(Sparsifier.Result r, boolean before) {
        return r.reconstructed().values().stream().mapToDouble(e -> before ? e.initialError() : e.finalError())
                .average().orElse(0);
    }
}
