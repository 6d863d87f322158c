package io.moescore.bench.portability;

import java.io.Serializable;
import java.util.List;
import java.util.Locale;

/**
 * What the portability job measures. {@link #full()}: the expert-layer shapes and token counts of the dual-sparse
 * benchmark (io.moescore.bench.ExpertLayerBenchmark), dense and 2:4, plus attention and lm_head at two sizes each and
 * a short model-level run; sized for a GPU (a few minutes on an H100). {@link #quick()}: the same kernels at toy
 * sizes, so the CPU backend finishes in seconds (CI).
 */
public record KernelSuite(String name, List<ExpertShape> expertShapes, List<Integer> expertTokens,
                          List<AttentionShape> attentionShapes, List<LmHeadShape> lmHeadShapes,
                          int modelSequences, int modelSequenceLength, int warmups, int repeats)
        implements Serializable {

    /** One MoE expert layer: hidden size, expert ffn size, experts, experts per token. */
    public record ExpertShape(String name, int hidden, int ffn, int experts, int topK) implements Serializable {
        String describe() {
            return name + " " + hidden + "x" + ffn + " E" + experts + " top" + topK;
        }
    }

    /** Causal grouped-query attention over {@code sequences} packed sequences of {@code length} tokens. */
    public record AttentionShape(int heads, int kvHeads, int headDim, int length, int sequences)
            implements Serializable {
        String describe() {
            return heads + "/" + kvHeads + " heads x " + headDim + ", " + sequences + " x " + length + " tokens";
        }
    }

    /** The log-prob head: tokens x hidden against a vocab x hidden matrix. */
    public record LmHeadShape(int tokens, int hidden, int vocab) implements Serializable {
        String describe() {
            return "hidden " + hidden + " vocab " + vocab;
        }
    }

    public static KernelSuite full() {
        return new KernelSuite("full",
                List.of(new ExpertShape("Mixtral-8x7B", 4096, 14336, 8, 2),
                        new ExpertShape("OLMoE-1B-7B", 2048, 1024, 64, 8),
                        new ExpertShape("Qwen1.5-MoE-A2.7B", 2048, 1408, 60, 4),
                        new ExpertShape("Qwen3-30B-A3B", 2048, 768, 128, 8)),
                List.of(512, 4096, 16384),
                List.of(new AttentionShape(32, 8, 128, 1024, 4), new AttentionShape(16, 16, 128, 4096, 1)),
                List.of(new LmHeadShape(4096, 2048, 50304), new LmHeadShape(4096, 4096, 32000)),
                8, 512, 2, 10);
    }

    public static KernelSuite quick() {
        return new KernelSuite("quick",
                List.of(new ExpertShape("mini-8e-top2", 256, 512, 8, 2),
                        new ExpertShape("mini-16e-top4", 128, 128, 16, 4)),
                List.of(64, 256),
                List.of(new AttentionShape(4, 2, 32, 64, 2)),
                List.of(new LmHeadShape(64, 128, 1024)),
                2, 32, 1, 3);
    }

    /** The suite named by {@code --suite}. */
    public static KernelSuite named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "quick" -> quick();
            case "full" -> full();
            default -> throw new IllegalArgumentException("--suite must be quick or full, not '" + name + "'");
        };
    }
}
