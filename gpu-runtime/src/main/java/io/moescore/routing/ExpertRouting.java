package io.moescore.routing;

/**
 * The router's decision for one layer and batch, in the form experts consume it: per expert, the list of
 * token rows routed to it with the gate weight of each. This is the activation-sparse format: experts read
 * their tokens by index from the shared hidden-state matrix, never from a gathered copy. Backends keep it
 * where they compute (host arrays here, device memory for CUDA).
 */
public interface ExpertRouting extends AutoCloseable {
    int numExperts();

    /** How many tokens each expert got (for load statistics). */
    int[] tokensPerExpert();

    /**
     * This routing in host arrays (per-token routing for a trace); only called when a caller asks for it. Backends
     * that keep routing on the device and cannot copy it refuse.
     *
     * @throws UnsupportedOperationException naming the backend's routing
     */
    default HostExpertRouting toHost() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot copy its routing to the host "
                + "(per-token routing, --routing-trace-tokens)");
    }

    @Override
    void close();
}
