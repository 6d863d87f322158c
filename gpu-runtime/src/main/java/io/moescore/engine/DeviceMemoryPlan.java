package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.MemoryBudget;
import io.moescore.model.ModelConfig;
import io.moescore.sparse.SparsityPattern;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * What each device of an engine must hold, checked against that device's own memory before any weight is read, and
 * the {@link ExpertResidency} that follows (issue 30, several devices in one executor). The one home of the rule:
 * the engine's load ({@link Engine#requireLoadable}) and the Spark driver's check before any task both ask here.
 *
 * <p><b>One device, or devices sharing one memory</b> ({@link MemoryBudget#sharedByDevices}: the CPU backend's
 * logical devices all draw on the JVM heap): device 0's budget must hold the whole model, as on one device: without
 * a cap all its weights, under {@code --device-memory} the non-expert weights, two staging slots and one sequence's
 * activations ({@link ExpertResidency#of}). This check is kept as it was before several devices: the heap is one
 * memory however the experts are spread (a replicated expert's copies are not counted twice there).
 *
 * <p><b>Devices with memories of their own</b> (GPUs): device 0 holds the non-expert weights and its experts,
 * device d only its experts; a replicated expert counts on every device holding it. Each device is checked against
 * its own budget (its backend's, lowered to {@code --device-memory}, a cap per device). Without a cap every device
 * holds its experts of every MoE layer. Under a cap the first k MoE layers stay resident on every device and the
 * rest stream to their devices from host memory (each device receiving its experts of a layer into its own two
 * staging slots), k the most for which every device holds its resident experts, two slots of its largest share of a
 * streamed layer, and the activations of one sequence of the model's context: on device 0 the forward's
 * ({@link MemoryPlan#bytesPerToken}), on another the entries it may compute (top-k per token, each an input row, an
 * output row and the gate/up intermediates). Residency is per layer over all devices: a layer streams on every
 * device when one cannot keep it (a device with room to spare does not keep more; not done yet). A device that does
 * not fit is refused by number, naming the experts it was given.
 */
public final class DeviceMemoryPlan {
    private DeviceMemoryPlan() {
    }

    /**
     * One device's share of a model as the plan places it.
     *
     * @param device          its index (0 holds the non-expert weights)
     * @param budget          the memory it is checked against (capped where a cap was given)
     * @param nonExpertBytes  the non-expert weights (device 0 only)
     * @param expertBytes     its resident experts, replicas included
     * @param stagingBytes    its staging slots for streamed layers
     * @param activationBytes one sequence's activations on it (0 without a cap, as on one device)
     * @param experts         which experts it was given, for messages
     */
    public record Share(int device, MemoryBudget budget, long nonExpertBytes, long expertBytes, long stagingBytes,
                        long activationBytes, String experts) {
        /** The bytes it must hold. */
        public long bytes() {
            return nonExpertBytes + expertBytes + stagingBytes + activationBytes;
        }

        /** "device 1 needs 1234 bytes (...) but its budget is 1000 bytes (...): it was given experts ...". */
        public String describe() {
            return "device " + device + " needs " + bytes() + " bytes (" + nonExpertBytes + " of non-expert weights + "
                    + expertBytes + " of resident experts + " + stagingBytes + " of staging slots + " + activationBytes
                    + " of activations for one sequence) but its budget is " + budget.availableBytes() + " bytes ("
                    + budget.where() + "): it was given " + experts;
        }

        /** "device 1 holds 1234 bytes of its 5000 (...) : experts ...", for logs. */
        public String summary() {
            return "device " + device + " holds " + bytes() + " bytes of its " + budget.availableBytes() + " ("
                    + budget.where() + "): " + nonExpertBytes + " of non-expert weights, " + expertBytes
                    + " of resident experts, " + stagingBytes + " of staging slots, " + activationBytes
                    + " of activations for one sequence; " + experts;
        }
    }

    /**
     * The residency of the model in {@code modelDirectory} on these devices (device 0 first), its experts placed as
     * {@code placement} says (null: one device, every expert on it), under a cap of {@code cap} bytes per device (0:
     * none).
     *
     * @throws UnsupportedModelException naming the device, its bytes, its budget and its experts where one does not
     *                                   fit
     */
    static ExpertResidency of(ModelConfig c, Path modelDirectory, List<Backend> devices, ExpertPlacement placement,
                              long cap) {
        MemoryBudget[] budgets = devices.stream().map(Backend::memoryBudget).toArray(MemoryBudget[]::new);
        return of(c, SparsityPattern.ofCheckpoint(modelDirectory), budgets, placement, cap,
                "the " + c.family().modelType + " model " + modelDirectory);
    }

    /**
     * Each device's share as {@link #of(ModelConfig, Path, List, ExpertPlacement, long)} places it ({@link
     * Share#summary}), for logs; empty on one device and on devices sharing one memory (whose check is the one
     * device's: {@link MemoryPlan#describe}).
     *
     * @throws UnsupportedModelException where a device does not fit
     */
    public static List<Share> shares(ModelConfig c, Path modelDirectory, List<Backend> devices,
                                     ExpertPlacement placement, long cap) {
        MemoryBudget[] budgets = devices.stream().map(Backend::memoryBudget).toArray(MemoryBudget[]::new);
        if (!perDevice(budgets, placement)) {
            return List.of();
        }
        Spread spread = new Spread(c, SparsityPattern.ofCheckpoint(modelDirectory), budgets, placement, cap);
        ExpertResidency r = spread.residency("the model " + modelDirectory);
        int resident = spread.moe.length - r.streamedLayers();
        return IntStream.range(0, budgets.length).mapToObj(d -> spread.share(d, resident, r.slots())).toList();
    }

    /** Whether devices are checked each on its own: several, each with a memory of its own, experts placed. */
    private static boolean perDevice(MemoryBudget[] budgets, ExpertPlacement placement) {
        return budgets.length > 1 && placement != null && Arrays.stream(budgets).noneMatch(b -> b == null)
                && !budgets[0].sharedByDevices();
    }

    /**
     * As {@link #of(ModelConfig, Path, List, ExpertPlacement, long)} on these budgets (null where a backend cannot
     * tell its memory: nothing is checked without a cap, a cap is refused), the checkpoint storing the sparsity
     * pattern {@code stored} (null: dense); {@code model} names the model in messages.
     */
    public static ExpertResidency of(ModelConfig c, SparsityPattern stored, MemoryBudget[] budgets,
                                     ExpertPlacement placement, long cap, String model) {
        if (!perDevice(budgets, placement)) {
            MemoryPlan first = budgets[0] == null ? null : MemoryPlan.of(c, stored, budgets[0]);
            if (cap > 0) {
                return ExpertResidency.of(c, first, cap);
            }
            if (first != null && !first.fits()) {
                throw new UnsupportedModelException(model + " does not fit: " + first.describe());
            }
            return ExpertResidency.allResident(c, first);
        }
        return new Spread(c, stored, budgets, placement, cap).residency(model);
    }

    /** The per-device rule over devices with memories of their own. */
    private static final class Spread {
        private final ModelConfig c;
        private final ExpertPlacement placement;
        private final long cap;
        private final MemoryPlan[] plans;
        private final MemoryBudget[] budgets;
        private final int[] moe;
        /** Per device, per MoE layer (in order): the bytes of its experts there. */
        private final long[][] layerShare;

        Spread(ModelConfig c, SparsityPattern stored, MemoryBudget[] own, ExpertPlacement placement, long cap) {
            this.c = c;
            this.placement = placement;
            this.cap = cap;
            boolean[] moeLayers = c.moeLayers();
            moe = IntStream.range(0, moeLayers.length).filter(l -> moeLayers[l]).toArray();
            int n = own.length;
            plans = new MemoryPlan[n];
            budgets = new MemoryBudget[n];
            layerShare = new long[n][moe.length];
            for (int d = 0; d < n; d++) {
                plans[d] = MemoryPlan.of(c, stored, own[d]);
                budgets[d] = cap == 0 ? own[d] : ExpertResidency.capped(own[d], cap);
                long experts = (long) moe.length * c.numExperts();
                for (int i = 0; i < moe.length; i++) {
                    layerShare[d][i] = experts == 0 ? 0
                            : placement.expertsOn(moe[i], d).length * plans[d].expertBytes() / experts;
                }
            }
        }

        ExpertResidency residency(String model) {
            int n = plans.length;
            if (cap == 0) {
                for (int d = 0; d < n; d++) {
                    Share s = share(d, moe.length, 0);
                    if (s.bytes() >= budgets[d].availableBytes()) {
                        throw new UnsupportedModelException(model + " does not fit on its " + n + " devices: "
                                + s.describe());
                    }
                }
                return ExpertResidency.allResident(c, plans[0]);
            }
            // the most resident MoE layers k for which every device holds its share
            for (int k = moe.length; k >= 0; k--) {
                int slots = Math.min(ExpertResidency.SLOTS, moe.length - k);
                long batch = Long.MAX_VALUE;
                boolean fits = true;
                for (int d = 0; d < n && fits; d++) {
                    Share s = share(d, k, slots);
                    fits = s.bytes() <= budgets[d].availableBytes();
                    long fixed = s.bytes() - s.activationBytes();
                    batch = Math.min(batch, (budgets[d].availableBytes() - fixed) / perToken(d));
                }
                if (fits) {
                    MemoryBudget b = budgets[0];
                    MemoryPlan capped = plans[0].in(new MemoryBudget(b.availableBytes(), b.bytesPerWeight(),
                            b.packsSparseExperts(), b.where() + " on each of " + n + " devices"));
                    long layer = moe.length == 0 ? 0 : plans[0].expertBytes() / moe.length;
                    return new ExpertResidency(capped, true, ExpertResidency.streamedAfter(c, k), layer, slots,
                            batch);
                }
            }
            int slots = Math.min(ExpertResidency.SLOTS, moe.length);
            for (int d = 0; d < n; d++) {
                Share s = share(d, 0, slots);
                if (s.bytes() > budgets[d].availableBytes()) {
                    throw new UnsupportedModelException("--device-memory " + cap + " bytes is too small for "
                            + model + " on " + n + " devices: " + s.describe());
                }
            }
            throw new IllegalStateException("no device refused, yet no residency fits");  // unreachable
        }

        /** Device d's share with the first {@code resident} MoE layers resident and {@code slots} staging slots. */
        Share share(int d, int resident, int slots) {
            long experts = 0;
            long largestStreamed = 0;
            for (int i = 0; i < moe.length; i++) {
                if (i < resident) {
                    experts += layerShare[d][i];
                } else {
                    largestStreamed = Math.max(largestStreamed, layerShare[d][i]);
                }
            }
            long activations = cap == 0 ? 0 : (long) c.maxPositions() * perToken(d);
            return new Share(d, budgets[d], d == 0 ? plans[0].nonExpertBytes() : 0, experts, slots * largestStreamed,
                    activations, expertsOn(d));
        }

        /** Activation bytes per token on device d: the forward's on device 0, its routed entries' elsewhere. */
        long perToken(int d) {
            return d == 0 ? plans[0].bytesPerToken()
                    : Float.BYTES * (long) c.topK() * (2L * c.hiddenSize() + 2L * c.expertFfnSize());
        }

        /** "experts 1, 3, 5, 7 of each of its 4 MoE layers", or per layer where they differ. */
        String expertsOn(int d) {
            List<String> perLayer = new ArrayList<>();
            for (int l : moe) {
                perLayer.add(Arrays.toString(placement.expertsOn(l, d)).replaceAll("[\\[\\]]", ""));
            }
            if (perLayer.stream().distinct().count() <= 1) {
                String e = perLayer.isEmpty() || perLayer.get(0).isEmpty() ? "no experts" : "experts " + perLayer.get(0);
                return e + " of each of the " + moe.length + " MoE layers";
            }
            List<String> out = new ArrayList<>();
            for (int i = 0; i < moe.length; i++) {
                out.add("layer " + moe[i] + ": " + (perLayer.get(i).isEmpty() ? "none" : perLayer.get(i)));
            }
            return "experts " + String.join("; ", out);
        }
    }
}
