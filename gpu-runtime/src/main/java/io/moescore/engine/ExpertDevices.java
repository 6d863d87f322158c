package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Tensor;
import io.moescore.routing.ExpertRouting;

/**
 * Where a model's routed experts are placed and run: on the engine's one backend ({@link #on}), or spread over
 * several devices as a placement says ({@link DeviceGroup}). {@link ModelWeights} and {@link ExpertStore} place
 * them through it; the engine runs each MoE layer's experts through it.
 */
interface ExpertDevices extends AutoCloseable {
    /** Places layer {@code layer}'s routed experts; the caller owns the result. */
    ExpertWeights place(int layer, HostExperts experts);

    /**
     * out = the layer's experts on x as routed ({@link Backend#experts}), each expert's inputs shown to {@code seen}
     * where not null; {@code x}, {@code routing} and {@code out} live on the engine's backend.
     */
    void run(int layer, Tensor x, ExpertRouting routing, ExpertWeights experts, Tensor out,
             ExpertInputObserver seen);

    /** Whether the experts are spread over devices as a placement says ({@link DeviceGroup}), not on one backend. */
    default boolean spread() {
        return false;
    }

    /** The routed entries (token-expert pairs) each device has computed so far; empty where nothing is spread. */
    default long[] entriesPerDevice() {
        return new long[0];
    }

    /** Where the experts run, for logs: the backend, or the placement and each device's entries so far. */
    String describe();

    @Override
    default void close() {
    }

    /** Every expert on {@code backend}, run by its {@link Backend#experts}. */
    static ExpertDevices on(Backend backend) {
        return new ExpertDevices() {
            @Override
            public ExpertWeights place(int layer, HostExperts experts) {
                return experts.place(backend);
            }

            @Override
            public void run(int layer, Tensor x, ExpertRouting routing, ExpertWeights experts, Tensor out,
                            ExpertInputObserver seen) {
                backend.experts(x, routing, experts, out, seen);
            }

            @Override
            public String describe() {
                return "routed experts on " + backend.deviceName();
            }
        };
    }
}
