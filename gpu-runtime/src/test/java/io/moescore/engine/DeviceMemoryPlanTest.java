package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.backend.MemoryBudget;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import io.moescore.model.ModelConfig;
import io.moescore.placement.PlanFile;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each device's memory checked on its own (issue 30, several devices): on devices with memories of their own (GPU-like
 * budgets, faked here) a model that fits only when its experts are split over them loads, with and without a
 * {@code --device-memory} cap, and scores as on one device; a device given more than it holds is refused naming it,
 * its bytes, its budget and its experts; devices sharing one memory (the CPU backend's logical devices) keep the one
 * device's check.
 */
class DeviceMemoryPlanTest {
    @TempDir
    Path dir;

    static final Path MODEL = TestModels.demoModel();
    static final ModelConfig C = ModelConfig.load(MODEL);  // 4 MoE layers of 8 experts

    static MemoryBudget own(long bytes) {
        return new MemoryBudget(bytes, Float.BYTES, false, "a fake device of " + bytes + " bytes");
    }

    static MemoryBudget shared(long bytes) {
        return new MemoryBudget(bytes, Float.BYTES, false, "a fake heap of " + bytes + " bytes", true);
    }

    static MemoryBudget[] times(int n, MemoryBudget b) {
        MemoryBudget[] out = new MemoryBudget[n];
        Arrays.fill(out, b);
        return out;
    }

    static final MemoryPlan PLAN = MemoryPlan.of(C, null, own(Long.MAX_VALUE));
    static final long LAYER = PLAN.expertBytes() / 4;
    static final ExpertPlacement ROUND_ROBIN = ExpertPlacement.roundRobin(C, 2);

    /** Every expert on device 1 of 2 (device 0 holds only the non-expert weights). */
    ExpertPlacement allOnDevice1() throws IOException {
        String json = MultiDeviceTest.planJson(C, 2, e -> new int[] {1});
        return ExpertPlacement.of(PlanFile.parse(Files.writeString(dir.resolve("all-on-1.json"), json).toString()),
                C, 2);
    }

    static ExpertResidency residency(MemoryBudget[] budgets, ExpertPlacement placement, long cap) {
        return DeviceMemoryPlan.of(C, null, budgets, placement, cap, "the demo model");
    }

    /** Room for the non-expert weights and half the experts: the model fits two devices, not one. */
    static final long HALF = PLAN.nonExpertBytes() + PLAN.expertBytes() / 2 + 1;

    @Test
    void withoutACapAModelThatFitsOnlySplitLoadsOnDevicesOfTheirOwn() throws IOException {
        assertTrue(PLAN.weightBytes() >= HALF);
        UnsupportedModelException one = assertThrows(UnsupportedModelException.class,
                () -> residency(times(1, own(HALF)), null, 0));
        assertTrue(one.getMessage().contains("does not fit"), one.getMessage());
        ExpertResidency split = residency(times(2, own(HALF)), ROUND_ROBIN, 0);
        assertEquals(0, split.streamedLayers());
        // the same budgets, every expert on device 1: refused naming it, its bytes, its budget and its experts
        UnsupportedModelException skewed = assertThrows(UnsupportedModelException.class,
                () -> residency(times(2, own(HALF)), allOnDevice1(), 0));
        String m = skewed.getMessage();
        System.out.println(m);
        assertTrue(m.contains("device 1 needs " + PLAN.expertBytes() + " bytes") && m.contains("its budget is " + HALF
                + " bytes (a fake device of " + HALF + " bytes)")
                && m.contains("experts 0, 1, 2, 3, 4, 5, 6, 7 of each of the 4 MoE layers"), m);
        // replicas count on every device holding them: expert 1 also on device 0 no longer fits device 0's half
        ExpertPlacement replicated = ExpertPlacement.of(PlanFile.parse(Files.writeString(dir.resolve("rep.json"),
                MultiDeviceTest.planJson(C, 2, e -> e == 1 ? new int[] {0, 1} : new int[] {e % 2})).toString()), C, 2);
        assertEquals(0, PLAN.expertBytes() % 32, "whole bytes per expert");
        long need = PLAN.nonExpertBytes() + 4 * 5 * (PLAN.expertBytes() / 32);
        String r = assertThrows(UnsupportedModelException.class,
                () -> residency(times(2, own(HALF)), replicated, 0)).getMessage();
        assertTrue(r.contains("device 0 needs " + need + " bytes") && r.contains("experts 0, 1, 2, 4, 6 of each"), r);
    }

    /** The CPU backend's logical devices share the heap: the one device's check, whatever the spread. */
    @Test
    void devicesSharingOneMemoryKeepTheOneDeviceCheck() {
        String one = assertThrows(UnsupportedModelException.class,
                () -> residency(times(1, shared(HALF)), null, 0)).getMessage();
        String two = assertThrows(UnsupportedModelException.class,
                () -> residency(times(2, shared(HALF)), ROUND_ROBIN, 0)).getMessage();
        assertEquals(one, two);
        long cap = ExpertStreamingTest.cap(PLAN, C, 3);
        assertEquals(3, residency(times(2, shared(Long.MAX_VALUE)), ROUND_ROBIN, cap).streamedLayers());
        assertEquals(3, residency(times(1, shared(Long.MAX_VALUE)), null, cap).streamedLayers());
        try (Devices cpus = MultiDeviceTest.cpus(2)) {
            assertTrue(cpus.primary().memoryBudget().sharedByDevices());
            assertEquals(List.of(), DeviceMemoryPlan.shares(C, MODEL, cpus.all(), ROUND_ROBIN, 0), "one check");
        }
    }

    /**
     * Under a cap per device: where one device keeps one of four layers resident (three stream), two devices of
     * their own holding half of each layer keep all four; a device whose own memory is below two staging slots of
     * its experts is refused by name.
     */
    @Test
    void underACapEachDeviceHoldsItsShareAndTheOneThatCannotIsNamed() throws IOException {
        long cap = ExpertStreamingTest.cap(PLAN, C, 3);
        assertEquals(3, residency(times(1, own(Long.MAX_VALUE)), null, cap).streamedLayers());
        ExpertResidency split = residency(times(2, own(Long.MAX_VALUE)), ROUND_ROBIN, cap);
        assertEquals(0, split.streamedLayers(), split.describe());
        assertTrue(split.capped() && split.largestBatchTokens() > C.maxPositions(), split.describe());
        // a cap that holds the non-expert weights, one sequence and one layer: on two devices every layer streams
        long small = ExpertStreamingTest.cap(PLAN, C, 1);
        assertThrows(UnsupportedModelException.class, () -> residency(times(1, own(Long.MAX_VALUE)), null, small));
        assertEquals(4, residency(times(2, own(Long.MAX_VALUE)), ROUND_ROBIN, small).streamedLayers());
        // device 1's own memory below two slots of all its experts: refused naming it, whatever the cap
        long tiny = LAYER;
        MemoryBudget[] budgets = {own(Long.MAX_VALUE), own(tiny)};
        String m = assertThrows(UnsupportedModelException.class, () -> residency(budgets, allOnDevice1(), cap))
                .getMessage();
        System.out.println(m);
        assertTrue(m.contains("--device-memory " + cap + " bytes is too small") && m.contains("device 1 needs ")
                && m.contains(2 * LAYER + " of staging slots") && m.contains("its budget is " + tiny + " bytes")
                && m.contains("lowered to a fake device of " + tiny + " bytes")
                && m.contains("experts 0, 1, 2, 3, 4, 5, 6, 7 of each"), m);
    }

    /** A CPU backend whose memory reads as a device's own of {@code bytes} (a GPU-like budget on the CPU). */
    static Backend ownMemory(CpuBackend cpu, long bytes) {
        MemoryBudget budget = own(bytes);
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("memoryBudget")) {
                        return budget;
                    }
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    static Devices ownMemories(int n, long bytes) {
        List<Backend> list = new ArrayList<>();
        IntStream.range(0, n).forEach(d -> list.add(ownMemory(new CpuBackend(1), bytes)));
        return Devices.of(list);
    }

    /**
     * The engine's load asks the same rule: the demo model on one GPU-like device of half its bytes is refused
     * before anything is read; on two it loads and scores bit-identically, resident, and streamed under a cap that
     * one device cannot take.
     */
    @Test
    void theEngineLoadsAModelThatFitsOnlySplitAndScoresItUnchanged() {
        TokenBatch tokens = ExpertStreamingTest.batch(C, 3535L, 14, 33, 6);
        ScoreBatch want;
        try (CpuBackend one = new CpuBackend(1); Engine engine = Engine.load(MODEL, one)) {
            want = engine.score(tokens, MultiDeviceTest.OPTIONS);
        }
        try (Devices one = ownMemories(1, HALF)) {
            assertThrows(UnsupportedModelException.class, () -> Engine.load(MODEL, one, LoadOptions.DEFAULT));
        }
        try (Devices two = ownMemories(2, HALF); Engine engine = Engine.load(MODEL, two, LoadOptions.DEFAULT)) {
            assertEquals(0, engine.residency().streamedLayers());
            // what each device holds, for logs: device 0 the non-expert weights and half the experts
            List<DeviceMemoryPlan.Share> shares = DeviceMemoryPlan.shares(C, MODEL, two.all(), ROUND_ROBIN, 0);
            assertEquals(2, shares.size());
            assertEquals(PLAN.nonExpertBytes() + PLAN.expertBytes() / 2, shares.get(0).bytes());
            assertEquals(PLAN.expertBytes() / 2, shares.get(1).bytes());
            assertTrue(shares.get(1).summary().startsWith("device 1 holds " + PLAN.expertBytes() / 2 + " bytes of its "
                    + HALF) && shares.get(1).summary().endsWith("experts 1, 3, 5, 7 of each of the 4 MoE layers"),
                    shares.get(1).summary());
            MultiDeviceTest.assertSameScores(want, engine.score(tokens, MultiDeviceTest.OPTIONS), C, "split, resident");
        }
        long small = ExpertStreamingTest.cap(PLAN, C, 1);
        try (Devices one = ownMemories(1, Long.MAX_VALUE)) {
            assertThrows(UnsupportedModelException.class,
                    () -> Engine.load(MODEL, one, LoadOptions.DEFAULT.withDeviceMemory(small)));
        }
        try (Devices two = ownMemories(2, Long.MAX_VALUE);
             Engine engine = Engine.load(MODEL, two, LoadOptions.DEFAULT.withDeviceMemory(small))) {
            assertEquals(4, engine.residency().streamedLayers(), engine.residency().describe());
            MultiDeviceTest.assertSameScores(want, engine.score(tokens, MultiDeviceTest.OPTIONS), C, "split, streamed");
            assertEquals(4, engine.expertStore().uploads(), "one upload per streamed layer");
        }
    }
}
