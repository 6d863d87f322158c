package io.moescore.engine;

import io.moescore.backend.ExpertWeights;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Where each MoE layer's routed experts come from during a forward ({@link ExpertResidency}): a resident layer's
 * are the ones {@link ModelWeights} placed at load; a streamed layer's are placed from host memory
 * ({@link HostExperts}) into one of {@link ExpertResidency#SLOTS} staging slots of the forward's {@link Pass} and
 * released once the layer's experts have run. Uploads are counted (number and bytes as placed) for tests and
 * summaries (the layer's experts once, also where a placement over several devices replicates some).
 *
 * <p>The order a forward follows: {@code get(l)} (the layer's experts, uploaded now unless prefetched),
 * {@code prefetchNext(l)} (the next streamed layer's upload, into the other slot, before layer l computes),
 * the experts of layer l, {@code release(l)}. On the CPU backend each upload runs when asked, so the prefetch only
 * fixes the order; a backend with a copy stream can make {@link HostExperts#place} asynchronous behind the same
 * calls (not done yet: the CUDA backend's upload is synchronous).
 *
 * <p>Thread-safe: each forward takes its own {@link #pass()}, so concurrent forwards each hold their own slots (the
 * cap counts one forward's).
 */
public final class ExpertStore {
    private final ExpertDevices devices;
    private final ModelWeights weights;
    /** Bytes one routed-expert weight takes as placed (the plan's: 2:4 packed below one weight's dense bytes). */
    private final double bytesPerWeight;
    private final AtomicLong uploads = new AtomicLong();
    private final AtomicLong uploadedBytes = new AtomicLong();

    ExpertStore(ExpertDevices devices, ModelWeights weights, long routedExpertWeights) {
        this.devices = devices;
        this.weights = weights;
        MemoryPlan plan = weights.residency().plan();
        this.bytesPerWeight = plan == null || routedExpertWeights == 0 ? 0
                : plan.expertBytes() / (double) routedExpertWeights;
    }

    /** Where the routed experts run: one backend, or the placement over several devices and each one's entries. */
    public String describeDevices() {
        return devices.describe();
    }

    /** Whether the routed experts are spread over devices as a placement says (EngineLoad decided it). */
    public boolean spread() {
        return devices.spread();
    }

    /** The routing entries (token-expert pairs) each device has computed so far; empty on one device. */
    public long[] entriesPerDevice() {
        return devices.entriesPerDevice();
    }

    /** The experts of one forward; close it when the forward ends. */
    public Pass pass() {
        return new Pass();
    }

    /** Streamed layers uploaded so far, over every forward. */
    public long uploads() {
        return uploads.get();
    }

    /** Bytes uploaded so far (as placed), over every forward. */
    public long uploadedBytes() {
        return uploadedBytes.get();
    }

    /** One forward's staging slots: at most {@link ExpertResidency#SLOTS} streamed layers placed at once. */
    public final class Pass implements AutoCloseable {
        private final Map<Integer, ExpertWeights> staged = new LinkedHashMap<>();

        /** Layer {@code l}'s routed experts: resident, or staged (uploaded now unless prefetched). */
        public ExpertWeights get(int l) {
            if (!weights.residency().streams(l)) {
                return weights.layers().get(l).experts();
            }
            prefetch(l);
            return staged.get(l);
        }

        /** Uploads layer {@code l}'s experts into a free slot, unless resident or already staged. */
        public void prefetch(int l) {
            if (!weights.residency().streams(l) || staged.containsKey(l)) {
                return;
            }
            if (staged.size() >= ExpertResidency.SLOTS) {
                throw new IllegalStateException("layer " + l + "'s experts need a staging slot while layers "
                        + staged.keySet() + " hold both: release one first");
            }
            HostExperts host = weights.streamedExperts(l);
            staged.put(l, devices.place(l, host));
            uploads.incrementAndGet();
            uploadedBytes.addAndGet(Math.round(host.weights() * bytesPerWeight));
        }

        /** Prefetches the first streamed layer after {@code l}, if any. */
        public void prefetchNext(int l) {
            for (int next = l + 1; next < weights.layers().size(); next++) {
                if (weights.residency().streams(next)) {
                    prefetch(next);
                    return;
                }
            }
        }

        /** Frees layer {@code l}'s slot (nothing for a resident layer). */
        public void release(int l) {
            ExpertWeights w = staged.remove(l);
            if (w != null) {
                w.close();
            }
        }

        /** Frees every slot still held (a forward that failed midway). */
        @Override
        public void close() {
            for (ExpertWeights w : staged.values()) {
                w.close();
            }
            staged.clear();
        }
    }
}
