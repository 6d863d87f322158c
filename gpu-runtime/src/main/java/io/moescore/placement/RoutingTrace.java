package io.moescore.placement;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A routing trace: {@link RoutingRecord}s of one model (every record has the same number of experts), read from one
 * source or several. What placement planning and load statistics read, as {@link LoadSeries} per layer.
 */
public final class RoutingTrace {
    private final String source;
    private final int numExperts;
    private final List<RoutingRecord> records;

    private RoutingTrace(String source, int numExperts, List<RoutingRecord> records) {
        this.source = source;
        this.numExperts = numExperts;
        this.records = records;
    }

    /**
     * The trace of these records.
     *
     * @param source what they were read from, for messages
     * @throws IllegalArgumentException naming the source when there are none or their expert counts differ
     */
    public static RoutingTrace of(String source, List<RoutingRecord> records) {
        if (records.isEmpty()) {
            throw new IllegalArgumentException(source + " holds no routing records");
        }
        int experts = records.get(0).numExperts();
        for (RoutingRecord r : records) {
            if (r.numExperts() != experts) {
                throw new IllegalArgumentException(source + ": layer " + r.layer() + " of batch " + r.batch()
                        + " (" + r.executor() + ") has " + r.numExperts() + " experts, the first record " + experts);
            }
        }
        return new RoutingTrace(source, experts, List.copyOf(records));
    }

    /** Several traces of one model as one (e.g. every path given to a command). */
    public static RoutingTrace concat(List<RoutingTrace> traces) {
        if (traces.isEmpty()) {
            throw new IllegalArgumentException("no routing trace given");
        }
        List<RoutingRecord> all = new ArrayList<>();
        List<String> sources = new ArrayList<>();
        for (RoutingTrace t : traces) {
            all.addAll(t.records);
            sources.add(t.source);
        }
        return of(String.join(", ", sources), all);
    }

    public String source() {
        return source;
    }

    public int numExperts() {
        return numExperts;
    }

    public List<RoutingRecord> records() {
        return records;
    }

    /** The MoE layers the trace covers, in increasing order. */
    public int[] layers() {
        return records.stream().mapToInt(RoutingRecord::layer).distinct().sorted().toArray();
    }

    /** Per layer, in layer order: its loads per step. A step where a layer has no record counts zero tokens. */
    public List<LoadSeries> series() {
        long[] steps = new TreeSet<>(records.stream().map(RoutingRecord::batch).toList()).stream()
                .mapToLong(Long::longValue).toArray();
        Map<Long, Integer> stepIndex = new TreeMap<>();
        for (int s = 0; s < steps.length; s++) {
            stepIndex.put(steps[s], s);
        }
        Map<Integer, long[][]> byLayer = new TreeMap<>();
        for (RoutingRecord r : records) {
            long[] row = byLayer.computeIfAbsent(r.layer(), l -> new long[steps.length][numExperts])[
                    stepIndex.get(r.batch())];
            for (int e = 0; e < numExperts; e++) {
                row[e] += r.tokens()[e];
            }
        }
        List<LoadSeries> out = new ArrayList<>();
        byLayer.forEach((layer, counts) -> out.add(new LoadSeries(layer, steps, counts)));
        return out;
    }
}
