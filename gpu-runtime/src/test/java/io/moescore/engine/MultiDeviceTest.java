package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import io.moescore.batch.TokenRouting;
import io.moescore.model.ModelConfig;
import io.moescore.placement.PlanFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntFunction;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Routed experts spread over several logical CPU devices (issue 30, several devices in one executor): scores,
 * sums, top-k tokens, expert loads and per-token routing bit-identical to the one-device engine's whatever the
 * placement (round-robin, skewed, replicated) and device count, also with experts streamed under a memory cap;
 * each device's routing entries counted; plans that do not fit the model or the devices refused by name.
 */
class MultiDeviceTest {
    static final ScoreOptions OPTIONS = new ScoreOptions(true, 5).withTokenRouting(true);

    @TempDir
    Path dir;

    /** {@code n} logical CPU devices of one thread each. */
    static Devices cpus(int n) {
        List<Backend> list = new ArrayList<>();
        for (int d = 0; d < n; d++) {
            list.add(new CpuBackend(1));
        }
        return Devices.of(list);
    }

    /** A plan JSON of {@code devices} devices placing every MoE layer's experts as {@code devicesOf} says. */
    static String planJson(ModelConfig c, int devices, IntFunction<int[]> devicesOf) {
        String experts = IntStream.range(0, c.numExperts()).mapToObj(e -> Arrays.toString(devicesOf.apply(e)))
                .collect(Collectors.joining(", ", "[", "]"));
        String layers = IntStream.range(0, c.numLayers()).filter(l -> c.moeLayers()[l])
                .mapToObj(l -> "{\"layer\": " + l + ", \"experts\": " + experts + "}")
                .collect(Collectors.joining(", "));
        return "{\"devices\": " + devices + ", \"layers\": [" + layers + "]}";
    }

    PlanFile plan(String name, String json) throws IOException {
        return PlanFile.parse(Files.writeString(dir.resolve(name), json).toString());
    }

    /** The placements a device count is tested with: round-robin (no plan), skewed, replicated. */
    List<PlanFile> placements(ModelConfig c, int n) throws IOException {
        int experts = c.numExperts();
        // skewed: every expert on device 0 but the last, on the last device (devices between hold none)
        PlanFile skewed = plan("skewed-" + n + ".json", planJson(c, n,
                e -> new int[] {e == experts - 1 ? n - 1 : 0}));
        // replicated: expert e on devices e mod n and (e + 1) mod n (two copies where n > 1), expert 0 on all
        PlanFile replicated = plan("replicated-" + n + ".json", planJson(c, n, e -> e == 0
                ? IntStream.range(0, n).toArray() : IntStream.of(e % n, (e + 1) % n).distinct().sorted().toArray()));
        return List.of(PlanFile.NONE, skewed, replicated);
    }

    static String label(PlanFile placement) {
        return placement.isNone() ? "round-robin" : placement.path();
    }

    static void assertSameScores(ScoreBatch want, ScoreBatch got, ModelConfig c, String what) {
        try {
            ExpertStreamingTest.assertBitIdentical(want, got);
        } catch (AssertionError e) {
            throw new AssertionError(what + ": " + e.getMessage(), e);
        }
        for (int l = 0; l < c.numLayers(); l++) {
            assertArrayEquals(want.expertLoad().layer(l), got.expertLoad().layer(l), what + ": layer " + l
                    + "'s routing stats");
        }
        TokenRouting w = want.tokenRouting();
        TokenRouting g = got.tokenRouting();
        assertEquals(w.sequences(), g.sequences(), what);
        for (int s : w.sequences()) {
            assertEquals(w.layers(s).keySet(), g.layers(s).keySet(), what);
            w.layers(s).forEach((l, choices) -> {
                TokenRouting.Choices other = g.layers(s).get(l);
                assertArrayEquals(choices.experts(), other.experts(), what + ": sequence " + s + ", layer " + l);
                assertArrayEquals(choices.gates(), other.gates(), what + ": sequence " + s + ", layer " + l);
            });
        }
    }

    /** Routed entries of the batch: every layer's tokens per expert, summed. */
    static long routedEntries(ScoreBatch b, ModelConfig c) {
        return IntStream.range(0, c.numLayers()).mapToLong(l -> Arrays.stream(b.expertLoad().layer(l)).sum()).sum();
    }

