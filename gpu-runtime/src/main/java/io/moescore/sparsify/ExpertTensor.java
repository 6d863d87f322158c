package io.moescore.sparsify;

import java.util.HashMap;
import java.util.Map;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A routed expert's projection weight, by its checkpoint name: {@code model.layers.L.(mlp|block_sparse_moe)
 * .experts.E.(gate_proj|up_proj|down_proj|w1|w3|w2).weight}. Fused expert tensors are not named so.
 */
public record ExpertTensor(String name, int layer, int expert, String projection) {
    private static final Pattern NAME = Pattern.compile(
            "model\\.layers\\.(\\d+)\\.(?:mlp|block_sparse_moe)\\.experts\\.(\\d+)\\.(gate_proj|up_proj|down_proj|w1|w3|w2)\\.weight");

    /** One expert's three weights. */
    public record Projections(ExpertTensor gate, ExpertTensor up, ExpertTensor down) {
    }

    /**
     * The experts of one layer whose three weights are all among {@code names}, by expert index (an expert missing
     * one is left out).
     */
    public static SortedMap<Integer, Projections> ofLayer(Iterable<String> names, int layer) {
        Map<Integer, Map<String, ExpertTensor>> byExpert = new TreeMap<>();
        for (String name : names) {
            parse(name).filter(e -> e.layer() == layer).ifPresent(e ->
                    byExpert.computeIfAbsent(e.expert(), k -> new HashMap<>()).put(e.role(), e));
        }
        SortedMap<Integer, Projections> out = new TreeMap<>();
        byExpert.forEach((expert, roles) -> {
            if (roles.size() == 3) {
                out.put(expert, new Projections(roles.get("gate"), roles.get("up"), roles.get("down")));
            }
        });
        return out;
    }

    /** The expert weight a tensor name stands for; empty for every other tensor. */
    public static Optional<ExpertTensor> parse(String name) {
        Matcher m = NAME.matcher(name);
        if (!m.matches()) {
            return Optional.empty();
        }
        return Optional.of(new ExpertTensor(name, Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                m.group(3)));
    }

    /** gate, up or down, whichever naming the checkpoint uses (gate_proj / w1, up_proj / w3, down_proj / w2). */
    public String role() {
        return switch (projection) {
            case "gate_proj", "w1" -> "gate";
            case "up_proj", "w3" -> "up";
            default -> "down";
        };
    }

    /**
     * The input this weight reads, which names its Hessian ({@link ExpertHessians}): gate and up share the normed
     * hidden state ("gate_up"); down reads the SwiGLU product ("down").
     */
    public String input() {
        return projection.equals("down_proj") || projection.equals("w2") ? ExpertHessians.DOWN : ExpertHessians.GATE_UP;
    }
}
