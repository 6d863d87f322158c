package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.batch.TokenRouting;
import io.moescore.engine.ScoreOptions;
import io.moescore.score.BatchPlanner;
import io.moescore.spark.trace.TokenTrace;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --routing-trace-tokens} across task attempts: every attempt writes its token file beside its loads file;
 * the driver keeps those of the attempts that reported (succeeded) and drops the failed attempts' files.
 */
class RoutingTraceAttemptsTest {
    @TempDir
    Path dir;

    /** A scorer of one batch of {@code sequences} 3-token sequences, 2 layers, each token to expert 0 and 1. */
    private static BatchPlanner.Scorer scorer(List<Boolean> askedForTokens) {
        return (batch, options) -> {
            askedForTokens.add(options.tokenRouting());
            TokenRouting routing = new TokenRouting();
            ExpertLoad load = new ExpertLoad(2, 4);
            List<SequenceScore> scores = new ArrayList<>();
            for (int s = 0; s < batch.numSequences(); s++) {
                for (int l = 0; l < 2; l++) {
                    routing.add(s, l, new TokenRouting.Choices(new int[] {0, 2, 4, 6}, new int[] {0, 1, 0, 1, 0, 1},
                            new float[] {.5f, .5f, .5f, .5f, .5f, .5f}));
                    load.add(l, new int[] {3, 3, 0, 0});
                }
                scores.add(SequenceScore.failed(3, "stand-in"));
            }
            return new ScoreBatch(scores, load, 0, routing);
        };
    }

    private static void attempt(RoutingTraceOutput out, int partition, int attempt, int sequences,
                                List<Boolean> asked) {
        try (TaskTrace trace = out.open(0, partition, attempt, "driver", 0)) {
            int[][] rows = new int[sequences][];
            java.util.Arrays.setAll(rows, i -> new int[] {1, 2, 3});
            trace.observe(scorer(asked)).score(TokenBatch.of(rows), ScoreOptions.SUMS_ONLY);
        }
    }

    private static TaskStats succeeded(int partition, int attempt) {
        return new TaskStats(0, partition, attempt, "driver", "localhost", "cpu", 1, 0, 3, 0, 1, new long[2][4]);
    }

    @Test
    void failedAttemptsLeaveNoTokenFiles() throws IOException {
        Path trace = dir.resolve("trace");
        RoutingTraceOutput out = RoutingTraceOutput.of(trace.toString(), "parquet", true, new Configuration());
        List<Boolean> asked = new ArrayList<>();
        attempt(out, 0, 0, 5, asked);  // fails: never reports
        attempt(out, 0, 1, 2, asked);  // its retry
        attempt(out, 1, 0, 3, asked);
        assertEquals(List.of(true, true, true), asked, "the traced scorer asks for token routing");
        assertEquals(2, out.commit(List.of(succeeded(0, 1), succeeded(1, 0)), "model"));

        assertFalse(Files.exists(trace.resolve("_attempts")), "the failed attempt's files are gone");
        try (Stream<Path> list = Files.list(trace.resolve(TokenTrace.FOLDER))) {
            assertEquals(List.of("part-00000-s0.parquet", "part-00001-s0.parquet"), list.map(p -> p.getFileName()
                    .toString()).filter(n -> !n.startsWith(".")).sorted().toList());
        }
        // (2 + 3) sequences x 2 layers: the failed attempt's 5 sequences are not there
        assertEquals(10, TokenTrace.records(trace));
        com.fasterxml.jackson.databind.JsonNode manifest = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(trace.resolve("_routing_trace.json").toFile()).get("token_routing");
        assertEquals(2, manifest.get("files").asInt());
        assertEquals(TokenTrace.FOLDER, manifest.get("folder").asText());

        // without tokens: no token files, nothing asked of the scorer
        Path loadsOnly = dir.resolve("loads-only");
        RoutingTraceOutput plain = RoutingTraceOutput.of(loadsOnly.toString(), "parquet", false, new Configuration());
        List<Boolean> notAsked = new ArrayList<>();
        attempt(plain, 0, 0, 2, notAsked);
        plain.commit(List.of(succeeded(0, 0)), "model");
        assertEquals(List.of(false), notAsked);
        assertEquals(-1, TokenTrace.records(loadsOnly));
        assertFalse(new com.fasterxml.jackson.databind.ObjectMapper().readTree(loadsOnly.resolve("_routing_trace.json")
                .toFile()).has("token_routing"));
    }
}
