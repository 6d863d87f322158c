package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.backend.Precision;
import io.moescore.routing.RoutingSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Defaults, checks and names of the scoring settings, whatever surface gives them. */
class ScoreSettingsTest {
    /** A source that gives {@code values} (by setting) under the name {@code prefix + key}. */
    static Setting.Source given(String prefix, Map<Setting<?>, Object> values) {
        return s -> values.containsKey(s) ? new Setting.Given(values.get(s), prefix + s.key()) : null;
    }

    @Test
    void defaultsAreWrittenOnce() {
        ScoreSettings d = ScoreSettings.DEFAULTS;
        assertEquals("auto", d.backend());
        assertEquals(Precision.BF16, d.precision());
        assertEquals(8192, d.batchTokens());
        assertEquals(ScoreSettings.BATCH_TOKENS.defaultValue(), d.batchTokens());
        assertFalse(d.deterministic() || d.tokenLogProbs());
        assertEquals(0, d.topK());
        assertEquals(0, d.cpuThreads());
        assertEquals(Runtime.getRuntime().availableProcessors(), d.resolvedCpuThreads());
    }

    @Test
    void everySettingHasItsOwnKeyAndFlagAndAValue() {
        Set<String> keys = new HashSet<>();
        Set<String> flags = new HashSet<>();
        for (Setting<?> s : ScoreSettings.ALL) {
            assertTrue(keys.add(s.key()), "key " + s.key() + " twice");
            assertTrue(flags.add(s.flag()), "flag " + s.flag() + " twice");
            assertTrue(s.flag().startsWith("--"), s.flag());
            assertTrue(ScoreSettings.DEFAULTS.values().containsKey(s), s + " missing from values()");
        }
        assertEquals(ScoreSettings.ALL, ScoreSettings.DEFAULTS.values().keySet().stream().toList(),
                "values() lists every setting in ALL's order");
    }

    @Test
    void textFromConfOrTheCommandLineIsParsedAndChecked() {
        ScoreSettings s = ScoreSettings.resolve(given("spark.moescore.", Map.of(ScoreSettings.PRECISION, "FP16",
                ScoreSettings.BATCH_TOKENS, " 512", ScoreSettings.DETERMINISTIC, "true", ScoreSettings.BACKEND, "CPU")));
        assertEquals(Precision.FP16, s.precision());
        assertEquals(512, s.batchTokens());
        assertTrue(s.deterministic());
        assertEquals("cpu", s.backend());
    }

    @Test
    void errorsNameTheOptionAsGiven() {
        assertMessage("--threads must be between 0 and 4096, got 100000",
                given("--", Map.of(ScoreSettings.CPU_THREADS, "100000")), "threads");
        assertMessage("spark.moescore.batchTokens must be at least 1, got 0",
                given("spark.moescore.", Map.of(ScoreSettings.BATCH_TOKENS, "0")), null);
        assertMessage("spark.moescore.batchTokens 'lots' is not a whole number",
                given("spark.moescore.", Map.of(ScoreSettings.BATCH_TOKENS, "lots")), null);
        assertMessage("MoeScorer param topK must be at least 0, got -1",
                given("MoeScorer param ", Map.of(ScoreSettings.TOP_K, -1)), null);
        assertMessage("spark.moescore.precision 'fp8' is not one of [bf16, fp16, split-bf16]",
                given("spark.moescore.", Map.of(ScoreSettings.PRECISION, "fp8")), null);
        assertMessage("spark.moescore.deterministic 'yes' is not true or false",
                given("spark.moescore.", Map.of(ScoreSettings.DETERMINISTIC, "yes")), null);
    }

    /** {@code flagKey}: the source names settings {@code "--" + key} unless this replaces the key for the flag. */
    private static void assertMessage(String expected, Setting.Source source, String flagKey) {
        Setting.Source named = flagKey == null ? source : s -> {
            Setting.Given g = source.given(s);
            return g == null ? null : new Setting.Given(g.value(), "--" + flagKey);
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ScoreSettings.resolve(named));
        assertEquals(expected, e.getMessage());
    }

