package io.moescore.score;


import io.moescore.GpuTest;
import io.moescore.backend.Precision;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link LongDocumentFixtureTest}'s checks on the CUDA backend in split-bf16 (near fp32: CudaReferenceFixtureTest
 * measured a worst log-prob error of 3.1e-4): windows, truncation and continuations within 2e-2 of transformers;
 * is_greedy held where the best logit leads the second by more than 0.1 (the argmax of each continuation position
 * comes from the lm_head step's top-k rows, copied to the host). Deterministic mode, so a window's scores do not
 * depend on the rows it shares a batch with.
 */
@GpuTest
class CudaLongDocumentFixtureTest {
    @TempDir
    Path dir;

    LongDocumentFixtureTest.Checks cuda() {
        return new LongDocumentFixtureTest.Checks(dir, ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cuda")
                .with(ScoreSettings.PRECISION, Precision.SPLIT_BF16).with(ScoreSettings.DETERMINISTIC, true),
                2e-2, 0.1);
    }

    @ParameterizedTest
    @MethodSource("io.moescore.score.LongDocumentFixtureTest#models")
    void stridedPerplexityMatchesTransformers(Path model) throws IOException {
        cuda().strided(model);
    }

    @ParameterizedTest
    @MethodSource("io.moescore.score.LongDocumentFixtureTest#models")
    void truncationMatchesTransformers(Path model) throws IOException {
        cuda().truncated(model);
    }

    @ParameterizedTest
    @MethodSource("io.moescore.score.LongDocumentFixtureTest#models")
    void continuationsMatchTransformers(Path model) throws IOException {
        cuda().continuations(model);
    }
}
