package io.moescore.placement;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A placement plan: for each MoE layer, the devices holding each expert. As JSON (what {@code moescore placement}
 * writes and the engine is to read):
 * <pre>{"devices": N, "slots": S, "replicas": R, "algorithm": "greedy",
 *  "layers": [{"layer": L, "experts": [[d, ...], ...], "max_over_mean": x, "lower_bound_over_mean": y}, ...]}</pre>
 * {@code devices} and {@code layers[].layer} / {@code .experts} are the plan; the other keys describe how it was
 * made and what it predicts (optional when read: slots and replicas are then the most the layers use).
 *
 * @param algorithm the algorithm's name, or null
 */
public record PlacementPlan(PlacementLimits limits, String algorithm, List<Layer> layers) {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * One layer's placement and what it predicts from the loads it was planned on (NaN where unknown).
     *
     * @param maxOverMean           the busiest device's tokens over the mean device's
     * @param lowerBoundOverMean    a lower bound of that over every placement within the limits
     */
    public record Layer(int layer, Placement placement, double maxOverMean, double lowerBoundOverMean) {
    }

    public PlacementPlan {
        layers = List.copyOf(layers);
        for (Layer l : layers) {
            try {
                l.placement().check(limits);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("layer " + l.layer() + ": " + e.getMessage(), e);
            }
        }
    }

    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("devices", limits.devices());
        root.put("slots", limits.slots());
        root.put("replicas", limits.replicas());
        if (algorithm != null) {
            root.put("algorithm", algorithm);
        }
        ArrayNode array = root.putArray("layers");
        for (Layer l : layers) {
            ObjectNode layer = array.addObject();
            layer.put("layer", l.layer());
            ArrayNode experts = layer.putArray("experts");
            for (int[] devices : l.placement().experts()) {
                ArrayNode d = experts.addArray();
                for (int device : devices) {
                    d.add(device);
                }
            }
            putNumber(layer, "max_over_mean", l.maxOverMean());
            putNumber(layer, "lower_bound_over_mean", l.lowerBoundOverMean());
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void putNumber(ObjectNode node, String key, double v) {
        if (Double.isFinite(v)) {
            node.put(key, v);
        }
    }

    public void write(Path file) throws IOException {
        Files.writeString(file, toJson());
    }

    /**
     * The plan in a JSON file.
     *
     * @throws IllegalArgumentException naming the file and the key or layer that is wrong
     */
    public static PlacementPlan read(Path file) {
        return PlanFile.read(file).plan();
    }

    /**
     * The plan in JSON text read from {@code where} (a file's name, for messages).
     *
     * @throws IllegalArgumentException naming {@code where} and the key or layer that is wrong
     */
    public static PlacementPlan parse(String json, String where) {
        try {
            return parse(JSON.readTree(json), where);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + " is not JSON: line " + e.getLocation().getLineNr()
                    + ", column " + e.getLocation().getColumnNr(), e);
        }
    }

    static PlacementPlan parse(JsonNode root, String where) {
        int devices = whole(root, "devices", where);
        JsonNode layersNode = root.get("layers");
        if (layersNode == null || !layersNode.isArray()) {
            throw new IllegalArgumentException(where + ": no \"layers\" array");
        }
        List<Layer> layers = new ArrayList<>();
        int mostSlots = 1;
        int mostReplicas = 0;
        for (int i = 0; i < layersNode.size(); i++) {
            JsonNode l = layersNode.get(i);
            String at = where + ": layers[" + i + "]";
            int layer = whole(l, "layer", at);
            JsonNode experts = l.get("experts");
            if (experts == null || !experts.isArray() || experts.isEmpty()) {
                throw new IllegalArgumentException(at + " (layer " + layer + ") has no \"experts\" array");
            }
            int[][] devicesOf = new int[experts.size()][];
            int[] perDevice = new int[devices];
            for (int e = 0; e < experts.size(); e++) {
                JsonNode d = experts.get(e);
                if (!d.isArray()) {
                    throw new IllegalArgumentException(at + ".experts[" + e + "] is not a list of devices");
                }
                devicesOf[e] = new int[d.size()];
                for (int j = 0; j < d.size(); j++) {
                    if (!d.get(j).canConvertToInt() || !d.get(j).isIntegralNumber() || d.get(j).asInt() < 0
                            || d.get(j).asInt() >= devices) {
                        throw new IllegalArgumentException(at + ".experts[" + e + "]: " + d.get(j)
                                + " is not a device in [0, " + devices + ")");
                    }
                    devicesOf[e][j] = d.get(j).asInt();
                    perDevice[devicesOf[e][j]]++;
                }
            }
            for (int count : perDevice) {
                mostSlots = Math.max(mostSlots, count);
            }
            mostReplicas = Math.max(mostReplicas, java.util.Arrays.stream(devicesOf).mapToInt(d -> d.length).sum()
                    - devicesOf.length);
            Placement placement;
            try {
                placement = new Placement(devicesOf);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(at + " (layer " + layer + "): " + e.getMessage(), e);
            }
            layers.add(new Layer(layer, placement, number(l, "max_over_mean"), number(l, "lower_bound_over_mean")));
        }
        int slots = root.has("slots") ? whole(root, "slots", where) : mostSlots;
        int replicas = root.has("replicas") ? whole(root, "replicas", where) : mostReplicas;
        String algorithm = root.hasNonNull("algorithm") ? root.get("algorithm").asText() : null;
        try {
            return new PlacementPlan(new PlacementLimits(devices, slots, replicas), algorithm, layers);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    private static int whole(JsonNode node, String key, String where) {
        JsonNode v = node.get(key);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
            throw new IllegalArgumentException(where + ": \"" + key + "\" must be a whole number, got " + v);
        }
        return v.asInt();
    }

    private static double number(JsonNode node, String key) {
        JsonNode v = node.get(key);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }
}
