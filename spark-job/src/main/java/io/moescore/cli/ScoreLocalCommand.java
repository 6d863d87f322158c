package io.moescore.cli;

import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import io.moescore.score.Setting;
import io.moescore.spark.CommandSettings;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code moescore score-local}: the single-process scorer, JSON lines in and out. Its options are
 * {@link LocalScoreOptions#SETTINGS} (made into flags by {@link CommandSettings}).
 */
@Command(name = "score-local", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Scores a JSON-lines file in this process (no Spark). Input lines: {\"id\": ..., \"tokens\": "
                + "[...]}, or continuation rows {\"id\": ..., \"context\": ..., \"continuation\": ...} (both text, "
                + "or both token ids).")
final class ScoreLocalCommand implements Callable<Integer>, CommandSettings.Command {
    @Spec
    CommandSpec spec;

    @Override
    public List<Setting<?>> settings() {
        return LocalScoreOptions.SETTINGS;
    }

    @Override
    public boolean readsConf() {
        return false;
    }

    @Override
    public Integer call() {
        LocalScoreOptions options;
        try {
            options = LocalScoreOptions.resolve(CommandSettings.source(spec, null));
        } catch (IllegalArgumentException e) {
            System.err.println("moescore score-local: " + e.getMessage());
            return LocalScorer.EXIT_BAD_INVOCATION;
        }
        return new LocalScorer(System.err).run(options);
    }
}