    @Test
    void demoModelScoresBitIdenticallyOnOneTwoAndThreeDevicesWhateverThePlacement() throws IOException {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = ExpertStreamingTest.batch(c, 3030L, 17, 5, 60, 33, 1, 48);
        ScoreBatch want;
        try (CpuBackend one = new CpuBackend(2); Engine engine = Engine.load(model, one)) {
            want = engine.score(tokens, OPTIONS);
            assertEquals(0, engine.expertStore().entriesPerDevice().length, "one device counts nothing");
        }
        long entries = routedEntries(want, c);
        assertTrue(entries > 0);
        for (int n = 1; n <= 3; n++) {
            for (PlanFile placement : placements(c, n)) {
                String what = n + " devices, " + label(placement);
                try (Devices devices = cpus(n);
                     Engine engine = Engine.load(model, devices, LoadOptions.DEFAULT.withPlacement(placement))) {
                    ScoreBatch got = engine.score(tokens, OPTIONS);
                    assertSameScores(want, got, c, what);
                    long[] perDevice = engine.expertStore().entriesPerDevice();
                    String described = engine.expertStore().describeDevices();
                    System.out.println("MultiDeviceTest " + what + ": " + described);
                    if (n == 1 && placement.isNone()) {
                        assertEquals(0, perDevice.length, "one device without a plan is the plain engine");
                        continue;
                    }
                    assertEquals(n, perDevice.length, what);
                    assertEquals(entries, Arrays.stream(perDevice).sum(), what + ": every entry computed once");
                    assertTrue(described.contains("routed entries per device: " + Arrays.stream(perDevice)
                            .mapToObj(Long::toString).collect(Collectors.joining(", "))), described);
                    if (placement.isNone()) {  // round-robin: device d computes the entries of experts e = d mod n
                        for (int d = 0; d < n; d++) {
                            long expected = 0;
                            for (int l = 0; l < c.numLayers(); l++) {
                                for (int e = d; e < c.numExperts(); e += n) {
                                    expected += want.expertLoad().tokens(l, e);
                                }
                            }
                            assertEquals(expected, perDevice[d], what + ": device " + d + "'s entries");
                        }
                    } else if (placement.path().contains("skewed") && n == 3) {
                        assertEquals(0, perDevice[1], what + ": device 1 holds no expert");
                    }
                }
            }
        }
    }

