package io.moescore.placement;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plan's JSON: written, read back the same, and a wrong file refused naming the file and what is wrong. */
class PlacementPlanTest {
    @TempDir
    Path dir;

    @Test
    void roundTrip() throws IOException {
        PlacementPlan plan = new PlacementPlan(new PlacementLimits(2, 3, 1), "eplb", List.of(
                new PlacementPlan.Layer(0, new Placement(new int[][] {{0, 1}, {1}, {0}, {1}}), 1.25, 1.0),
                new PlacementPlan.Layer(3, Placement.of(new int[] {1, 0, 0, 1}), Double.NaN, Double.NaN)));
        Path file = dir.resolve("plan.json");
        plan.write(file);
        String json = Files.readString(file);
        assertTrue(json.contains("\"devices\" : 2") && json.contains("\"experts\" : [ [ 0, 1 ], [ 1 ], [ 0 ], [ 1 ] ]"),
                json);
        PlacementPlan back = PlacementPlan.read(file);
        assertEquals(plan.limits(), back.limits());
        assertEquals(plan.algorithm(), back.algorithm());
        assertEquals(plan.layers().get(0), back.layers().get(0));
        assertEquals(plan.layers().get(1).placement(), back.layers().get(1).placement());
        assertTrue(Double.isNaN(back.layers().get(1).maxOverMean()), "an unknown prediction stays unknown");
    }

    @Test
    void theIssuesMinimalFormIsAccepted() throws IOException {
        Path file = dir.resolve("min.json");
        Files.writeString(file, "{\"devices\": 2, \"layers\": [{\"layer\": 1, \"experts\": [[0], [1], [1, 0]]}]}");
        PlacementPlan plan = PlacementPlan.read(file);
        assertEquals(new PlacementLimits(2, 2, 1), plan.limits(), "slots and replicas: the most a layer uses");
        assertEquals("[[0], [1], [0, 1]]", plan.layers().get(0).placement().toString());
    }

    private void assertBad(String json, String expected) throws IOException {
        Path file = dir.resolve("bad.json");
        Files.writeString(file, json);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PlacementPlan.read(file));
        System.out.println("sample error: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "'" + expected + "' in: " + e.getMessage());
    }

    @Test
    void wrongPlansNameWhatIsWrong() throws IOException {
        assertBad("{\"devices\": 2, \"layers\": [", "is not JSON: line 1");
        assertBad("{\"layers\": []}", "\"devices\" must be a whole number, got null");
        assertBad("{\"devices\": 2}", "no \"layers\" array");
        assertBad("{\"devices\": 2, \"layers\": [{\"layer\": 0, \"experts\": [[0], [2]]}]}",
                "layers[0].experts[1]: 2 is not a device in [0, 2)");
        assertBad("{\"devices\": 2, \"layers\": [{\"layer\": 4, \"experts\": [[0], []]}]}",
                "layers[0] (layer 4): expert 1 is on no device");
        assertBad("{\"devices\": 2, \"layers\": [{\"layer\": 4, \"experts\": [[0, 0]]}]}",
                "expert 0 is on device 0 twice");
        assertBad("{\"devices\": 2, \"slots\": 1, \"layers\": [{\"layer\": 4, \"experts\": [[0], [0]]}]}",
                "layer 4: device 0 holds more than its 1 slots");
    }
}
