package io.moescore.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --routing specs: parsed once into their routers, every error naming the part that is wrong. */
class RoutingSpecTest {
    static final TopKSoftmaxRouter MIXTRAL = new TopKSoftmaxRouter(2, true);
    static final TopKSoftmaxRouter QWEN_RAW = new TopKSoftmaxRouter(2, false);

    @TempDir
    Path dir;

    @Test
    void eachSpecMakesItsRouterWithTheModelsNormalisation() {
        assertSame(MIXTRAL, RoutingSpec.parse("model").router(MIXTRAL, 0, 8));
        assertEquals(new TopKSoftmaxRouter(1, true), RoutingSpec.parse("top-k:1").router(MIXTRAL, 0, 8));
        assertEquals(new TopKSoftmaxRouter(3, false), RoutingSpec.parse(" TOP-K:3 ").router(QWEN_RAW, 0, 8));
        assertEquals(new TopPRouter(0.9f, 2, true), RoutingSpec.parse("top-p:0.9").router(MIXTRAL, 0, 8));
        assertEquals(new TopPRouter(0.9f, 4, false), RoutingSpec.parse("top-p:0.9:4").router(QWEN_RAW, 0, 8));
        assertEquals(new ThresholdRouter(ThresholdRouter.Gate.SIGMOID, 0.3f),
                RoutingSpec.parse("sigmoid:0.3").router(MIXTRAL, 0, 8));
        assertEquals(new ThresholdRouter(ThresholdRouter.Gate.PIONEER, 0.5f),
                RoutingSpec.parse("pioneer").router(MIXTRAL, 0, 8));
        assertEquals(new ThresholdRouter(ThresholdRouter.Gate.SPARSEMAX, 0f),
                RoutingSpec.parse("sparsemax").router(MIXTRAL, 0, 8));
        assertEquals(new BatchTopKRouter(2, 0, true), RoutingSpec.parse("batch-top-k:2").router(MIXTRAL, 0, 8));
        assertEquals(new BatchTopKRouter(1, 64, false),
                RoutingSpec.parse("batch-top-k:1:64").router(QWEN_RAW, 0, 8));
        assertTrue(RoutingSpec.parse("batch-top-k:2").dependsOnBatch());
        assertTrue(!RoutingSpec.parse("batch-top-k:2:128").dependsOnBatch());
        assertTrue(!RoutingSpec.parse("top-p:0.5").dependsOnBatch());
    }

    @Test
    void specsPrintAsTheyAreWrittenAndParseBack() throws IOException {
        Path file = Files.writeString(dir.resolve("drop.json"), "{\"1\": [3]}");
        for (String s : List.of("model", "top-k:4", "top-p:0.9", "top-p:0.75:3", "sigmoid:0.3", "softmax:0.5",
                "sparsemax", "quadratic:0.25", "pioneer:0.5", "batch-top-k:2", "batch-top-k:2:64",
                "drop-experts:" + file)) {
            RoutingSpec spec = RoutingSpec.parse(s);
            assertEquals(s, spec.toString());
            assertEquals(spec, RoutingSpec.parse(spec.toString()));
        }
    }

    @Test
    void errorsNameTheBadPart() {
        assertError("tpo-k:2", "unknown router 'tpo-k'");
        assertError("top-k", "expected top-k:K");
        assertError("top-k:2:3", "expected top-k:K");
        assertError("top-k:0", "K must be a whole number of at least 1, got '0'");
        assertError("top-k:two", "K must be a whole number of at least 1, got 'two'");
        assertError("top-p:1.5", "P must lie in (0, 1], got 1.5");
        assertError("top-p:x", "P 'x' is not a number");
        assertError("top-p:0.5:0", "MAXK must be a whole number of at least 1, got '0'");
        assertError("sigmoid:1", "T must lie in [0, 1), got 1");
        assertError("softmax:-0.1", "T must lie in [0, 1), got -0.1");
        assertError("sparsemax:0.5", "expected sparsemax");
        assertError("batch-top-k:2:-1", "B must be a whole number of at least 1, got '-1'");
        assertError("drop-experts:", "expected drop-experts:FILE");
        assertError("drop-experts:" + dir.resolve("missing.json"), "missing.json cannot be read");
    }

