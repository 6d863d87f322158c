package io.moescore.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code moescore} command (submit-scripts/moescore runs it). Exit codes: 0 success, 1 an unexpected
 * failure, 2 bad options or an unusable model or input, 3 finished but some rows carry an error.
 */
@Command(name = "moescore", mixinStandardHelpOptions = true, version = "moescore 0.1.0",
        description = "Scores datasets with Mixture-of-Experts language models.",
        subcommands = {io.moescore.spark.MoeScoreJob.class, ScoreLocalCommand.class, DemoCommand.class,
            SparsifyCommand.class, io.moescore.spark.sparsify.SparsifyJob.class,
            io.moescore.spark.portability.PortabilityJob.class, YarnCheckCommand.class})
public final class Moescore {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Moescore());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("moescore: " + e);
            e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }

    /** The folder the distribution lives in (set by submit-scripts/moescore), for the demo's defaults. */
    static java.nio.file.Path home() {
        return java.nio.file.Path.of(System.getProperty("moescore.home", ".")).toAbsolutePath().normalize();
    }
}
