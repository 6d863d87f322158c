package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.Devices;
import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Tensor;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Routed experts spread over several devices as an {@link ExpertPlacement} says (issue 30, several devices in one
 * executor). Each device holds its experts of every MoE layer; device 0 holds everything else and routes. Per MoE
 * layer:
 * <ol>
 *   <li>the routing and the layer's input come to the host from device 0;</li>
 *   <li>each routing entry (expert, token) goes to a device holding its expert: a replicated expert's entries are
 *       split among its devices in order, the first count / copies to its first device and so on;</li>
 *   <li>each device gets the input rows of its entries, one row per entry, with a routing over its own experts
 *       ({@link Backend#expertRouting}), and computes them with its {@link Backend#experts}, all devices at once:
 *       with one entry per row, its output row is that entry's gate-weighted expert output;</li>
 *   <li>the outputs come back to the host, and each token sums its entries in the routing's order (expert order),
 *       from zero, as the CPU backend's experts combine them; the sum goes to device 0.</li>
 * </ol>
 * So on the CPU backend, whose expert output rows do not depend on what else is in the batch, scores are
 * bit-identical to one device's whatever the placement and device count. Everything travels through host memory
 * (no peer copies); the CUDA backend's side of it ({@link Backend#expertRouting}) is compiled, not yet run on a GPU.
 * Showing expert inputs (calibration) is refused: it needs the experts on one device.
 */
final class DeviceGroup implements ExpertDevices {
    private final Devices devices;
    private final ExpertPlacement placement;
    /** One thread per device, so devices compute at once. */
    private final ExecutorService workers;
    private final AtomicLongArray entries;

    DeviceGroup(Devices devices, ExpertPlacement placement) {
        if (placement.devices() != devices.size()) {
            throw new IllegalArgumentException(placement.source() + " places experts on " + placement.devices()
                    + " devices, but the engine has " + devices.size());
        }
        this.devices = devices;
        this.placement = placement;
        this.entries = new AtomicLongArray(devices.size());
        this.workers = Executors.newFixedThreadPool(devices.size(), task -> {
            Thread thread = new Thread(task, "moescore-device");
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Each device's experts of the layer placed on it (none where it holds none). */
    @Override
    public ExpertWeights place(int layer, HostExperts experts) {
        int n = devices.size();
        int[][] on = new int[n][];
        ExpertWeights[] placed = new ExpertWeights[n];
        int ffn = 0;
        try {
            for (int d = 0; d < n; d++) {
                on[d] = placement.expertsOn(layer, d);
                if (on[d].length > 0) {
                    placed[d] = experts.select(on[d]).place(devices.get(d));
                    ffn = placed[d].ffnSize();
                }
            }
        } catch (RuntimeException e) {
            new PlacedExperts(experts.numExperts(), ffn, on, placed).close();
            throw e;
        }
        return new PlacedExperts(experts.numExperts(), ffn, on, placed);
    }

    @Override
    public void run(int layer, Tensor x, ExpertRouting routing, ExpertWeights experts, Tensor out,
                    ExpertInputObserver seen) {
        if (seen != null) {
            throw new UnsupportedOperationException("showing the experts' inputs (calibration) needs every expert "
                    + "on one device; this engine's are placed " + placement.describe());
        }
        PlacedExperts placed = (PlacedExperts) experts;
        HostExpertRouting r = routing.toHost();
        Backend home = devices.primary();
        int h = x.cols();
        float[] xs = home.toHost(x);
        Split split = new Split(layer, r, placed);
        float[][] y = computeAll(split, r, xs, h, placed);
        // each token sums its entries in the routing's order (expert order), from zero, as one device does
        float[] sum = new float[x.rows() * h];
        for (int slot = 0; slot < r.tokens().length; slot++) {
            float[] from = y[split.device[slot]];
            int src = split.row[slot] * h;
            int dst = r.tokens()[slot] * h;
            for (int k = 0; k < h; k++) {
                sum[dst + k] += from[src + k];
            }
        }
        try (Tensor summed = home.activation(sum, x.rows(), h)) {
            home.copyColumns(summed, ColumnBlocks.span(0, h), out, ColumnBlocks.span(0, h));
        }
        for (int d = 0; d < split.count.length; d++) {
            entries.addAndGet(d, split.count[d]);
        }
    }

    /** Every device's gate-weighted entry outputs ([its entries, h], null where it has none), computed at once. */
    private float[][] computeAll(Split split, HostExpertRouting r, float[] xs, int h, PlacedExperts placed) {
        int n = devices.size();
        float[][] y = new float[n][];
        List<Future<?>> running = new ArrayList<>();
        for (int d = 0; d < n; d++) {
            if (split.count[d] > 0) {
                int device = d;
                running.add(workers.submit(() -> {
                    y[device] = compute(device, split, r, xs, h, placed.onDevice()[device]);
                }));
            }
        }
        RuntimeException failed = null;
        for (Future<?> f : running) {  // every device finishes before the first failure is rethrown
            try {
                f.get();
            } catch (ExecutionException e) {
                RuntimeException cause = e.getCause() instanceof RuntimeException re ? re
                        : new IllegalStateException("a device's experts failed", e.getCause());
                if (failed == null) {
                    failed = cause;
                } else {
                    failed.addSuppressed(cause);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the devices computed their experts", e);
            }
        }
        if (failed != null) {
            throw failed;
        }
        return y;
    }

    /** Device {@code d}'s entries: their input rows and routing sent, its experts run, their outputs back. */
    private float[] compute(int d, Split split, HostExpertRouting r, float[] xs, int h, ExpertWeights weights) {
        int rows = split.count[d];
        float[] in = new float[rows * h];
        float[] gates = new float[rows];
        int[] slots = split.slots[d];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(xs, r.tokens()[slots[i]] * h, in, i * h, h);
            gates[i] = r.gates()[slots[i]];
        }
        HostExpertRouting local = new HostExpertRouting(split.offsets[d], rowIndices(rows), gates);
        Backend device = devices.get(d);
        try (Tensor x = device.activation(in, rows, h);
             ExpertRouting routing = device.expertRouting(local, rows);
             Tensor out = device.activation(rows, h)) {
            device.experts(x, routing, weights, out);
            return device.toHost(out);
        }
    }

    private static int[] rowIndices(int rows) {
        int[] out = new int[rows];
        Arrays.setAll(out, i -> i);
        return out;
    }

    /**
     * Which device computes each routing entry, in which of its rows: per expert, its entries split among its
     * devices in order ({@code count * k / copies} onwards to its k-th device), each device's entries in the order
     * of its experts (ascending), so that its rows' routing lists are in expert order, rows ascending.
     */
    private final class Split {
        /** Per routing entry (slot), the device computing it and its row there. */
        final int[] device;
        final int[] row;
        /** Per device: its entries' slots in row order, its experts' offsets into them, and how many. */
        final int[][] slots;
        final int[][] offsets;
        final int[] count;

        Split(int layer, HostExpertRouting r, PlacedExperts placed) {
            int n = devices.size();
            int total = r.tokens().length;
            device = new int[total];
            row = new int[total];
            count = new int[n];
            offsets = new int[n][];
            for (int d = 0; d < n; d++) {
                offsets[d] = new int[placed.expertsOn()[d].length + 1];
            }
            for (int e = 0; e < r.numExperts(); e++) {
                int from = r.offsets()[e];
                long got = r.offsets()[e + 1] - from;
                int[] copies = placement.devicesOf(layer, e);
                for (int k = 0; k < copies.length; k++) {
                    int d = copies[k];
                    int local = Arrays.binarySearch(placed.expertsOn()[d], e);
                    int lo = from + (int) (got * k / copies.length);
                    int hi = from + (int) (got * (k + 1) / copies.length);
                    for (int slot = lo; slot < hi; slot++) {
                        device[slot] = d;
                        row[slot] = count[d]++;
                    }
                    offsets[d][local + 1] += hi - lo;
                }
            }
            slots = new int[n][];
            for (int d = 0; d < n; d++) {
                slots[d] = new int[count[d]];
                for (int j = 0; j + 1 < offsets[d].length; j++) {
                    offsets[d][j + 1] += offsets[d][j];
                }
            }
            for (int slot = 0; slot < total; slot++) {
                slots[device[slot]][row[slot]] = slot;
            }
        }
    }

    @Override
    public boolean spread() {
        return true;
    }

    @Override
    public long[] entriesPerDevice() {
        long[] out = new long[entries.length()];
        for (int d = 0; d < out.length; d++) {
            out[d] = entries.get(d);
        }
        return out;
    }

    /** "routed experts round-robin over 2 devices (CPU (1 threads), ...); routed entries per device: 120, 136". */
    @Override
    public String describe() {
        return "routed experts " + placement.describe() + " (" + devices.describe() + "); routed entries per device: "
                + Arrays.toString(entriesPerDevice()).replaceAll("[\\[\\]]", "");
    }

    @Override
    public void close() {
        workers.shutdown();
    }
}
