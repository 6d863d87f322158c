package io.moescore.bench;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.engine.Engine;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.TokenBatch;
import io.moescore.model.ModelConfig;
import io.moescore.sparse.SparsityPattern;
import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import jcuda.CudaException;
import jcuda.driver.CUdeviceptr;

/**
 * The largest token batch a full Mixtral-8x7B-shaped stack (32 layers) leaves room for on this GPU, dense vs
 * 2:4 vs 128:2:8 experts. The checkpoint holds a few of the layers (a 4-layer synthetic one fits the machine's disk); the
 * missing layers' weights are stood in for by device allocations of exactly their size (bf16 attention and
 * norms, experts dense at 2 bytes per weight, 2:4 at 1.125 with metadata, 128:2:8 at 0.566 with metadata and keep
 * bytes). Then token batches double (then
 * bisect, to 1k tokens) until the engine has to split a batch for memory: the largest batch scored whole is
 * the answer. A stack that does not fit at all says so.
 *
 * One kind of experts per JVM: memory a run leaves behind (pool blocks of other threads, the CUDA context's own)
 * shrank the next run's answer (2:4 after 128:2:8 in one JVM: 49,152 tokens against 131,072 alone).
 *
 *   java ... io.moescore.bench.CapacityBenchmark MIXTRAL_DIR OUT.json [experts=dense|2:4|128:2:8] [layers=32]
 *       [seq=4096]
 */
public final class CapacityBenchmark {
    private CapacityBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        File out = new File(args[1]);
        int layers = 32;
        int seq = 4096;
        SparsityPattern pattern = SparsityPattern.TWO_FOUR;
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "layers" -> layers = Integer.parseInt(kv[1]);
                case "seq" -> seq = Integer.parseInt(kv[1]);
                case "experts" -> pattern = kv[1].equals("dense") ? null : SparsityPattern.parse(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("model", model.toString());
        root.put("stack_layers", layers);
        root.put("sequence_length", seq);
        ArrayNode runs = root.putArray("runs");
        String name = pattern == null ? "dense" : pattern.userName();
        CudaBackend backend = new CudaBackend(CudaOptions.device(0));
        root.put("device", backend.deviceName());
        ObjectNode run = runs.addObject();
        run.put("experts", name);
        List<CUdeviceptr> standIns = new ArrayList<>();
        try (Engine engine = Engine.load(model, backend, pattern)) {
            ModelConfig c = engine.config();
            long h = c.hiddenSize();
            long attention = 2 * (2 * h * c.numHeads() * c.headDim() + 2 * h * c.numKvHeads() * c.headDim());
            double expertBytesPerWeight = pattern == null ? 2.0 : pattern.bytesPerWeight();
            long experts = (long) (3L * c.numExperts() * h * c.expertFfnSize() * expertBytesPerWeight);
            long perLayer = attention + experts + 4 * h;
            long missing = (long) (layers - c.numLayers()) * perLayer;
            run.put("bytes_per_layer", perLayer);
            run.put("stand_in_bytes", missing);
            boolean fits = true;
            try {
                for (long left = missing; left > 0; left -= 1L << 30) {
                    CUdeviceptr p = new CUdeviceptr();
                    cuMemAlloc(p, Math.min(left, 1L << 30));
                    standIns.add(p);
                }
            } catch (CudaException e) {
                fits = false;
                run.put("note", "the " + layers + "-layer stack does not fit: " + e.getMessage());
                System.out.printf("%s experts: the %d-layer stack does not fit (%d bytes per layer)%n",
                        name, layers, perLayer);
            }
            run.put("fits", fits);
            if (fits) {
                int largest = largestWholeBatch(engine, seq, c.vocabSize());
                run.put("largest_whole_batch_tokens", largest);
                System.out.printf("%s experts, %d-layer stack (%.1f GB of weights): largest batch scored whole %d"
                        + " tokens%n", name, layers, (double) layers * perLayer / 1e9, largest);
            }
        } finally {
            standIns.forEach(p -> cuMemFree(p));
        }
        json.writerWithDefaultPrettyPrinter().writeValue(out, root);
    }

    /** Doubles the batch from 1k tokens until the engine splits one for memory, then bisects to 1k tokens. */
    private static int largestWholeBatch(Engine engine, int seq, int vocab) {
        int good = 0;
        int bad = -1;
        for (int t = 1024; bad < 0; t *= 2) {
            if (scoresWhole(engine, t, seq, vocab)) {
                good = t;
            } else {
                bad = t;
            }
            if (t >= 1 << 22) {
                break;
            }
        }
        while (bad - good > 1024) {
            int mid = (good + bad) / 2 / 1024 * 1024;
            if (scoresWhole(engine, mid, seq, vocab)) {
                good = mid;
            } else {
                bad = mid;
            }
        }
        return good;
    }

    private static boolean scoresWhole(Engine engine, int tokens, int seq, int vocab) {
        Random random = new Random(tokens);
        int sequences = (tokens + seq - 1) / seq;
        int[][] batch = new int[sequences][];
        for (int s = 0; s < sequences; s++) {
            batch[s] = random.ints(Math.min(seq, tokens - s * seq), 0, vocab).toArray();
        }
        ScoreBatch result = engine.score(TokenBatch.of(batch), ScoreOptions.SUMS_ONLY);
        System.out.printf("  %7d tokens: %s%n", tokens, result.memorySplits() == 0 ? "whole"
                : "split " + result.memorySplits() + " times");
        return result.memorySplits() == 0;
    }
}
