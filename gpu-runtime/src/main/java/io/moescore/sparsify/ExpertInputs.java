package io.moescore.sparsify;

import io.moescore.engine.RoutedInputs;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The normed hidden states routed to each expert of some MoE layers during a calibration pass, per calibration
 * sequence ({@link Chunk}), at most {@code maxTokens} per expert (the first ones seen): what
 * {@link ExpertReconstruction} tunes on. An expert's inputs are its chunks in sequence order, cut at maxTokens
 * ({@link #assemble}), so that they do not depend on how the sequences were batched or partitioned: the Spark job
 * collects chunks on many executors and assembles each expert's on one. Memory: maxTokens x hidden x 4 bytes per
 * expert (the demo model, all 8 experts at 16384 tokens: 100 MB; a Mixtral-8x7B layer: 2.1 GB).
 */
public final class ExpertInputs implements RoutedInputs {
    /**
     * One calibration sequence's tokens routed to one expert, in their order in the sequence.
     *
     * @param sequence the sequence's place in the calibration data (any increasing numbering)
     * @param rows     [tokens, hidden]
     */
    public record Chunk(int layer, int expert, long sequence, int tokens, float[] rows) implements Serializable {
    }

    private record Slot(int layer, int expert) {
    }

    private final int maxTokens;
    private final Set<Integer> layers;
    private final Map<Slot, List<Chunk>> chunks = new HashMap<>();
    private final Map<Slot, Integer> counts = new HashMap<>();
    private long[] names;
    private long[] passIds;
    private int[] offsets;
    private long nextId;
    private int hidden;

    /** Collects the experts of these MoE layers. */
    public ExpertInputs(int maxTokens, int... layers) {
        this.maxTokens = maxTokens;
        this.layers = IntStream.of(layers).boxed().collect(Collectors.toUnmodifiableSet());
    }

    /**
     * Numbers the sequences of the next scored batch (by batch index); without, sequences are numbered in the order
     * the forward passes show them.
     */
    public void name(long[] sequenceIds) {
        this.names = sequenceIds.clone();
    }

    @Override
    public void sequences(int[] batchIndices, int[] offsets) {
        this.offsets = offsets;
        passIds = new long[batchIndices.length];
        for (int i = 0; i < batchIndices.length; i++) {
            passIds[i] = names != null ? names[batchIndices[i]] : nextId + batchIndices[i];
        }
        if (names == null && batchIndices.length > 0) {
            nextId += batchIndices[batchIndices.length - 1] + 1;
        }
        names = null;
    }

    @Override
    public void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn) {
        if (!layers.contains(layer) || rows.length == 0) {
            return;
        }
        this.hidden = hidden;
        Slot slot = new Slot(layer, expert);
        SequenceGroups groups = SequenceGroups.of(rows, offsets);
        for (int g = 0; g < groups.groups(); g++) {
            int have = counts.getOrDefault(slot, 0);
            int take = Math.min(groups.size(g), maxTokens - have);
            if (take <= 0) {
                return;
            }
            float[] gathered = groups.gather(g, x, rows, hidden);
            long id = passIds == null ? nextId++ : passIds[groups.sequence()[g]];
            chunks.computeIfAbsent(slot, k -> new ArrayList<>()).add(new Chunk(layer, expert, id, take,
                    take == groups.size(g) ? gathered : java.util.Arrays.copyOf(gathered, take * hidden)));
            counts.put(slot, have + take);
        }
    }

    /** Every chunk collected, in no particular order. */
    public List<Chunk> chunks() {
        return chunks.values().stream().flatMap(List::stream).toList();
    }

    /** Tokens collected for an expert (0 where none reached it). */
    int tokens(int layer, int expert) {
        return counts.getOrDefault(new Slot(layer, expert), 0);
    }

    /** The expert's inputs [tokens(layer, expert), hidden] ({@link #assemble}). */
    float[] rows(int layer, int expert) {
        return assemble(chunks.getOrDefault(new Slot(layer, expert), List.of()), maxTokens, hidden);
    }

    /**
     * One expert's inputs from its chunks (collected anywhere, in any order): the chunks' rows in sequence order,
     * the first {@code maxTokens} of them, as [min(tokens, maxTokens), hidden].
     */
    public static float[] assemble(List<Chunk> chunks, int maxTokens, int hidden) {
        List<Chunk> sorted = new ArrayList<>(chunks);
        sorted.sort(Comparator.comparingLong(Chunk::sequence));
        int total = Math.min(maxTokens, sorted.stream().mapToInt(Chunk::tokens).sum());
        float[] out = new float[total * hidden];
        int at = 0;
        for (Chunk c : sorted) {
            int take = Math.min(c.tokens(), total - at);
            if (take <= 0) {
                break;
            }
            System.arraycopy(c.rows(), 0, out, at * hidden, take * hidden);
            at += take;
        }
        return out;
    }

    /** Tokens of {@link #assemble}'s result. */
    public static int tokens(List<Chunk> chunks, int maxTokens) {
        return Math.min(maxTokens, chunks.stream().mapToInt(Chunk::tokens).sum());
    }
}
