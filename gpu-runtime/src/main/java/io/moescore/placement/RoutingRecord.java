package io.moescore.placement;

import java.util.Arrays;

/**
 * One row of a routing trace: the tokens each expert of one MoE layer received in one batch. The same shape holds
 * our scoring jobs' traces and SmartMoE's {@code moe_trace} files:
 * <table>
 *   <caption>What the fields hold in each source</caption>
 *   <tr><th>field</th><th>a moescore scoring job</th><th>SmartMoE ({@code table_iter{I}_rank{R}.log})</th></tr>
 *   <tr><td>executor</td><td>the Spark executor id</td><td>{@code rank R}</td></tr>
 *   <tr><td>device</td><td>the GPU ordinal the task scored on</td><td>R</td></tr>
 *   <tr><td>partition</td><td>the Spark partition</td><td>the micro-batch (0-3)</td></tr>
 *   <tr><td>batch</td><td>the batch's index in its task (the time axis)</td>
 *       <td>the iteration I (the time axis)</td></tr>
 * </table>
 *
 * @param layer  the model's layer index of the MoE layer
 * @param tokens tokens routed to each expert (a token counts once per expert it chose: top-k gives k)
 */
public record RoutingRecord(String executor, int device, int partition, long batch, int layer, long[] tokens) {
    public RoutingRecord {
        if (executor == null) {
            throw new IllegalArgumentException("routing record without an executor");
        }
        if (layer < 0) {
            throw new IllegalArgumentException("routing record of layer " + layer + ": layers are 0 or more");
        }
        if (tokens == null || tokens.length == 0) {
            throw new IllegalArgumentException("routing record of layer " + layer + " has no experts");
        }
        for (int e = 0; e < tokens.length; e++) {
            if (tokens[e] < 0) {
                throw new IllegalArgumentException("routing record of layer " + layer + ", batch " + batch
                        + ": expert " + e + " has " + tokens[e] + " tokens");
            }
        }
    }

    public int numExperts() {
        return tokens.length;
    }

    /** Tokens routed in this record, summed over its experts. */
    public long total() {
        return Arrays.stream(tokens).sum();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RoutingRecord r && executor.equals(r.executor) && device == r.device
                && partition == r.partition && batch == r.batch && layer == r.layer && Arrays.equals(tokens, r.tokens);
    }

    @Override
    public int hashCode() {
        return 31 * java.util.Objects.hash(executor, device, partition, batch, layer) + Arrays.hashCode(tokens);
    }

    @Override
    public String toString() {
        return "RoutingRecord[executor=" + executor + ", device=" + device + ", partition=" + partition + ", batch="
                + batch + ", layer=" + layer + ", tokens=" + Arrays.toString(tokens) + "]";
    }
}
