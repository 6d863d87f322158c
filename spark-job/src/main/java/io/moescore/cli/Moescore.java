package io.moescore.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code moescore} command (submit-scripts/moescore runs it). Exit codes: 0 success, 1 an unexpected
 * failure, 2 bad options or an unusable model or input, 3 finished but some rows carry an error.
 */
@Command(name = "moescore", mixinStandardHelpOptions = true, version = "moescore 0.1.0",
        description = "Scores datasets with Mixture-of-Experts language models.",
        footer = "submit-scripts/moescore also runs `portability` (the portability benchmark, in the bench module).",
        subcommands = {io.moescore.spark.MoeScoreJob.class, ScoreLocalCommand.class, DemoCommand.class,
            SparsifyCommand.class, io.moescore.spark.sparsify.SparsifyJob.class, TracesCommand.class,
            RoutingStudyCommand.class, io.moescore.spark.RoutingStudyJob.class, PlacementCommand.class, YarnCheckCommand.class})
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
        cli.setParameterExceptionHandler((e, args1) -> {  // one message and a pointer to --help, not the whole help
            CommandLine cmd = e.getCommandLine();
            String name = cmd.getCommandSpec().qualifiedName();
            if (!(e instanceof CommandLine.UnmatchedArgumentException) && !cmd.getUnmatchedArguments().isEmpty()) {
                cmd.getErr().println(name + ": Unknown option or argument: '"
                        + String.join("', '", cmd.getUnmatchedArguments()) + "'");  // what the user typed first
            }
            cmd.getErr().println(name + ": " + e.getMessage());
            CommandLine.UnmatchedArgumentException.printSuggestions(e, cmd.getErr());
            cmd.getErr().println("Run '" + name + " --help' for the options.");
            return cmd.getCommandSpec().exitCodeOnInvalidInput();
        });
        return cli.execute(args);
    }

    /** The folder the distribution lives in (set by submit-scripts/moescore), for the demo's defaults. */
    static java.nio.file.Path home() {
        return java.nio.file.Path.of(System.getProperty("moescore.home", ".")).toAbsolutePath().normalize();
    }
}
