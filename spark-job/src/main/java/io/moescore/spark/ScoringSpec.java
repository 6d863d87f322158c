package io.moescore.spark;

import io.moescore.backend.Precision;
import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * What every task needs to score its partition; sent to executors with the task.
 *
 * @param modelUri      the model directory: a local path (present on every node) or any Hadoop FS URI
 * @param backend       auto, cpu or cuda
 * @param precision     bf16, fp16 or split-bf16 (GPU backends)
 * @param deterministic batch-invariant GPU scores (CudaBackend's deterministic mode)
 * @param batchTokens   tokens per forward pass
 * @param tokensColumn  the token ids column (array&lt;int&gt; or array&lt;bigint&gt;), used where present and not null
 * @param textColumn    the text column (string), tokenized with the model's tokenizer where there are no tokens
 * @param cpuThreads    threads of the CPU backend per executor (0: all cores)
 * @param hadoopConf    the driver's Hadoop settings, to read the model on executors
 * @param allowNonfinite load weights holding NaN or infinities (refused by default)
 */
public record ScoringSpec(String modelUri, String backend, String precision, boolean deterministic, int batchTokens,
                          boolean tokenLogProbs,
                          int topK, String tokensColumn, String textColumn, int cpuThreads,
                          Map<String, String> hadoopConf, boolean allowNonfinite) implements Serializable {
    public static final List<String> BACKENDS = List.of("auto", "cpu", "cuda");

    public ScoringSpec(String modelUri, String backend, String precision, boolean deterministic, int batchTokens,
                       boolean tokenLogProbs, int topK, String tokensColumn, String textColumn, int cpuThreads,
                       Map<String, String> hadoopConf) {
        this(modelUri, backend, precision, deterministic, batchTokens, tokenLogProbs, topK, tokensColumn, textColumn,
                cpuThreads, hadoopConf, false);
    }

    public ScoringSpec {
        if (modelUri == null || modelUri.isBlank()) {
            throw new IllegalArgumentException("no model directory given");
        }
        if (!BACKENDS.contains(backend)) {
            throw new IllegalArgumentException("backend '" + backend + "' is not one of " + BACKENDS);
        }
        Precision.parse(precision);
        if (batchTokens < 1) {
            throw new IllegalArgumentException("batch tokens must be at least 1, got " + batchTokens);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be 0 or more, got " + topK);
        }
        hadoopConf = Map.copyOf(hadoopConf);
    }

    /** This spec for another model directory. */
    public ScoringSpec withModel(String uri) {
        return new ScoringSpec(uri, backend, precision, deterministic, batchTokens, tokenLogProbs, topK, tokensColumn,
                textColumn, cpuThreads, hadoopConf, allowNonfinite);
    }
}
