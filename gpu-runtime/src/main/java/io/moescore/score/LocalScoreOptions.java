package io.moescore.score;

import io.moescore.backend.Precision;
import java.nio.file.Path;

/**
 * Options of the single-process scorer.
 *
 * @param batchTokens tokens packed into one forward pass (a longer sequence still goes alone)
 */
public record LocalScoreOptions(Path model, Path input, Path output, boolean tokenLogProbs, int topK,
                                String backend, String precision, int batchTokens, int threads) {
    public LocalScoreOptions {
        if (batchTokens < 1) {
            throw new IllegalArgumentException("--batch-tokens must be at least 1, got " + batchTokens);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("--top-k must be 0 or more, got " + topK);
        }
        Precision.parse(precision);
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        }
    }
}