    static Stream<Path> fixtures() {
        return Stream.concat(TestModels.hfFixtures().stream(), Stream.of("deepseekv3-fp32-qproj", "glm4moe-fp32",
                "granitemoe-fp32").map(TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf")::resolve));
    }

    /** Every family fixture (shared experts, dense first layers, fused expert tensors) on three devices. */
    @ParameterizedTest
    @MethodSource("fixtures")
    void everyFamilyScoresBitIdenticallyOnThreeDevices(Path model) throws IOException {
        TestModels.assumeFixture(model);
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = ExpertStreamingTest.batch(c, 3131L, 9, 31, 2, 25);
        ScoreBatch want;
        try (CpuBackend one = new CpuBackend(1); Engine engine = Engine.load(model, one)) {
            want = engine.score(tokens, OPTIONS);
        }
        for (PlanFile placement : placements(c, 3)) {
            try (Devices devices = cpus(3);
                 Engine engine = Engine.load(model, devices, LoadOptions.DEFAULT.withPlacement(placement))) {
                ScoreBatch got = engine.score(tokens, OPTIONS);
                assertSameScores(want, got, c, model.getFileName() + " on 3 devices, " + label(placement));
                assertEquals(routedEntries(want, c), Arrays.stream(engine.expertStore().entriesPerDevice()).sum());
            }
        }
    }

    /** A router giving tokens a varying number of experts (top-p) on OLMoE's top-3 fixture, on three devices. */
    @Test
    void aVaryingExpertCountPerTokenScoresBitIdentically() throws IOException {
        Path model = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf/olmoe-fp32");
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = ExpertStreamingTest.batch(c, 3434L, 19, 7, 30);
        LoadOptions topP = LoadOptions.DEFAULT.withRouting(io.moescore.routing.RoutingSpec.parse("top-p:0.6:4"));
        ScoreBatch want;
        try (CpuBackend one = new CpuBackend(1); Engine engine = Engine.load(model, one, topP)) {
            want = engine.score(tokens, OPTIONS);
        }
        for (PlanFile placement : placements(c, 3)) {
            try (Devices devices = cpus(3); Engine engine = Engine.load(model, devices, topP.withPlacement(placement))) {
                assertSameScores(want, engine.score(tokens, OPTIONS), c, "top-p on 3 devices, " + label(placement));
            }
        }
    }

    /** Under a --device-memory cap, three of four layers stream to their devices; the scores do not change. */
    @Test
    void streamedExpertsOnTwoDevicesScoreBitIdentically() throws IOException {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = ExpertStreamingTest.batch(c, 3232L, 12, 40, 7);
        ScoreBatch want;
        try (CpuBackend one = new CpuBackend(1); Engine engine = Engine.load(model, one)) {
            want = engine.score(tokens, OPTIONS);
        }
        for (PlanFile placement : placements(c, 2)) {
            try (Devices devices = cpus(2)) {
                long cap = ExpertStreamingTest.cap(ExpertStreamingTest.demoPlan((CpuBackend) devices.primary()), c, 3);
                try (Engine engine = Engine.load(model, devices, LoadOptions.DEFAULT.withDeviceMemory(cap)
                        .withPlacement(placement))) {
                    assertEquals(3, engine.residency().streamedLayers(), engine.residency().describe());
                    assertSameScores(want, engine.score(tokens, OPTIONS), c, "streamed on 2 devices, "
                            + label(placement));
                    assertEquals(3, engine.expertStore().uploads(), "one upload per streamed layer");
                    assertEquals(routedEntries(want, c), Arrays.stream(engine.expertStore().entriesPerDevice()).sum());
                }
            }
        }
    }

    @Test
    void plansThatDoNotFitTheModelOrTheDevicesAreRefusedByName() throws IOException {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);  // 4 MoE layers of 8 experts
        String everyExpertOnDevice0 = "[[0], [0], [0], [0], [0], [0], [0], [0]]";
        PlanFile threeLayers = plan("three.json", "{\"devices\": 2, \"layers\": [" + IntStream.range(0, 3)
                .mapToObj(l -> "{\"layer\": " + l + ", \"experts\": " + everyExpertOnDevice0 + "}")
                .collect(Collectors.joining(", ")) + "]}");
        assertRefused(model, threeLayers, 2, "three.json places 3 layers, but the model has 4 MoE layers: no "
                + "placement for layer 3");
        PlanFile sixExperts = plan("six.json", planJson(c, 2, e -> new int[] {e % 2}).replaceFirst(
                "\\[\\[0], \\[1], \\[0], \\[1], \\[0], \\[1], \\[0], \\[1]]", "[[0], [1], [0], [1], [0], [1]]"));
        assertRefused(model, sixExperts, 2, "six.json: layer 0 places 6 experts, but the model's MoE layers have 8");
        PlanFile layerSeven = plan("seven.json", planJson(c, 2, e -> new int[] {0}).replace("\"layer\": 3",
                "\"layer\": 7"));
        assertRefused(model, layerSeven, 2, "seven.json: layer 7 is not an MoE layer of the model (its MoE layers: "
                + "[0, 1, 2, 3])");
        PlanFile twice = plan("twice.json", planJson(c, 2, e -> new int[] {0}).replace("\"layer\": 3",
                "\"layer\": 2"));
        assertRefused(model, twice, 2, "twice.json: layer 2 is placed twice");
        PlanFile threeDevices = plan("three-devices.json", planJson(c, 3, e -> new int[] {e % 3}));
        assertRefused(model, threeDevices, 2, "three-devices.json places experts on 3 devices, but the engine has 2");
        // a device outside the plan's own count, and an expert on no device: refused as the plan is read
        Files.writeString(dir.resolve("outside.json"), planJson(c, 2, e -> new int[] {e == 5 ? 2 : 0}));
        IllegalArgumentException outside = assertThrows(IllegalArgumentException.class,
                () -> PlanFile.parse(dir.resolve("outside.json").toString()));
        assertTrue(outside.getMessage().contains("outside.json: layers[0].experts[5]: 2 is not a device in [0, 2)"),
                outside.getMessage());
        Files.writeString(dir.resolve("nowhere.json"), planJson(c, 2, e -> e == 4 ? new int[0] : new int[] {1}));
        IllegalArgumentException nowhere = assertThrows(IllegalArgumentException.class,
                () -> PlanFile.parse(dir.resolve("nowhere.json").toString()));
        assertTrue(nowhere.getMessage().contains("nowhere.json: layers[0] (layer 0): expert 4 is on no device"),
                nowhere.getMessage());
    }

    private static void assertRefused(Path model, PlanFile plan, int devices, String message) {
        try (Devices d = cpus(devices)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Engine.load(model, d, LoadOptions.DEFAULT.withPlacement(plan)).close());
            System.out.println("MultiDeviceTest refusal: " + e.getMessage());
            assertTrue(e.getMessage().contains(message), e.getMessage());
        }
    }

    /** The placement in code: its device and expert lists, and a device beyond the engine's refused by name. */
    @Test
    void placementListsEachLayersExpertsAndDevices() {
        ModelConfig c = ModelConfig.load(TestModels.demoModel());
        ExpertPlacement rr = ExpertPlacement.roundRobin(c, 3);
        assertArrayEquals(new int[] {1, 4, 7}, rr.expertsOn(2, 1));
        assertArrayEquals(new int[] {2}, rr.devicesOf(0, 5));
        assertEquals("round-robin over 3 devices", rr.describe());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ExpertPlacement(2,
                rr.layers(), "rr3"));
        assertTrue(e.getMessage().contains("rr3: layer 0's expert 2 is on device 2, outside the engine's 2 devices"),
                e.getMessage());
    }

    /** Calibration shows each expert's inputs in one place: an engine over several devices refuses it by name. */
    @Test
    void showingExpertInputsIsRefusedOnSeveralDevices() {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        try (Devices devices = cpus(2); Engine engine = Engine.load(model, devices, LoadOptions.DEFAULT)) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> engine.score(ExpertStreamingTest.batch(c, 3333L, 4), OPTIONS,
                            (layer, expert, xs, rows, hidden, swiglu, ffn) -> { }));
            assertTrue(e.getMessage().contains("needs every expert on one device; this engine's are placed "
                    + "round-robin over 2 devices"), e.getMessage());
        }
    }
}
