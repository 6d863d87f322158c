package io.moescore.engine;

import io.moescore.model.ModelConfig;
import io.moescore.placement.Placement;
import io.moescore.placement.PlacementPlan;
import io.moescore.placement.PlanFile;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Which devices hold each routed expert of each MoE layer where an engine spreads them over several
 * ({@code --devices}, {@code --placement}): a plan ({@code moescore placement}'s JSON) checked against the model, or
 * round-robin (expert e on device e mod N). A replicated expert's tokens are split among its devices by entry
 * index ({@link DeviceGroup}).
 *
 * @param devices how many devices
 * @param layers  per decoder layer, its experts' devices (null for a dense layer)
 * @param source  where it comes from, for messages ("round-robin", or the plan's file)
 */
public record ExpertPlacement(int devices, Placement[] layers, String source) {
    public ExpertPlacement {
        layers = layers.clone();
        for (int l = 0; l < layers.length; l++) {
            if (layers[l] == null) {
                continue;
            }
            int[][] experts = layers[l].experts();
            for (int e = 0; e < experts.length; e++) {
                if (experts[e].length == 0) {
                    throw new IllegalArgumentException(source + ": layer " + l + "'s expert " + e + " is on no device");
                }
                for (int d : experts[e]) {
                    if (d >= devices) {
                        throw new IllegalArgumentException(source + ": layer " + l + "'s expert " + e
                                + " is on device " + d + ", outside the engine's " + devices + " devices [0, "
                                + devices + ")");
                    }
                }
            }
        }
    }

    /** Expert e of every MoE layer on device e mod {@code devices}. */
    public static ExpertPlacement roundRobin(ModelConfig c, int devices) {
        requireDevices(devices);
        Placement even = Placement.of(IntStream.range(0, c.numExperts()).map(e -> e % devices).toArray());
        Placement[] layers = new Placement[c.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = c.moeLayers()[l] ? even : null;
        }
        return new ExpertPlacement(devices, layers, "round-robin");
    }

    /**
     * The placement {@code file} gives (round-robin where it is {@link PlanFile#NONE}) over {@code devices}
     * devices, checked against the model.
     *
     * @throws IllegalArgumentException naming the file and the layer: a plan for another device count, a layer that
     *                                  is not one of the model's MoE layers or is placed twice, an MoE layer the plan
     *                                  lacks, an expert count that differs from the model's
     */
    public static ExpertPlacement of(PlanFile file, ModelConfig c, int devices) {
        requireDevices(devices);
        if (file.isNone()) {
            return roundRobin(c, devices);
        }
        PlacementPlan plan = file.plan();
        String source = file.path();
        if (plan.limits().devices() != devices) {
            throw new IllegalArgumentException(source + " places experts on " + plan.limits().devices()
                    + " devices, but the engine has " + devices + " (--devices " + devices + ")");
        }
        boolean[] moe = c.moeLayers();
        Placement[] layers = new Placement[moe.length];
        for (PlacementPlan.Layer layer : plan.layers()) {
            int l = layer.layer();
            if (l >= moe.length || !moe[l]) {
                throw new IllegalArgumentException(source + ": layer " + l + " is not an MoE layer of the model (its "
                        + "MoE layers: " + moeLayers(moe) + ")");
            }
            if (layers[l] != null) {
                throw new IllegalArgumentException(source + ": layer " + l + " is placed twice");
            }
            if (layer.placement().numExperts() != c.numExperts()) {
                throw new IllegalArgumentException(source + ": layer " + l + " places "
                        + layer.placement().numExperts() + " experts, but the model's MoE layers have "
                        + c.numExperts());
            }
            layers[l] = layer.placement();
        }
        List<Integer> missing = new ArrayList<>();
        for (int l = 0; l < moe.length; l++) {
            if (moe[l] && layers[l] == null) {
                missing.add(l);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(source + " places " + plan.layers().size() + " layers, but the model "
                    + "has " + moeLayers(moe).size() + " MoE layers: no placement for layer" + (missing.size() > 1
                    ? "s " : " ") + missing.toString().replaceAll("[\\[\\]]", ""));
        }
        return new ExpertPlacement(devices, layers, source);
    }

    private static void requireDevices(int devices) {
        if (devices < 1) {
            throw new IllegalArgumentException("--devices must be at least 1, got " + devices);
        }
    }

    private static List<Integer> moeLayers(boolean[] moe) {
        return IntStream.range(0, moe.length).filter(l -> moe[l]).boxed().toList();
    }

    /** The devices holding layer {@code layer}'s expert {@code expert}, ascending. */
    public int[] devicesOf(int layer, int expert) {
        return layers[layer].experts()[expert].clone();
    }

    /** The experts of layer {@code layer} that device {@code device} holds, ascending. */
    public int[] expertsOn(int layer, int device) {
        int[][] experts = layers[layer].experts();
        return IntStream.range(0, experts.length).filter(e -> layers[layer].holds(device, e)).toArray();
    }

    @Override
    public Placement[] layers() {
        return layers.clone();
    }

    /** "round-robin over 2 devices", "plan.json over 3 devices (16 replicas in 4 MoE layers)". */
    public String describe() {
        int copies = 0;
        int experts = 0;
        int moe = 0;
        for (Placement p : layers) {
            if (p != null) {
                copies += Arrays.stream(p.experts()).mapToInt(d -> d.length).sum();
                experts += p.numExperts();
                moe++;
            }
        }
        return source + " over " + devices + " devices" + (copies > experts ? " (" + (copies - experts)
                + " replicas in " + moe + " MoE layers)" : "");
    }
}
