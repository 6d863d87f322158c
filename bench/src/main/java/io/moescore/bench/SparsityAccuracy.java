package io.moescore.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.engine.Engine;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.sparsify.CalibrationRows;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.Sparsifier;
import io.moescore.sparse.VectorSparse;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Perplexity of a model dense and pruned 2:4 by magnitude, wanda, SparseGPT one-shot, SparseGPT sequential and
 * SparseGPT sequential with expert reconstruction, and 128:2:8 by any of those (the calibrated ones calibrated
 * on a separate file), on held-out rows, with our engine (CPU backend, fp32). For the demo model (the tables in
 * bench/NOTES.md, "2:4 accuracy"):
 *
 *   java ... io.moescore.bench.SparsityAccuracy demo/tiny-moe-code demo/calibration.jsonl demo/input.jsonl code- OUT.json
 *       [RUN,RUN,...] [RECONSTRUCT_STEPS]
 * runs: magnitude, wanda, sparsegpt, sparsegpt-sequential, sparsegpt-sequential-reconstructed (2:4), each also with
 * -128:2:8 appended (default: the five 2:4 runs, magnitude-128:2:8, wanda-128:2:8, sparsegpt-sequential-128:2:8);
 * reconstruction steps default 200 (ExpertReconstruction.Options.of).
 * Results are keyed by run, with '-' and ':' as '_' (wanda_128_2_8_perplexity).
 */
public final class SparsityAccuracy {
    private SparsityAccuracy() {
    }

    static double perplexity(Path model, List<int[]> rows) {
        try (CpuBackend cpu = new CpuBackend(Runtime.getRuntime().availableProcessors());
             Engine engine = Engine.load(model, cpu)) {
            ScoreBatch b = engine.score(TokenBatch.of(rows.toArray(int[][]::new)), ScoreOptions.SUMS_ONLY);
            double sum = 0;
            long n = 0;
            for (SequenceScore s : b.scores()) {
                sum += s.sumLogProb();
                n += s.numTokens() - 1;
            }
            return Math.exp(-sum / n);
        }
    }

    public static void main(String[] args) throws IOException {
        Path model = Path.of(args[0]);
        List<int[]> calibration = CalibrationRows.read(Path.of(args[1]));
        List<int[]> eval = CalibrationRows.read(Path.of(args[2]), args[3]);
        Path tmp = Files.createTempDirectory("moescore-sparsity");
        ObjectNode root = new ObjectMapper().createObjectNode();
        double dense = perplexity(model, eval);
        root.put("model", model.toString());
        root.put("eval_rows", eval.size());
        root.put("calibration_rows", calibration.size());
        root.put("calibration_tokens", calibration.stream().mapToLong(r -> r.length).sum());
        root.put("dense_perplexity", dense);
        System.out.printf("%-20s %10s %8s %s%n", "method", "perplexity", "x dense", "fell back to magnitude");
        System.out.printf("%-20s %10.2f %8.2f%n", "dense", dense, 1.0);
        String[] runs = args.length > 5 ? args[5].split(",") : new String[] {"magnitude", "wanda", "sparsegpt",
            "sparsegpt-sequential", "sparsegpt-sequential-reconstructed", "magnitude-" + VectorSparse.PATTERN,
            "wanda-" + VectorSparse.PATTERN, "sparsegpt-sequential-" + VectorSparse.PATTERN};
        int steps = args.length > 6 ? Integer.parseInt(args[6]) : 200;
        for (String run : runs) {
            String key = run.replace('-', '_').replace(':', '_');
            Path out = tmp.resolve(key);
            boolean sequential = run.contains("-sequential");
            ExpertReconstruction.Options reconstruction = run.contains("-reconstructed")
                    ? ExpertReconstruction.Options.of(steps) : ExpertReconstruction.Options.NONE;
            String pattern = run.endsWith("-" + VectorSparse.PATTERN) ? VectorSparse.PATTERN : "2:4";
            long start = System.nanoTime();
            Sparsifier.Result result = Sparsifier.sparsify(model, out, pattern, run.split("-")[0], sequential,
                    reconstruction, calibration);
            root.put(key + "_seconds", (System.nanoTime() - start) / 1e9);
            double ppl = perplexity(out, eval);
            root.put(key + "_perplexity", ppl);
            System.out.printf("%-20s %10.2f %8.2f %s%n", run, ppl, ppl / dense, result.fallbacksPerLayer());
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(new File(args[4]), root);
    }
}
