package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.Devices;
import io.moescore.model.ModelConfig;
import io.moescore.placement.PlanFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --devices} and {@code --placement}: their defaults, a plan read and checked where the option is given (its
 * devices giving --devices), a disagreeing pair refused by name, the CPU's logical devices splitting the threads,
 * and the plan carried to the engine's load options and checked against a model.
 */
class DeviceSettingsTest {
    @TempDir
    Path dir;

    /** The demo model's 4 MoE layers of 8 experts, expert e on device e mod {@code devices}. */
    static String demoPlan(int devices, int layers) {
        List<String> list = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            List<String> experts = new ArrayList<>();
            for (int e = 0; e < 8; e++) {
                experts.add("[" + e % devices + "]");
            }
            list.add("{\"layer\": " + l + ", \"experts\": [" + String.join(", ", experts) + "]}");
        }
        return "{\"devices\": " + devices + ", \"layers\": [" + String.join(", ", list) + "]}";
    }

    static ScoreSettings given(Map<Setting<?>, Object> values) {
        return ScoreSettings.resolve(s -> values.containsKey(s) ? new Setting.Given(values.get(s), s.flag()) : null);
    }

    @Test
    void oneDeviceRoundRobinByDefault() {
        ScoreSettings d = ScoreSettings.DEFAULTS;
        assertEquals(0, d.devices());
        assertEquals(PlanFile.NONE, d.placement());
        assertEquals(1, d.resolvedDevices());
        assertEquals("round-robin", d.describe().get("placement"));
        assertEquals(0, d.describe().get("devices"));
        assertEquals(PlanFile.NONE, d.loadOptions().placement());
        assertEquals(3, given(Map.of(ScoreSettings.DEVICES, "3")).resolvedDevices());
        assertEquals(PlanFile.NONE, given(Map.of(ScoreSettings.PLACEMENT, "Round-Robin")).placement());
    }

    @Test
    void aPlanIsReadWhereGivenAndItsDevicesGiveTheCount() throws IOException {
        Path file = Files.writeString(dir.resolve("plan.json"), demoPlan(3, 4));
        ScoreSettings s = given(Map.of(ScoreSettings.PLACEMENT, file.toString()));
        assertEquals(3, s.resolvedDevices());
        assertEquals(file.toString(), s.placement().path());
        assertEquals(Files.readString(file), s.placement().json(), "the text travels with the settings");
        assertEquals(s.placement(), s.loadOptions().placement());
        assertEquals(s.placement(), s.forEngine().placement());
        assertEquals(file.toString(), s.describe().get("placement"));
        assertEquals(s, s.with(ScoreSettings.TOP_K, 0), "settings with a plan compare equal when rebuilt");
        s.checkPlacement(ModelConfig.load(TestModels.demoModel()));
        assertEquals(3, given(Map.of(ScoreSettings.PLACEMENT, file.toString(), ScoreSettings.DEVICES, "3"))
                .resolvedDevices(), "the same count twice is fine");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> given(Map.of(
                ScoreSettings.PLACEMENT, file.toString(), ScoreSettings.DEVICES, "2")));
        assertEquals("--devices (devices) 2 differs from the 3 devices of --placement " + file + ": give one of "
                + "them, or the same count", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> given(Map.of(ScoreSettings.PLACEMENT,
                dir.resolve("none.json").toString())));
        assertTrue(e.getMessage().startsWith("--placement cannot read " + dir.resolve("none.json")), e.getMessage());
        Path nowhere = Files.writeString(dir.resolve("nowhere.json"), demoPlan(2, 4).replaceFirst("\\[1]", "[]"));
        e = assertThrows(IllegalArgumentException.class, () -> given(Map.of(ScoreSettings.PLACEMENT,
                nowhere.toString())));
        assertEquals("--placement " + nowhere + ": layers[0] (layer 0): expert 1 is on no device", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> given(Map.of(ScoreSettings.DEVICES, "0x")));
        assertEquals("--devices '0x' is not a whole number", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> given(Map.of(ScoreSettings.DEVICES, "257")));
        assertEquals("--devices must be between 0 and 256, got 257", e.getMessage());
    }

    @Test
    void aPlanForOtherLayersIsRefusedAgainstTheModel() throws IOException {
        Path file = Files.writeString(dir.resolve("three-layers.json"), demoPlan(2, 3));
        ScoreSettings s = given(Map.of(ScoreSettings.PLACEMENT, file.toString()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.checkPlacement(ModelConfig.load(TestModels.demoModel())));
        assertEquals(file + " places 3 layers, but the model has 4 MoE layers: no placement for layer 3",
                e.getMessage());
    }

    @Test
    void cpuDevicesSplitTheThreads() {
        ScoreSettings s = given(Map.of(ScoreSettings.BACKEND, "cpu", ScoreSettings.DEVICES, "3",
                ScoreSettings.CPU_THREADS, "4"));
        try (Devices devices = s.openDevices(0)) {
            assertEquals(3, devices.size());
            assertEquals("3 devices: CPU (2 threads), CPU (1 threads), CPU (1 threads)", devices.describe());
        }
        try (Devices one = ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.CPU_THREADS, 2)
                .openDevices(0)) {
            assertEquals("CPU (2 threads)", one.describe());
        }
        try (Devices more = s.with(ScoreSettings.DEVICES, 6).openDevices(0)) {
            assertEquals(6, more.size(), "more devices than threads: one thread each");
            assertTrue(more.describe().endsWith("CPU (1 threads)"), more.describe());
        }
    }
}
