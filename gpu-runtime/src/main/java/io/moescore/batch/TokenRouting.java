package io.moescore.batch;

import java.util.Arrays;
import java.util.Collections;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Each token's chosen experts and gate weights, per sequence of a scored batch and MoE layer: what a caller asks for
 * with {@code ScoreOptions#withTokenRouting} (nothing is copied otherwise). Sequences the engine refused have none.
 * Not thread-safe.
 */
public final class TokenRouting {
    /**
     * One sequence's routing at one layer: token {@code t} (its position) chose {@code experts[offsets[t] ..
     * offsets[t+1]-1]} (ascending expert ids) with the gate weights at the same indices of {@code gates}.
     */
    public record Choices(int[] offsets, int[] experts, float[] gates) {
        public Choices {
            if (offsets.length < 1 || offsets[0] != 0 || offsets[offsets.length - 1] != experts.length
                    || experts.length != gates.length) {
                throw new IllegalArgumentException("inconsistent token routing arrays");
            }
        }

        public int tokens() {
            return offsets.length - 1;
        }

        /** Tokens {@code from .. to - 1} of these choices, positions counted from {@code from}. */
        public Choices slice(int from, int to) {
            int[] o = new int[to - from + 1];
            for (int i = 0; i < o.length; i++) {
                o[i] = offsets[from + i] - offsets[from];
            }
            return new Choices(o, Arrays.copyOfRange(experts, offsets[from], offsets[to]),
                    Arrays.copyOfRange(gates, offsets[from], offsets[to]));
        }
    }

    private final SortedMap<Integer, SortedMap<Integer, Choices>> bySequence = new TreeMap<>();

    /** Records sequence {@code sequence}'s routing at {@code layer}. */
    public void add(int sequence, int layer, Choices choices) {
        bySequence.computeIfAbsent(sequence, s -> new TreeMap<>()).put(layer, choices);
    }

    /** Adds every sequence and layer of {@code other} (replacing what this holds of them). */
    public void add(TokenRouting other) {
        other.bySequence.forEach((s, layers) -> layers.forEach((l, c) -> add(s, l, c)));
    }

    /** The sequences with routing, ascending. */
    public java.util.Set<Integer> sequences() {
        return Collections.unmodifiableSet(bySequence.keySet());
    }

    /** Sequence {@code sequence}'s routing by MoE layer (ascending; empty where it has none). */
    public SortedMap<Integer, Choices> layers(int sequence) {
        return Collections.unmodifiableSortedMap(bySequence.getOrDefault(sequence, new TreeMap<>()));
    }
}
