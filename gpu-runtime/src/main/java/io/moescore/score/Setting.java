package io.moescore.score;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;

/**
 * One user-facing option, described once: its name in {@code spark.moescore.*} conf and as a {@code MoeScorer}
 * Param ({@link #key}, e.g. {@code batchTokens}), its command-line flag ({@link #flag}, e.g. {@code --batch-tokens}),
 * its default, its help text, and how a value is read from text and checked. Every surface resolves it through
 * {@link #resolve}, so the default and the checks live here only, and an error names the option the way its user
 * gave it ({@code --batch-tokens must be at least 1, got 0}, {@code spark.moescore.batchTokens 'x' is not a whole
 * number}, {@code MoeScorer param batchTokens ...}).
 *
 * @param <T> Integer, Boolean, Path, or the value type of a {@link #choice} or {@link #parsed} setting
 */
public final class Setting<T> {
    /** What a user gave for a setting: the value, typed or as text, and the name it was given under. */
    public record Given(Object value, String name) {
        public Given {
            Objects.requireNonNull(value, "value");
            Objects.requireNonNull(name, "name");
        }
    }

    /** Where the values of settings come from (a command line, a Spark conf, ML Params). */
    @FunctionalInterface
    public interface Source {
        /** Nothing given: every setting takes its default. */
        Source NONE = s -> null;

        /** What was given for {@code setting}, or null when nothing was (its default applies). */
        Given given(Setting<?> setting);
    }

    private final String key;
    private final String flag;
    private final String label;
    private final String description;
    private final Class<T> type;
    private final T defaultValue;
    private final Function<String, T> parse;
    private final Function<T, String> problem;
    private final Function<T, String> format;

    private Setting(String key, String flag, String label, String description, Class<T> type, T defaultValue,
                    Function<String, T> parse, Function<T, String> problem, Function<T, String> format) {
        this.key = key;
        this.flag = flag;
        this.label = label;
        this.description = description;
        this.type = type;
        this.defaultValue = defaultValue;
        this.parse = parse;
        this.problem = problem;
        this.format = format;
        if (defaultValue != null && problem.apply(defaultValue) != null) {
            throw new IllegalStateException(key + ": the default " + defaultValue + " " + problem.apply(defaultValue));
        }
    }

    /** A whole number in {@code [min, max]} ({@code max} {@link Integer#MAX_VALUE}: no upper bound). */
    public static Setting<Integer> integer(String key, String flag, int defaultValue, int min, int max,
                                           String description) {
        return new Setting<>(key, flag, "N", description, Integer.class, defaultValue, text -> {
            try {
                return Integer.valueOf(text.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + text + "' is not a whole number");
            }
        }, v -> v >= min && v <= max ? null : (max == Integer.MAX_VALUE ? "must be at least " + min
                : "must be between " + min + " and " + max) + ", got " + v, String::valueOf);
    }

