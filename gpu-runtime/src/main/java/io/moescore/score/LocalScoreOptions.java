package io.moescore.score;

import java.nio.file.Path;
import java.util.List;

/**
 * Options of the single-process scorer ({@code moescore score-local}): its own (model, input, output) and the
 * scoring settings every scorer shares. An option of score-local only is added here, the way {@link ScoreSettings}
 * says: a component, its {@link Setting} in {@link #OWN}, and its line in {@link #resolve}; the command line gets
 * its flag from {@link #SETTINGS}.
 *
 * @param model     the model directory (config.json, safetensors)
 * @param input     JSON lines of {@code {"id": ..., "tokens": [...]}}
 * @param output    JSON lines, one per input line (a NAME.summary.json is written beside it)
 * @param overwrite replace an existing output (refused otherwise)
 * @param settings  how the rows are scored
 */
public record LocalScoreOptions(Path model, Path input, Path output, boolean overwrite, ScoreSettings settings) {
    public static final Setting<Path> MODEL = Setting.path("model", "--model",
            "Hugging Face model directory (config.json + safetensors)");
    public static final Setting<Path> INPUT = Setting.path("input", "--input", "input .jsonl");
    public static final Setting<Path> OUTPUT = Setting.path("output", "--output",
            "output .jsonl (a NAME.summary.json is written beside it); appears only when the run succeeds");
    public static final Setting<Boolean> OVERWRITE = Setting.flag("overwrite", "--overwrite",
            "replace an existing output (refused otherwise)");

    /** score-local's own settings. */
    public static final List<Setting<?>> OWN = List.of(MODEL, INPUT, OUTPUT, OVERWRITE);
    /** Every setting of score-local: its own, then the scoring settings. */
    public static final List<Setting<?>> SETTINGS = Setting.concat(OWN, ScoreSettings.ALL);

    public LocalScoreOptions {
        if (model == null || input == null || output == null || settings == null) {
            throw new IllegalArgumentException("score-local needs a model, an input, an output and settings");
        }
    }

    /** The options {@code source} gives (see {@link ScoreSettings#resolve}). */
    public static LocalScoreOptions resolve(Setting.Source source) {
        return new LocalScoreOptions(MODEL.resolve(source), INPUT.resolve(source), OUTPUT.resolve(source),
                OVERWRITE.resolve(source), ScoreSettings.resolve(source));
    }
}
