package io.moescore.backend;

import java.util.ArrayList;
import java.util.List;

/**
 * The backends an engine computes on, device 0 first: one, or several that an engine spreads each MoE layer's
 * experts over ({@code --devices}; on the CPU backend, logical devices splitting its threads). Device 0 runs
 * everything but the routed experts. Whoever opens them owns them: {@link #close} closes every one.
 */
public final class Devices implements AutoCloseable {
    private final List<Backend> backends;

    private Devices(List<Backend> backends) {
        if (backends.isEmpty()) {
            throw new IllegalArgumentException("an engine needs at least one device");
        }
        this.backends = List.copyOf(backends);
    }

    /** These backends, device 0 first. */
    public static Devices of(List<Backend> backends) {
        return new Devices(backends);
    }

    /** One backend as the only device. */
    public static Devices of(Backend backend) {
        return new Devices(List.of(backend));
    }

    public int size() {
        return backends.size();
    }

    public Backend get(int device) {
        return backends.get(device);
    }

    /** Every device, device 0 first. */
    public List<Backend> all() {
        return backends;
    }

    /** Device 0: the one that holds the non-expert weights and the activations. */
    public Backend primary() {
        return backends.get(0);
    }

    /** "CPU (2 threads)", or "2 devices: CPU (1 threads), CPU (1 threads)". */
    public String describe() {
        if (backends.size() == 1) {
            return primary().deviceName();
        }
        List<String> names = new ArrayList<>();
        backends.forEach(b -> names.add(b.deviceName()));
        return backends.size() + " devices: " + String.join(", ", names);
    }

    /** Closes every backend, the first failure rethrown after the others are closed. */
    @Override
    public void close() {
        RuntimeException first = null;
        for (Backend b : backends) {
            try {
                b.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