    @Test
    void withChangesOneSettingAndChecksIt() {
        ScoreSettings s = ScoreSettings.DEFAULTS.with(ScoreSettings.TOP_K, 5).with(ScoreSettings.PRECISION,
                Precision.SPLIT_BF16);
        assertEquals(5, s.topK());
        assertEquals(Precision.SPLIT_BF16, s.precision());
        assertEquals(8192, s.batchTokens());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ScoreSettings.DEFAULTS.with(ScoreSettings.BATCH_TOKENS, 0));
        assertEquals("batchTokens must be at least 1, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new ScoreSettings("tpu", Precision.BF16, false, 1, false, 0, 0, false, LongRows.ERROR, 0,
                        RoutingSpec.MODEL, 0, 0, io.moescore.placement.PlanFile.NONE));
        assertEquals("backend 'tpu' is not one of [auto, cpu, cuda]", e.getMessage());
    }

    @Test
    void describeGivesJsonValuesByKey() {
        Map<String, Object> d = ScoreSettings.DEFAULTS.with(ScoreSettings.PRECISION, Precision.FP16).describe();
        assertEquals("fp16", d.get("precision"));
        assertEquals(8192, d.get("batchTokens"));
        assertEquals(false, d.get("tokenLogprobs"));
        assertEquals(ScoreSettings.ALL.stream().map(Setting::key).toList(), d.keySet().stream().toList());
    }

    @Test
    void theEngineDependsOnlyOnWhatLoadsIt() {
        ScoreSettings a = ScoreSettings.DEFAULTS.with(ScoreSettings.TOP_K, 5).with(ScoreSettings.BATCH_TOKENS, 7);
        assertEquals(ScoreSettings.DEFAULTS.forEngine(), a.forEngine());
        assertFalse(a.with(ScoreSettings.PRECISION, Precision.FP16).forEngine().equals(a.forEngine()));
    }

    @Test
    void routingIsTheModelsOwnByDefaultAndReachesTheEngineAsParsed() {
        assertEquals(RoutingSpec.MODEL, ScoreSettings.DEFAULTS.routing());
        assertEquals("model", ScoreSettings.DEFAULTS.describe().get("routing"));
        assertEquals(RoutingSpec.MODEL, ScoreSettings.DEFAULTS.loadOptions().routing());
        ScoreSettings s = ScoreSettings.resolve(given("--", Map.of(ScoreSettings.ROUTING, "top-p:0.9:3")));
        assertEquals(RoutingSpec.parse("top-p:0.9:3"), s.routing());
        assertEquals("top-p:0.9:3", s.describe().get("routing"));
        assertEquals(s.routing(), s.loadOptions().routing());
        assertEquals(s.routing(), s.forEngine().routing(), "engines differ by their routers");
        assertFalse(s.batchDependentScores());
        assertTrue(s.with(ScoreSettings.ROUTING, RoutingSpec.parse("batch-top-k:2")).batchDependentScores());
        assertMessage("--routing 'top-k:zero': K must be a whole number of at least 1, got 'zero'",
                given("--", Map.of(ScoreSettings.ROUTING, "top-k:zero")), null);
        assertMessage("spark.moescore.routing 'sigmoid:2': T must lie in [0, 1), got 2",
                given("spark.moescore.", Map.of(ScoreSettings.ROUTING, "sigmoid:2")), null);
    }

    @Test
    void deterministicRefusesRoutingThatDependsOnTheBatch() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ScoreSettings.resolve(
                given("--", Map.of(ScoreSettings.ROUTING, "batch-top-k:2", ScoreSettings.DETERMINISTIC, "true"))));
        assertTrue(e.getMessage().startsWith("--deterministic (deterministic) refuses --routing batch-top-k:2 "
                + "(routing)"), e.getMessage());
        ScoreSettings blocks = ScoreSettings.resolve(given("--", Map.of(ScoreSettings.ROUTING, "batch-top-k:2:64",
                ScoreSettings.DETERMINISTIC, "true")));
        assertEquals(64, blocks.routing().block());
    }

    /**
     * The CUDA backend runs every variant on a softmax top-k model, refusing (before anything loads) only ranking
     * routers past ROUTER_MAX_K (16) experts per token, which needs a model of more than 16 experts.
     */
    @Test
    void theCudaBackendIsAskedForTheRoutersItRunsBeforeAnythingLoads(@TempDir Path wide) throws IOException {
        io.moescore.model.ModelConfig demo = io.moescore.model.ModelConfig.load(io.moescore.TestModels.demoModel());
        ScoreSettings cuda = ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cuda");
        assertTrue(cuda.unsupported(demo).isEmpty(), cuda.unsupported(demo).toString());
        for (String spec : new String[] {"top-k:1", "top-p:0.9", "top-p:0.5:8", "sigmoid:0.3", "softmax",
            "quadratic:0.2", "pioneer:0.1", "sparsemax", "batch-top-k:2", "batch-top-k:2:64"}) {
            List<String> missing = cuda.with(ScoreSettings.ROUTING, RoutingSpec.parse(spec)).unsupported(demo);
            assertTrue(missing.isEmpty(), spec + ": " + missing);
        }
        Files.writeString(wide.resolve("config.json"), Files.readString(
                io.moescore.TestModels.demoModel().resolve("config.json"))
                .replace("\"num_local_experts\": 8", "\"num_local_experts\": 32"));
        io.moescore.model.ModelConfig experts32 = io.moescore.model.ModelConfig.load(wide);
        for (String spec : new String[] {"top-k:17", "top-p:0.9:17", "batch-top-k:17:4"}) {
            assertEquals(List.of("a kernel for --routing " + spec + " on this model"),
                    cuda.with(ScoreSettings.ROUTING, RoutingSpec.parse(spec)).unsupported(experts32));
        }
        assertTrue(cuda.with(ScoreSettings.ROUTING, RoutingSpec.parse("top-p:0.9:16")).unsupported(experts32)
                .isEmpty());
        ScoreSettings cpu = ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu")
                .with(ScoreSettings.ROUTING, RoutingSpec.parse("sparsemax"));
        assertTrue(cpu.unsupported(demo).isEmpty());
        cpu.checkRouting(demo);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ScoreSettings.DEFAULTS
                .with(ScoreSettings.ROUTING, RoutingSpec.parse("batch-top-k:9:4")).checkRouting(demo));
        assertEquals("--routing batch-top-k:9:4: 9 is more than the model's 8 experts", e.getMessage());
    }

    @Test
    void deviceMemoryTakesBytesWithBinarySuffixesAndNamesABadValue() {
        java.util.function.Function<Object, Long> given = v -> ScoreSettings.resolve(
                s -> s == ScoreSettings.DEVICE_MEMORY ? new Setting.Given(v, "--device-memory") : null).deviceMemory();
        assertEquals(0L, ScoreSettings.DEFAULTS.deviceMemory(), "no cap by default");
        assertEquals(6L << 30, given.apply("6g"));
        assertEquals(6L << 30, given.apply("6G"));
        assertEquals(512L << 20, given.apply("512m"));
        assertEquals(2048L, given.apply("2kb"));
        assertEquals(1L << 40, given.apply("1t"));
        assertEquals(123456789L, given.apply("123456789"));
        assertEquals(512L << 20, ScoreSettings.DEFAULTS.with(ScoreSettings.DEVICE_MEMORY, 512L << 20)
                .loadOptions().deviceMemory(), "the engine's load options carry the cap");
        for (String bad : new String[] {"6x", "g", "", "1.5g", "-1", "1GiB", "99999999999t"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> given.apply(bad), bad);
            assertTrue(e.getMessage().startsWith("--device-memory '" + bad + "' is not a number of bytes"),
                    e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> given.apply(-5L));
        assertEquals("--device-memory must be at least 0 bytes, got -5", e.getMessage());
        assertEquals(6L << 30, ScoreSettings.DEFAULTS.with(ScoreSettings.DEVICE_MEMORY, 6L << 30).describe()
                .get("deviceMemory"));
    }
}
