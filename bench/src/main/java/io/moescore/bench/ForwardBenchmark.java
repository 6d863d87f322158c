package io.moescore.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.Backend;
import io.moescore.backend.select.Backends;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.Kernels;
import io.moescore.engine.Engine;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.TokenBatch;
import io.moescore.bench.roofline.OpCosts;
import io.moescore.sparse.SparsityPattern;
import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

/**
 * Tokens per second of the whole scoring forward pass (embedding to per-token log-probs) on a model directory,
 * for several batch sizes of 512-token sequences of random ids; median of repeats after a warm-up, plus device
 * time per op on the CUDA backend. Peers are timed by bench/python/bench_peer.py on the same
 * checkpoint in the same device call (README, benchmarks).
 *
 *   java ... io.moescore.bench.ForwardBenchmark MODEL_DIR OUT.json [backend=cuda] [tokens=2048,8192,32768]
 *        [seq=512] [repeats=5] [experts=dense|2:4|128:2:8] [precision=bf16|fp16|split-bf16] [deterministic=false|true]
 *        [kernels=tuned|wgmma|wgmma_n128|wgmma_ws|wgmma_paired|mma_sync] (cuda: pin one kernel family, default the
 *        tuner's pick)
 */
public final class ForwardBenchmark {
    private ForwardBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: ForwardBenchmark MODEL_DIR OUT.json [backend=cuda] [tokens=2048,8192,32768] "
                    + "[seq=512] [repeats=5] [experts=dense|2:4|128:2:8] [precision=bf16|fp16|split-bf16] "
                    + "[deterministic=false|true] [kernels=" + Arrays.toString(Kernels.values()) + "]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        File out = new File(args[1]);
        String backendName = "cuda";
        int[] tokenCounts = {2048, 8192, 32768};
        int seq = 512;
        int repeats = 5;
        SparsityPattern prunedOnLoad = null;
        Precision precision = Precision.BF16;
        boolean deterministic = false;
        Kernels kernels = Kernels.TUNED;
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "backend" -> backendName = kv[1];
                case "tokens" -> tokenCounts = Arrays.stream(kv[1].split(",")).mapToInt(Integer::parseInt).toArray();
                case "seq" -> seq = Integer.parseInt(kv[1]);
                case "repeats" -> repeats = Integer.parseInt(kv[1]);
                case "precision" -> precision = Precision.parse(kv[1]);
                case "deterministic" -> deterministic = Boolean.parseBoolean(kv[1]);
                case "kernels" -> kernels = Kernels.valueOf(kv[1].toUpperCase(java.util.Locale.ROOT));
                case "experts" -> prunedOnLoad = kv[1].equals("dense") ? null : SparsityPattern.parse(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        long loadStart = System.nanoTime();
        try (Backend backend = kernels == Kernels.TUNED
                ? Backends.open(backendName, Runtime.getRuntime().availableProcessors(), 0, precision, deterministic)
                : new CudaBackend(CudaOptions.device(0).withPrecision(precision).withKernels(kernels)
                        .withDeterministic(deterministic));
             Engine engine = Engine.load(model, backend, prunedOnLoad)) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            root.put("model", model.toString());
            root.put("config", engine.config().toString());
            root.set("dims", json.valueToTree(OpCosts.Dims.of(engine.config())));
            root.put("device", backend.deviceName());
            root.put("load_seconds", loadSeconds);
            root.put("precision", precision.userName());
            root.put("deterministic", deterministic);
            root.put("kernels", kernels.name());
            root.put("experts", prunedOnLoad == null ? "dense"
                    : prunedOnLoad.userName() + " (magnitude, pruned on load)");
            System.out.printf("%s on %s, loaded in %.1f s%n", engine.config(), backend.deviceName(), loadSeconds);
            ArrayNode runs = root.putArray("runs");
            Random random = new Random(42);
            for (int tokens : tokenCounts) {
                int sequences = Math.max(1, tokens / seq);
                int[][] batch = new int[sequences][];
                for (int s = 0; s < sequences; s++) {
                    batch[s] = random.ints(Math.min(seq, tokens), 0, engine.config().vocabSize()).toArray();
                }
                TokenBatch tb = TokenBatch.of(batch);
                ScoreOptions options = ScoreOptions.SUMS_ONLY;
                engine.score(tb, options); // warm-up: kernels loaded, pools filled
                double[] seconds = new double[repeats];
                for (int r = 0; r < repeats; r++) {
                    long t0 = System.nanoTime();
                    ScoreBatch result = engine.score(tb, options);
                    seconds[r] = (System.nanoTime() - t0) / 1e9;
                    if (result.scores().get(0).error() != null) {
                        throw new IllegalStateException(result.scores().get(0).error());
                    }
                }
                Arrays.sort(seconds);
                double median = seconds[repeats / 2];
                ObjectNode run = runs.addObject();
                run.put("tokens", (long) sequences * batch[0].length);
                run.put("sequence_length", batch[0].length);
                run.put("median_seconds", median);
                run.put("tokens_per_second", sequences * batch[0].length / median);
                System.out.printf("%6d tokens: %8.1f ms  %10.0f tokens/s%n", sequences * batch[0].length,
                        median * 1e3, sequences * batch[0].length / median);
                if (backend instanceof CudaBackend cuda) {
                    cuda.startProfiling();
                    engine.score(tb, options);
                    Map<String, Double> ops = cuda.drainProfile();
                    ObjectNode perOp = run.putObject("op_ms");
                    ops.forEach(perOp::put);
                    System.out.println("        per op (ms): " + ops);
                }
            }
            if (backend instanceof CudaBackend cuda) {
                root.putPOJO("tuned_kernels", cuda.tunedKernels());
            }
        }
        json.writerWithDefaultPrettyPrinter().writeValue(out, root);
    }
}
