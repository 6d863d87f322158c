package io.moescore.cli;

import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moescore score-local}: the single-process scorer, JSON lines in and out. */
@Command(name = "score-local", mixinStandardHelpOptions = true,
        description = "Scores a JSON-lines file in this process (no Spark). Input lines: {\"id\": ..., \"tokens\": [...]}.")
final class ScoreLocalCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Hugging Face model directory (config.json + safetensors)")
    Path model;

    @Option(names = "--input", required = true, description = "input .jsonl")
    Path input;

    @Option(names = "--output", required = true, description = "output .jsonl (a NAME.summary.json is written beside it)")
    Path output;

    @Option(names = "--token-logprobs", description = "also write each token's log-prob")
    boolean tokenLogProbs;

    @Option(names = "--top-k", defaultValue = "0", description = "also write the K most likely tokens after the last one")
    int topK;

    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--precision", defaultValue = "bf16",
            description = "GPU precision: bf16, fp16 (fp16 checkpoints exactly, 11-bit GEMM inputs, same speed) or split-bf16 "
                    + "(near-fp32 log-probs, 2-3x the GEMM work) (default: ${DEFAULT-VALUE})")
    String precision;

    @Option(names = "--deterministic", description = "batch-invariant GPU scores: a sequence's scores are "
            + "bit-identical whatever it is batched with, 1-4% slower")
    boolean deterministic;

    @Option(names = "--batch-tokens", defaultValue = "8192", description = "tokens per forward pass (default: ${DEFAULT-VALUE})")
    int batchTokens;

    @Option(names = "--threads", description = "CPU backend threads (default: all cores)")
    Integer threads;

    @Option(names = "--allow-nonfinite", description = "load weights holding NaN or infinities (refused by default, "
            + "naming the tensor); rows whose scores come out non-finite get an error")
    boolean allowNonfinite;

    @Override
    public Integer call() {
        LocalScoreOptions options;
        try {
            options = new LocalScoreOptions(model, input, output, tokenLogProbs, topK, backend, precision, batchTokens,
                    threads == null ? Runtime.getRuntime().availableProcessors() : threads, deterministic,
                    allowNonfinite);
        } catch (IllegalArgumentException e) {
            System.err.println("moescore score-local: " + e.getMessage());
            return LocalScorer.EXIT_BAD_INVOCATION;
        }
        return new LocalScorer(System.err).run(options);
    }
}
