package io.moescore.spark;

import java.io.Serializable;
import java.util.Map;

/**
 * What every task needs to score its partition; sent to executors with the task.
 *
 * @param modelUri      the model directory: a local path (present on every node) or any Hadoop FS URI
 * @param backend       auto, cpu or cuda
 * @param precision     bf16 or split-bf16 (GPU backends)
 * @param batchTokens   tokens per forward pass
 * @param cpuThreads    threads of the CPU backend per executor (0: all cores)
 * @param hadoopConf    the driver's Hadoop settings, to read the model on executors
 */
public record ScoringSpec(String modelUri, String backend, String precision, int batchTokens, boolean tokenLogProbs, int topK,
                          String idColumn, String tokensColumn, String textColumn, int cpuThreads,
                          Map<String, String> hadoopConf) implements Serializable {
    public ScoringSpec {
        if (batchTokens < 1) {
            throw new IllegalArgumentException("batch tokens must be at least 1, got " + batchTokens);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be 0 or more, got " + topK);
        }
        hadoopConf = Map.copyOf(hadoopConf);
    }
}
