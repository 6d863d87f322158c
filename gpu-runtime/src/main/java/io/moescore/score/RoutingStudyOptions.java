package io.moescore.score;

import io.moescore.routing.RoutingSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Options of {@code moescore routing-study} ({@link RoutingStudy}): the model and input as score-local takes them,
 * the output folder, the router variants, and the scoring settings every scorer shares except {@code --routing}
 * (which the variants replace) and the per-row outputs.
 *
 * @param model        the model directory
 * @param input        JSON lines, as score-local reads them
 * @param out          the folder the study's files go to
 * @param variants     the routers compared, the model's own ({@link RoutingSpec#MODEL}, the baseline) first
 * @param proposeDrops propose (and study) a drop-experts variant of the N least-loaded experts per layer (0: none)
 * @param repeats      rounds in which each variant scores the rows in turn; its time is its median round's (scores
 *                     and expert loads from the first)
 * @param overwrite    replace the study's files in {@code out} (refused otherwise)
 * @param settings     how the rows are scored (its routing is the model's own; each variant replaces it)
 */
public record RoutingStudyOptions(Path model, Path input, Path out, List<RoutingSpec> variants, int proposeDrops,
                                  int repeats, boolean overwrite, ScoreSettings settings) {
    /** The variants as given: comma-separated specs ({@link RoutingSpec#parse}). */
    public record Variants(List<RoutingSpec> specs) {
        public Variants {
            specs = List.copyOf(specs);
        }

        /** Reads {@code V1,V2,...}; an error names the variant that is wrong (the caller adds the option). */
        public static Variants parse(String text) {
            List<RoutingSpec> specs = new ArrayList<>();
            for (String part : text.split(",", -1)) {
                if (part.isBlank()) {
                    throw new IllegalArgumentException("'" + text + "' has an empty variant: give V1,V2,... "
                            + "(each a --routing SPEC)");
                }
                specs.add(RoutingSpec.parse(part));
            }
            return new Variants(specs);
        }

        @Override
        public String toString() {
            return String.join(",", specs.stream().map(RoutingSpec::toString).toList());
        }
    }

    public static final Setting<Path> OUT = Setting.path("out", "--out",
            "folder for routing_study.json, routing_study.md and routing_study.html (created; they appear only "
                    + "when the study finishes)");
    public static final Setting<Variants> VARIANTS = Setting.parsed("variants", "--variants", "V1,V2,...",
            Variants.class, null, Variants::parse, Variants::toString,
            "router variants to compare, each a --routing SPEC (top-k:K, top-p:P[:MAXK], sigmoid:T, softmax:T, "
                    + "sparsemax, quadratic:T, pioneer:T, batch-top-k:K[:B], drop-experts:FILE); the model's own "
                    + "router (model) is always scored first, as the baseline");
    public static final Setting<Integer> PROPOSE_DROPS = Setting.integer("proposeDrops", "--propose-drops", 0, 0,
            Integer.MAX_VALUE, "also write proposed_drops.json, the N least-loaded experts of each MoE layer in the "
                    + "baseline run (a drop-experts:FILE), and study that variant too (0: none)");

    public static final Setting<Integer> REPEATS = Setting.integer("repeats", "--repeats", 3, 1, 1000,
            "rounds in which every variant scores the rows in turn, after one untimed pass of the baseline over "
                    + "all of them; a variant's tokens/s is its median round's (a small input's single run is mostly "
                    + "noise, and a JIT or a neighbour's load drifts)");

    /** routing-study's own settings. */
    public static final List<Setting<?>> OWN = List.of(LocalScoreOptions.MODEL, LocalScoreOptions.INPUT, OUT,
            VARIANTS, PROPOSE_DROPS, REPEATS, LocalScoreOptions.OVERWRITE);
    /**
     * The scoring settings a study takes (its single-process and Spark forms): all but --routing (the variants
     * replace it), the per-row outputs it does not write (--token-logprobs, --top-k), and --devices and --placement
     * (a study's engines share one device's weights).
     */
    public static final List<Setting<?>> SCORING = ScoreSettings.ALL.stream()
            .filter(s -> s != ScoreSettings.ROUTING && s != ScoreSettings.TOKEN_LOGPROBS && s != ScoreSettings.TOP_K
                    && s != ScoreSettings.DEVICES && s != ScoreSettings.PLACEMENT)
            .toList();
    /** Every setting of routing-study: its own, then {@link #SCORING}. */
    public static final List<Setting<?>> SETTINGS = Setting.concat(OWN, SCORING);

    public RoutingStudyOptions {
        if (model == null || input == null || out == null || variants == null || settings == null) {
            throw new IllegalArgumentException("routing-study needs a model, an input, an output folder, variants "
                    + "and settings");
        }
        if (repeats < 1) {
            throw new IllegalArgumentException(REPEATS.flag() + " must be at least 1, not " + repeats);
        }
        if (!settings.routing().isModel()) {
            throw new IllegalArgumentException("routing-study takes its routers from --variants, not --routing");
        }
        variants = withBaseline(variants);
    }

    /** The model's own router first, then each other variant once, in the order given. */
    public static List<RoutingSpec> withBaseline(List<RoutingSpec> given) {
        Map<String, RoutingSpec> byName = new LinkedHashMap<>();
        byName.put(RoutingSpec.MODEL.toString(), RoutingSpec.MODEL);
        given.forEach(v -> byName.putIfAbsent(v.toString(), v));
        return List.copyOf(byName.values());
    }

    /** The options {@code source} gives; errors name the option as given. */
    public static RoutingStudyOptions resolve(Setting.Source source) {
        return new RoutingStudyOptions(LocalScoreOptions.MODEL.resolve(source),
                LocalScoreOptions.INPUT.resolve(source), OUT.resolve(source), VARIANTS.resolve(source).specs(),
                PROPOSE_DROPS.resolve(source), REPEATS.resolve(source), LocalScoreOptions.OVERWRITE.resolve(source),
                ScoreSettings.resolve(source));
    }
}