    /** An on/off switch, off unless given (on the command line: the flag alone). */
    public static Setting<Boolean> flag(String key, String flag, String description) {
        return new Setting<>(key, flag, null, description, Boolean.class, false, text -> switch (
                text.trim().toLowerCase(Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new IllegalArgumentException("'" + text + "' is not true or false");
        }, v -> null, String::valueOf);
    }

    /** One of {@code values}, given by its name (any case). */
    public static <T> Setting<T> choice(String key, String flag, Class<T> type, T defaultValue, List<T> values,
                                        Function<T, String> name, String description) {
        List<String> names = values.stream().map(name).toList();
        return new Setting<>(key, flag, String.join("|", names), description, type, defaultValue, text -> {
            int i = names.indexOf(text.trim().toLowerCase(Locale.ROOT));
            if (i < 0) {
                throw new IllegalArgumentException("'" + text + "' is not one of " + names);
            }
            return values.get(i);
        }, v -> values.contains(v) ? null : "'" + v + "' is not one of " + names, name);
    }

    /**
     * A value read from text by {@code parse} (which throws IllegalArgumentException naming the part that is
     * wrong) and written back by {@code format}; {@code label} shows its form in usage help.
     */
    public static <T> Setting<T> parsed(String key, String flag, String label, Class<T> type, T defaultValue,
                                        Function<String, T> parse, Function<T, String> format, String description) {
        return new Setting<>(key, flag, label, description, type, defaultValue, parse, v -> null, format);
    }

    /**
     * A number of bytes, 0 by default ({@code description} says what 0 means): plain bytes or with a binary suffix
     * k, m, g or t (any case, an optional b: {@code 512m}, {@code 6g}, {@code 1GiB} is not accepted). Usage help
     * shows it as BYTES.
     */
    public static Setting<Long> bytes(String key, String flag, String description) {
        return new Setting<>(key, flag, "BYTES", description, Long.class, 0L, Setting::parseBytes,
                v -> v >= 0 ? null : "must be at least 0 bytes, got " + v, String::valueOf);
    }

    /** "6g" as 6 x 2^30, "512m", "4096", "2kb"; throws naming the text where it is none of these. */
    static long parseBytes(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("b") && t.length() > 1 && !Character.isDigit(t.charAt(t.length() - 2))) {
            t = t.substring(0, t.length() - 1);
        }
        int shift = t.isEmpty() ? 0 : switch (t.charAt(t.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        String digits = shift == 0 ? t : t.substring(0, t.length() - 1);
        long n;
        try {
            n = Long.parseLong(digits);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a number of bytes (e.g. 6g, 512m, 1048576)");
        }
        if (n < 0 || n > Long.MAX_VALUE >> shift) {
            throw new IllegalArgumentException("'" + text + "' is not a number of bytes from 0 to 8 exbibytes");
        }
        return n << shift;
    }

    /** A file or folder; no default: required. Usage help shows it as {@code --flag=<key>}. */
    public static Setting<Path> path(String key, String flag, String description) {
        return new Setting<>(key, flag, "<" + key + ">", description, Path.class, null, Path::of,
                v -> v.toString().isBlank() ? "must not be empty" : null, Path::toString);
    }

    /** The name in {@code spark.moescore.*} conf and of a MoeScorer Param, e.g. {@code batchTokens}. */
    public String key() {
        return key;
    }

    /** The command-line flag, e.g. {@code --batch-tokens}. */
    public String flag() {
        return flag;
    }

    /** The placeholder of the value in usage help ({@code N}, {@code auto|cpu|cuda}), or null for a flag. */
    public String label() {
        return label;
    }

    public String description() {
        return description;
    }

    public Class<T> type() {
        return type;
    }

    /** The default, or null where the setting is required. */
    public T defaultValue() {
        return defaultValue;
    }

    public boolean isFlag() {
        return type == Boolean.class;
    }

    /** The value as a user would write it ({@code bf16}, {@code 8192}, {@code true}). */
    public String format(T value) {
        return format.apply(value);
    }

    /** The value as JSON would hold it: numbers and booleans as such, everything else as its text. */
    public Object jsonValue(T value) {
        return value instanceof Number || value instanceof Boolean ? value : format(value);
    }

    /**
     * The value {@code source} gives, checked, or the default when it gives none.
     *
     * @throws IllegalArgumentException naming the option as given, with what is wrong
     */
    public T resolve(Source source) {
        Given given = source.given(this);
        if (given == null) {
            if (defaultValue == null) {
                throw new IllegalArgumentException("no " + flag + " given");
            }
            return defaultValue;
        }
        return valueOf(given.value(), given.name());
    }

    /**
     * {@code value} (of this setting's type, or its text) as this setting's value.
     *
     * @param name how the user gave the option, for the message
     * @throws IllegalArgumentException "NAME 'x' is not a whole number", "NAME must be at least 1, got 0", ...
     */
    public T valueOf(Object value, String name) {
        T v;
        if (value instanceof String text) {
            try {
                v = parse.apply(text);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + " " + e.getMessage(), e);
            }
        } else if (type.isInstance(value)) {
            v = type.cast(value);
        } else {
            throw new IllegalArgumentException(name + " " + value + " is not a " + type.getSimpleName());
        }
        String wrong = problem.apply(v);
        if (wrong != null) {
            throw new IllegalArgumentException(name + " " + wrong);
        }
        return v;
    }

    /** {@code first} then {@code more}, as one list (the settings of a command: shared ones and its own). */
    public static List<Setting<?>> concat(List<Setting<?>> first, List<Setting<?>> more) {
        List<Setting<?>> all = new ArrayList<>(first);
        all.addAll(more);
        return List.copyOf(all);
    }

    @Override
    public String toString() {
        return key;
    }
}
