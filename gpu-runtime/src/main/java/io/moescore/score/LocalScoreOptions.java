package io.moescore.score;

import io.moescore.backend.Precision;
import java.nio.file.Path;

/**
 * Options of the single-process scorer.
 *
 * @param batchTokens   tokens packed into one forward pass (a longer sequence still goes alone)
 * @param deterministic batch-invariant GPU scores (CudaBackend's deterministic mode)
 * @param allowNonfinite load weights holding NaN or infinities (refused by default); rows whose scores come out
 *                       non-finite get an error
 */
public record LocalScoreOptions(Path model, Path input, Path output, boolean tokenLogProbs, int topK,
                                String backend, String precision, int batchTokens, int threads,
                                boolean deterministic, boolean allowNonfinite) {
    public LocalScoreOptions(Path model, Path input, Path output, boolean tokenLogProbs, int topK, String backend,
                             String precision, int batchTokens, int threads, boolean deterministic) {
        this(model, input, output, tokenLogProbs, topK, backend, precision, batchTokens, threads, deterministic, false);
    }

    /** The default mode: GPU scores may differ in the last bits with what a sequence is batched with. */
    public LocalScoreOptions(Path model, Path input, Path output, boolean tokenLogProbs, int topK, String backend,
                             String precision, int batchTokens, int threads) {
        this(model, input, output, tokenLogProbs, topK, backend, precision, batchTokens, threads, false);
    }

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
