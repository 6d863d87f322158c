package io.moescore.cli;

import io.moescore.backend.GpuFaultException;
import io.moescore.engine.UnsupportedModelException;
import io.moescore.model.ModelFormatException;
import io.moescore.report.RoutingStudyReport;
import io.moescore.score.LocalScorer;
import io.moescore.score.RoutingStudy;
import io.moescore.score.RoutingStudyOptions;
import io.moescore.score.Setting;
import io.moescore.spark.CommandSettings;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code moescore routing-study}: scores a JSON-lines file once per router variant in this process
 * ({@link RoutingStudy}) and writes the comparison ({@link RoutingStudyReport}); its options are
 * {@link RoutingStudyOptions#SETTINGS}. Exit codes as score-local's: 2 before anything is written for a bad option,
 * variant, model or input, 3 when some rows carry an error (the report is written), 4 on a GPU fault.
 */
@Command(name = "routing-study", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Scores a JSON-lines file (score-local's input) once per router variant, the model's own "
                + "router first, and compares them: perplexity and its ratio to the model's router, expert FLOPs "
                + "executed, tokens/s, rows whose top-1 next token changed. Writes routing_study.json, .md and "
                + ".html into --out and prints the table.")
final class RoutingStudyCommand implements Callable<Integer>, CommandSettings.Command {
    private static final String NAME = "moescore routing-study: ";

    @Spec
    CommandSpec spec;

    @Override
    public List<Setting<?>> settings() {
        return RoutingStudyOptions.SETTINGS;
    }

    @Override
    public boolean readsConf() {
        return false;
    }

    @Override
    public Integer call() {
        RoutingStudyOptions options;
        RoutingStudy.Result result;
        try {
            options = RoutingStudyOptions.resolve(CommandSettings.source(spec, null));
            RoutingStudyReport.check(options.out(), options.overwrite(), options.proposeDrops() > 0);
            result = new RoutingStudy(System.err).run(options);
        } catch (IllegalArgumentException | UnsupportedModelException | ModelFormatException | IOException e) {
            System.err.println(NAME + e.getMessage());
            return LocalScorer.EXIT_BAD_INVOCATION;
        } catch (GpuFaultException e) {
            System.err.println(NAME + e.getMessage() + "; nothing written");
            return LocalScorer.EXIT_GPU_FAULT;
        }
        System.out.print(RoutingStudyReport.markdown(result));
        try {
            for (Path p : RoutingStudyReport.write(options.out(), result, options.overwrite())) {
                System.err.println(NAME + "wrote " + p);
            }
        } catch (IOException e) {
            System.err.println(NAME + "cannot write the study into --out " + options.out() + ": " + e.getMessage());
            return 1;
        }
        return result.rowErrors() ? LocalScorer.EXIT_ROW_ERRORS : LocalScorer.EXIT_OK;
    }
}
