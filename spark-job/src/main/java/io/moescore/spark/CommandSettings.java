package io.moescore.spark;

import io.moescore.score.Setting;
import java.util.List;
import org.apache.spark.SparkConf;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The command-line and conf side of {@link Setting}s. A command lists the settings it takes ({@link Command}) and
 * names {@link Options} as its picocli {@code modelTransformer}: each setting becomes an option (its flag, value
 * label, help with the default and, for the Spark jobs, the key under {@code spark.moescore.}), and {@link #source} reads the values back,
 * the command line first, {@code spark.moescore.KEY} conf second. No command declares these options by hand.
 */
public final class CommandSettings {
    private CommandSettings() {
    }

    /** A command whose options include settings. */
    public interface Command {
        /** The settings this command takes, in the order its help lists them. */
        List<Setting<?>> settings();

        /** Whether a setting not on the command line falls back to {@code spark.moescore.KEY} conf. */
        default boolean readsConf() {
            return true;
        }
    }

    /** Adds the options of the command's {@link Command#settings} to its picocli model. */
    public static final class Options implements CommandLine.IModelTransformer {
        @Override
        public CommandSpec transform(CommandSpec spec) {
            Command command = (Command) spec.userObject();
            for (Setting<?> s : command.settings()) {
                spec.addOption(option(s, command.readsConf()));
            }
            return spec;
        }
    }

    private static OptionSpec option(Setting<?> s, boolean readsConf) {
        String conf = readsConf ? "conf: " + s.key() : "";
        String defaults = s.defaultValue() == null ? "" : s.isFlag() ? "" : "default " + formatted(s);
        String more = conf.isEmpty() || defaults.isEmpty() ? conf + defaults : conf + "; " + defaults;
        OptionSpec.Builder option = OptionSpec.builder(s.flag())
                .description((s.description() + (more.isEmpty() ? "" : " (" + more + ")")).replace("%", "%%"))
                .required(s.defaultValue() == null && !readsConf);
        return (s.isFlag() ? option.arity("0").type(Boolean.class)
                : option.arity("1").type(String.class).paramLabel(s.label())).build();
    }

    @SuppressWarnings("unchecked")
    private static <T> String formatted(Setting<T> s) {
        return s.format(s.defaultValue());
    }

    /** {@code spark.moescore.KEY}. */
    public static String confKey(Setting<?> s) {
        return MoeScoreJob.CONF_PREFIX + s.key();
    }

    /**
     * The values of the command's settings: from its parsed command line (named by the flag), else, where
     * {@code conf} is not null, from {@code spark.moescore.KEY} (named so); settings the command does not take
     * are never given (their defaults apply).
     */
    public static Setting.Source source(CommandSpec spec, SparkConf conf) {
        List<Setting<?>> taken = ((Command) spec.userObject()).settings();
        return s -> {
            if (!taken.contains(s)) {
                return null;
            }
            OptionSpec option = spec.findOption(s.flag());
            Object value = option == null ? null : option.getValue();
            if (value != null) {
                return new Setting.Given(value, s.flag());
            }
            String key = confKey(s);
            return conf != null && conf.contains(key) ? new Setting.Given(conf.get(key), key) : null;
        };
    }
}