    static void assertError(String spec, String part) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RoutingSpec.parse(spec));
        assertTrue(e.getMessage().contains(part), e.getMessage());
        assertTrue(e.getMessage().contains("'" + spec.trim() + "'") || e.getMessage().contains("drop-experts file"),
                e.getMessage());
    }

    @Test
    void dropListsReadFromJsonObjectsArraysAndText() throws IOException {
        Map<Integer, List<Integer>> expected = Map.of(0, List.of(1, 3), 2, List.of(5));
        Path object = Files.writeString(dir.resolve("o.json"), "{\"0\": [1, 3], \"2\": [5]}");
        Path array = Files.writeString(dir.resolve("a.json"), "[[1, 3], [], [5]]");
        Path text = Files.writeString(dir.resolve("d.txt"), "# least loaded\n0: 1, 3\n\n2: 5  # layer two\n");
        assertEquals(expected, RoutingSpec.parse("drop-experts:" + object).dropped());
        assertEquals(Map.of(0, List.of(1, 3), 1, List.of(), 2, List.of(5)),
                RoutingSpec.parse("drop-experts:" + array).dropped());
        assertEquals(expected, RoutingSpec.parse("drop-experts:" + text).dropped());
        RoutingSpec spec = RoutingSpec.parse("drop-experts:" + text);
        DropExpertsRouter layer0 = (DropExpertsRouter) spec.router(MIXTRAL, 0, 6);
        assertArrayEquals(new boolean[] {false, true, false, true, false, false}, layer0.dropped());
        assertEquals(MIXTRAL, layer0.inner());
        DropExpertsRouter layer1 = (DropExpertsRouter) spec.router(MIXTRAL, 1, 6);
        assertArrayEquals(new boolean[6], layer1.dropped());
    }

    @Test
    void dropFileErrorsNameTheFileAndPlace() throws IOException {
        assertFileError("bad.txt", "0: 1\nzero: 2\n", "line 2: 'zero' is not a layer or expert index");
        assertFileError("bad2.txt", "0 1 2\n", "line 1 '0 1 2': expected LAYER: E E");
        assertFileError("bad.json", "{\"0\": [1, \"x\"]}", "layer 0: '\"x\"' is not an expert index");
        assertFileError("bad2.json", "{\"0\": 1}", "layer 0: expected a list of expert indices");
        assertFileError("bad3.json", "{\"0\": [1", "is not valid JSON");
        assertFileError("twice.txt", "1: 2\n1: 3\n", "lists layer 1 twice");
    }

    void assertFileError(String name, String content, String part) throws IOException {
        Path file = Files.writeString(dir.resolve(name), content);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RoutingSpec.parse("drop-experts:" + file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void specsThatDoNotFitTheModelAreRefusedByName() throws IOException {
        assertRouterError("top-k:9", MIXTRAL, "--routing top-k:9: 9 is more than the model's 8 experts");
        assertRouterError("batch-top-k:9:4", MIXTRAL, "9 is more than the model's 8 experts");
        Path far = Files.writeString(dir.resolve("far.txt"), "0: 8\n");
        assertRouterError("drop-experts:" + far, MIXTRAL, "layer 0 drops expert 8, but the model has experts 0..7");
        Path most = Files.writeString(dir.resolve("most.txt"), "0: 0 1 2 3 4 5 6\n");
        assertRouterError("drop-experts:" + most, MIXTRAL, "layer 0 keeps 1 experts, fewer than the 2");
        GroupLimitedSigmoidRouter deepSeek = new GroupLimitedSigmoidRouter(2, 4, 2, true, 2.5f, new float[8]);
        assertEquals(new GroupLimitedSigmoidRouter(3, 4, 2, true, 2.5f, new float[8]),
                RoutingSpec.parse("top-k:3").router(deepSeek, 0, 8));
        assertRouterError("top-k:5", deepSeek, "reaches only 4 experts");
        assertRouterError("top-p:0.5", deepSeek, "needs a softmax top-k router");
        IllegalArgumentException layers = assertThrows(IllegalArgumentException.class,
                () -> RoutingSpec.parse("drop-experts:" + far).checkLayers(new boolean[] {false, true}));
        assertTrue(layers.getMessage().contains("layer 0, which has no routed experts"), layers.getMessage());
        RoutingSpec.parse("drop-experts:" + far).checkLayers(new boolean[] {true});
        assertThrows(IllegalArgumentException.class,
                () -> RoutingSpec.parse("drop-experts:" + far).checkLayers(new boolean[0]));
    }

    static void assertRouterError(String spec, Router own, String part) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RoutingSpec.parse(spec).router(own, 0, 8));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void specsSerializeWithTheirDropLists() throws Exception {
        Path file = Files.writeString(dir.resolve("d.txt"), "0: 1\n");
        RoutingSpec spec = RoutingSpec.parse("drop-experts:" + file);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(spec);
        }
        Files.delete(file);  // an executor needs no copy of the file
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertEquals(spec, in.readObject());
        }
    }

    @Test
    void routersOfAModelConfigFollowItsLayers() throws IOException {
        io.moescore.model.ModelConfig demo = io.moescore.model.ModelConfig.load(io.moescore.TestModels.demoModel());
        List<Router> own = RoutingSpec.MODEL.routers(demo);
        assertEquals(4, own.size());
        for (Router r : own) {
            assertEquals(new TopKSoftmaxRouter(2, true), r);
        }
        Path drop = Files.writeString(dir.resolve("d.txt"), "4: 1\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RoutingSpec.parse("drop-experts:" + drop).routers(demo));
        assertTrue(e.getMessage().contains("drops experts of layer 4, which the model (4 layers) lacks"),
                e.getMessage());
    }
}
