package io.moescore.routing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.model.GroupRouting;
import io.moescore.model.ModelConfig;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Which router scores use ({@code --routing SPEC}), parsed once and checked; {@link #router} then makes each MoE
 * layer's router from the model's own. The specs (formulas in each router's class comment):
 * <ul>
 * <li>{@code model}: the model's own router, exactly (the default);</li>
 * <li>{@code top-k:K}: the model's router with k = K ({@link TopKSoftmaxRouter}, or DeepSeek's
 *     {@link GroupLimitedSigmoidRouter}), its normalisation unchanged;</li>
 * <li>{@code top-p:P} and {@code top-p:P:MAXK}: {@link TopPRouter}, at most the model's k experts (or MAXK);</li>
 * <li>{@code sigmoid:T}, {@code softmax:T}, {@code quadratic:T}, {@code pioneer:T} (T in [0, 1), 0.5 when left out)
 *     and {@code sparsemax}: MiSTer's threshold gates ({@link ThresholdRouter});</li>
 * <li>{@code batch-top-k:K} and {@code batch-top-k:K:B}: {@link BatchTopKRouter} over the batch, or per block of B
 *     token rows;</li>
 * <li>{@code drop-experts:FILE}: {@link DropExpertsRouter} around the model's router, with each layer's removed
 *     experts read from FILE (read once, here): JSON, {@code {"LAYER": [E, ...], ...}} or {@code [[E, ...], ...]}
 *     (one list per layer from layer 0), or text, one {@code LAYER: E E ...} line per layer (commas or spaces
 *     between experts, {@code #} starts a comment).</li>
 * </ul>
 * Each variant follows the model's norm_topk_prob (renormalise the chosen gates) where it has a softmax top-k; the
 * threshold gates use the raw probabilities, as MiSTer defines them.
 *
 * @param kind    which variant
 * @param gate    the threshold gate (THRESHOLD only)
 * @param k       top-k's and batch-top-k's K; top-p's MAXK (0: the model's k)
 * @param value   top-p's P or a threshold gate's T
 * @param block   batch-top-k's B (0: the whole batch)
 * @param file    drop-experts' FILE as given
 * @param dropped drop-experts' removed experts by layer
 */
public record RoutingSpec(Kind kind, ThresholdRouter.Gate gate, int k, float value, int block, String file,
                          Map<Integer, List<Integer>> dropped) implements Serializable {
    /** The variants. */
    public enum Kind { MODEL, TOP_K, TOP_P, THRESHOLD, BATCH_TOP_K, DROP_EXPERTS }

    /** The model's own router: the default. */
    public static final RoutingSpec MODEL = new RoutingSpec(Kind.MODEL, null, 0, 0, 0, null, Map.of());

    /** A threshold gate's T when the spec leaves it out (MiSTer's default). */
    public static final float DEFAULT_THRESHOLD = 0.5f;

    public RoutingSpec {
        dropped = Map.copyOf(dropped);
    }

    /**
     * Reads a spec; the message of an error names the part that is wrong and what was expected (the caller adds
     * the option's name).
     */
    public static RoutingSpec parse(String spec) {
        String text = spec.trim();
        String[] parts = text.split(":", -1);
        String name = parts[0].toLowerCase(Locale.ROOT);
        switch (name) {
            case "model" -> {
                arguments(text, parts, 0, 0, "model");
                return MODEL;
            }
            case "top-k" -> {
                arguments(text, parts, 1, 1, "top-k:K");
                return new RoutingSpec(Kind.TOP_K, null, whole(text, "K", parts[1]), 0, 0, null, Map.of());
            }
            case "top-p" -> {
                arguments(text, parts, 1, 2, "top-p:P or top-p:P:MAXK");
                float p = number(text, "P", parts[1]);
                if (!(p > 0 && p <= 1)) {
                    throw new IllegalArgumentException("'" + text + "': P must lie in (0, 1], got " + parts[1]);
                }
                int maxK = parts.length > 2 ? whole(text, "MAXK", parts[2]) : 0;
                return new RoutingSpec(Kind.TOP_P, null, maxK, p, 0, null, Map.of());
            }
            case "sigmoid", "softmax", "quadratic", "pioneer" -> {
                arguments(text, parts, 0, 1, name + ":T");
                float t = parts.length > 1 ? number(text, "T", parts[1]) : DEFAULT_THRESHOLD;
                if (!(t >= 0 && t < 1)) {
                    throw new IllegalArgumentException("'" + text + "': T must lie in [0, 1), got " + parts[1]);
                }
                return new RoutingSpec(Kind.THRESHOLD, ThresholdRouter.Gate.valueOf(name.toUpperCase(Locale.ROOT)),
                        0, t, 0, null, Map.of());
            }
            case "sparsemax" -> {
                arguments(text, parts, 0, 0, "sparsemax");
                return new RoutingSpec(Kind.THRESHOLD, ThresholdRouter.Gate.SPARSEMAX, 0, 0, 0, null, Map.of());
            }
            case "batch-top-k" -> {
                arguments(text, parts, 1, 2, "batch-top-k:K or batch-top-k:K:B");
                int k = whole(text, "K", parts[1]);
                int b = parts.length > 2 ? whole(text, "B", parts[2]) : 0;
                return new RoutingSpec(Kind.BATCH_TOP_K, null, k, 0, b, null, Map.of());
            }
            case "drop-experts" -> {
                String file = text.substring(text.indexOf(':') + 1);
                if (parts.length < 2 || file.isBlank()) {
                    throw new IllegalArgumentException("'" + text + "': expected drop-experts:FILE");
                }
                return new RoutingSpec(Kind.DROP_EXPERTS, null, 0, 0, 0, file, readDropped(Path.of(file)));
            }
            default -> throw new IllegalArgumentException("'" + text + "': unknown router '" + parts[0]
                    + "', expected model, top-k:K, top-p:P[:MAXK], sigmoid:T, softmax:T, sparsemax, quadratic:T, "
                    + "pioneer:T, batch-top-k:K[:B] or drop-experts:FILE");
        }
    }

    private static void arguments(String text, String[] parts, int min, int max, String form) {
        int n = parts.length - 1;
        if (n < min || n > max) {
            throw new IllegalArgumentException("'" + text + "': expected " + form);
        }
    }

    private static int whole(String text, String what, String part) {
        try {
            int v = Integer.parseInt(part.trim());
            if (v >= 1) {
                return v;
            }
        } catch (NumberFormatException e) {
            // named below
        }
        throw new IllegalArgumentException("'" + text + "': " + what + " must be a whole number of at least 1, got '"
                + part + "'");
    }

    private static float number(String text, String what, String part) {
        try {
            return Float.parseFloat(part.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "': " + what + " '" + part + "' is not a number");
        }
    }

    /** The removed experts by layer, from a JSON or text file (see the class comment). */
    static Map<Integer, List<Integer>> readDropped(Path file) {
        String content;
        try {
            content = Files.readString(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("drop-experts file " + file + " cannot be read: " + e, e);
        }
        Map<Integer, List<Integer>> byLayer = new TreeMap<>();
        String trimmed = content.strip();
        if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(trimmed);
            } catch (IOException e) {
                throw new IllegalArgumentException("drop-experts file " + file + " is not valid JSON: "
                        + e.getMessage());
            }
            if (root.isArray()) {
                for (int l = 0; l < root.size(); l++) {
                    byLayer.put(l, experts(file, "layer " + l, root.get(l)));
                }
            } else {
                for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> entry = it.next();
                    put(file, byLayer, layer(file, "key '" + entry.getKey() + "'", entry.getKey()),
                            experts(file, "layer " + entry.getKey(), entry.getValue()));
                }
            }
        } else {
            String[] lines = content.split("\\R");
            for (int i = 0; i < lines.length; i++) {
                String line = lines[i].replaceAll("#.*", "").strip();
                if (line.isEmpty()) {
                    continue;
                }
                String where = "line " + (i + 1);
                int colon = line.indexOf(':');
                if (colon < 0) {
                    throw new IllegalArgumentException("drop-experts file " + file + " " + where + " '" + lines[i]
                            + "': expected LAYER: E E ...");
                }
                List<Integer> experts = new ArrayList<>();
                for (String e : line.substring(colon + 1).trim().split("[,\\s]+")) {
                    if (!e.isEmpty()) {
                        experts.add(index(file, where, e));
                    }
                }
                put(file, byLayer, layer(file, where, line.substring(0, colon).trim()), List.copyOf(experts));
            }
        }
        return byLayer;
    }

    private static void put(Path file, Map<Integer, List<Integer>> byLayer, int layer, List<Integer> experts) {
        if (byLayer.put(layer, experts) != null) {
            throw new IllegalArgumentException("drop-experts file " + file + " lists layer " + layer + " twice");
        }
    }

    private static int layer(Path file, String where, String text) {
        return index(file, where, text);
    }

    private static int index(Path file, String where, String text) {
        try {
            int v = Integer.parseInt(text);
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException e) {
            // named below
        }
        throw new IllegalArgumentException("drop-experts file " + file + " " + where + ": '" + text
                + "' is not a layer or expert index (a whole number from 0)");
    }

    private static List<Integer> experts(Path file, String where, JsonNode node) {
        if (!node.isArray()) {
            throw new IllegalArgumentException("drop-experts file " + file + " " + where + ": expected a list of "
                    + "expert indices, got " + node);
        }
        List<Integer> experts = new ArrayList<>();
        for (JsonNode e : node) {
            if (!e.canConvertToInt() || !e.isIntegralNumber()) {
                throw new IllegalArgumentException("drop-experts file " + file + " " + where + ": '" + e
                        + "' is not an expert index");
            }
            experts.add(index(file, where, e.asText()));
        }
        return List.copyOf(experts);
    }

    /**
     * The model's own router of a MoE layer: softmax top-k (norm_topk_prob), or DeepSeek's group-limited sigmoid
     * router with the layer's e_score_correction_bias ({@code correctionBias}, one per expert).
     */
    public static Router modelRouter(ModelConfig c, float[] correctionBias) {
        GroupRouting g = c.groupRouting();
        return g == null ? new TopKSoftmaxRouter(c.topK(), c.normalizeTopK())
                : new GroupLimitedSigmoidRouter(c.topK(), g.groups(), g.topkGroups(), c.normalizeTopK(),
                g.scalingFactor(), correctionBias);
    }

    /**
     * The router of every layer of a model of this config under this spec (null for dense layers), before its
     * weights are read: the correction biases of group routing are zero here, which changes no check.
     *
     * @throws IllegalArgumentException naming --routing and what the model lacks for it
     */
    public List<Router> routers(ModelConfig c) {
        checkLayers(c.moeLayers());
        List<Router> routers = new ArrayList<>();
        for (int l = 0; l < c.moeLayers().length; l++) {
            routers.add(c.moeLayers()[l] ? router(modelRouter(c, new float[c.numExperts()]), l, c.numExperts())
                    : null);
        }
        return routers;
    }

    /** Whether a token's scores depend on every row it is batched with (batch-top-k without a block). */
    public boolean dependsOnBatch() {
        return kind == Kind.BATCH_TOP_K && block == 0;
    }

    /** Whether this is the model's own router. */
    public boolean isModel() {
        return kind == Kind.MODEL;
    }

    /**
     * The router of MoE layer {@code layer} under this spec, from the model's own router of that layer.
     *
     * @throws IllegalArgumentException naming the spec and what the model lacks for it (a K above its experts, a
     *                                  variant its router family has no meaning for, a drop list leaving too few)
     */
    public Router router(Router own, int layer, int numExperts) {
        int modelK = own instanceof TopKSoftmaxRouter t ? t.k()
                : own instanceof GroupLimitedSigmoidRouter g ? g.k() : 0;
        if (kind == Kind.MODEL) {
            return own;
        }
        if (kind == Kind.THRESHOLD) {
            return new ThresholdRouter(gate, value);
        }
        if ((kind == Kind.TOP_K || kind == Kind.BATCH_TOP_K || kind == Kind.TOP_P) && k > numExperts) {
            throw new IllegalArgumentException("--routing " + this + ": " + k + " is more than the model's "
                    + numExperts + " experts");
        }
        if (own instanceof GroupLimitedSigmoidRouter g) {
            if (kind == Kind.TOP_K) {
                if (k > g.topkGroups() * (numExperts / g.groups())) {
                    throw new IllegalArgumentException("--routing " + this + ": the model's group-limited router "
                            + "reaches only " + g.topkGroups() * (numExperts / g.groups()) + " experts");
                }
                return new GroupLimitedSigmoidRouter(k, g.groups(), g.topkGroups(), g.renormalize(),
                        g.scalingFactor(), g.correctionBias());
            }
            throw new IllegalArgumentException("--routing " + this + " needs a softmax top-k router; this model "
                    + "routes by group-limited sigmoid (DeepSeek-V3): use model, top-k:K or a threshold gate");
        }
        if (!(own instanceof TopKSoftmaxRouter softmax)) {
            throw new IllegalArgumentException("--routing " + this + " cannot replace " + own);
        }
        return switch (kind) {
            case TOP_K -> new TopKSoftmaxRouter(k, softmax.renormalize());
            case TOP_P -> new TopPRouter(value, k == 0 ? modelK : k, softmax.renormalize());
            case BATCH_TOP_K -> new BatchTopKRouter(k, block, softmax.renormalize());
            case DROP_EXPERTS -> new DropExpertsRouter(own, droppedMask(layer, numExperts, modelK));
            default -> throw new IllegalStateException(kind.name());
        };
    }

    private boolean[] droppedMask(int layer, int numExperts, int modelK) {
        boolean[] mask = new boolean[numExperts];
        for (int e : dropped.getOrDefault(layer, List.of())) {
            if (e >= numExperts) {
                throw new IllegalArgumentException("--routing " + this + ": layer " + layer + " drops expert " + e
                        + ", but the model has experts 0.." + (numExperts - 1));
            }
            mask[e] = true;
        }
        int left = numExperts - new TreeSet<>(dropped.getOrDefault(layer, List.of())).size();
        if (left < modelK) {
            throw new IllegalArgumentException("--routing " + this + ": layer " + layer + " keeps " + left
                    + " experts, fewer than the " + modelK + " each token needs");
        }
        return mask;
    }

    /**
     * Checks that the drop list names only MoE layers ({@code moeLayers[l]}: layer l has routed experts).
     *
     * @throws IllegalArgumentException naming the first layer that is not one
     */
    public void checkLayers(boolean[] moeLayers) {
        for (int layer : dropped.keySet()) {
            if (layer >= moeLayers.length || !moeLayers[layer]) {
                throw new IllegalArgumentException("--routing " + this + " drops experts of layer " + layer
                        + ", which " + (layer >= moeLayers.length ? "the model (" + moeLayers.length
                        + " layers) lacks" : "has no routed experts"));
            }
        }
    }

    /** The spec as a user writes it ({@code top-p:0.9}). */
    @Override
    public String toString() {
        return switch (kind) {
            case MODEL -> "model";
            case TOP_K -> "top-k:" + k;
            case TOP_P -> "top-p:" + value + (k == 0 ? "" : ":" + k);
            case THRESHOLD -> gate == ThresholdRouter.Gate.SPARSEMAX ? "sparsemax" : gate.userName() + ":" + value;
            case BATCH_TOP_K -> "batch-top-k:" + k + (block == 0 ? "" : ":" + block);
            case DROP_EXPERTS -> "drop-experts:" + file;
        };
    }
}
