package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Which norms the engine declares read only by matrix products ({@link Backend#addRmsNormForProducts}: a backend may
 * then drop their fp32 values): the input norm of every layer after the first and the final norm always; the
 * feed-forward input only where nothing reads its fp32 values, so not with Qwen2-MoE's one-row shared-expert gate
 * nor with an observer of the experts' inputs. Counted through a recording proxy of the CPU backend, whose scores
 * stay those of the backend itself.
 */
class NormReadersTest {
    /** A CPU backend whose Backend calls are counted by method name. */
    private static Backend recording(CpuBackend cpu, Map<String, AtomicInteger> calls) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    calls.computeIfAbsent(method.getName(), k -> new AtomicInteger()).incrementAndGet();
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private record Counts(int forProducts, int full, ScoreBatch scores) {
    }

    private static Counts score(Path model, RoutedInputs seen) {
        Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
        try (CpuBackend cpu = new CpuBackend(2); Engine engine = Engine.load(model, recording(cpu, calls))) {
            int[][] tokens = {{1, 5, 9, 2, 7}, {3, 3, 8}};
            ScoreBatch scores = seen == null ? engine.score(TokenBatch.of(tokens), new ScoreOptions(true, 0))
                    : engine.score(TokenBatch.of(tokens), new ScoreOptions(true, 0), seen);
            return new Counts(count(calls, "addRmsNormForProducts"), count(calls, "addRmsNorm"), scores);
        }
    }

    private static int count(Map<String, AtomicInteger> calls, String name) {
        AtomicInteger n = calls.get(name);
        return n == null ? 0 : n.get();
    }

    @Test
    void productsAloneReadTheNormsTheEngineSaysSo() {
        Path mixtral = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf/mixtral-bf16");
        int layers = io.moescore.model.ModelConfig.load(mixtral).numLayers();
        Counts plain = score(mixtral, null);
        // per layer: the feed-forward input and the next layer's input (or the final) norm, both for products
        assertEquals(2 * layers, plain.forProducts(), "Mixtral: every fused norm is read by products alone");
        assertEquals(0, plain.full());
        // an observer of the experts' inputs reads the feed-forward input's fp32 values
        Counts observed = score(mixtral, (layer, expert, x, rows, hidden, swiglu, ffn) -> { });
        assertEquals(layers, observed.forProducts(), "with an observer, only the input and final norms");
        assertEquals(layers, observed.full());
        for (int i = 0; i < plain.scores().scores().size(); i++) {
            assertArrayEquals(plain.scores().scores().get(i).tokenLogProbs(),
                    observed.scores().scores().get(i).tokenLogProbs(), "scores do not depend on the declaration");
        }
        // Qwen2-MoE's one-row shared-expert gate reads its MoE layer's feed-forward input in fp32; the fixture's
        // layer 1 is dense (mlp_only_layers [1]), its feed-forward input read by the dense ffn alone
        Path qwen2 = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf/qwen2moe-fp32");
        io.moescore.model.ModelConfig qwenConfig = io.moescore.model.ModelConfig.load(qwen2);
        assertEquals(2, qwenConfig.numLayers(), "the fixture this test describes");
        Counts gated = score(qwen2, null);
        assertEquals(3, gated.forProducts(), "Qwen2-MoE: the input and final norms and the dense layer's input");
        assertEquals(1, gated.full(), "Qwen2-MoE: the gated MoE layer's feed-forward input keeps its fp32 values");
    }
}
