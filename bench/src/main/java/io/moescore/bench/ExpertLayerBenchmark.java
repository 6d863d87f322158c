package io.moescore.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.Kernels;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.SparsityPattern;
import io.moescore.sparse.VectorSparse;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * One MoE expert layer (routing, gate+up with SwiGLU, down with the weighted combine) on the CUDA backend,
 * dense bf16 experts against the same experts pruned 2:4 and 128:2:8 (magnitude) on the sparse kernels (the
 * 128:2:8 column computes a quarter of the weights: dense-equivalent TFLOP/s counts all of them), at the shapes of
 * real models and 512 / 4096 / 16384 tokens with random routing. Median device time of 10 runs after warm-up
 * (CUDA events), and dense-equivalent TFLOP/s = 2 x tokens x top_k x 3 x hidden x ffn / time. The PyTorch
 * peers run in bench/python/bench_expert_layer.py in the same device call.
 *
 *   java ... io.moescore.bench.ExpertLayerBenchmark OUT.json [shapes=mixtral,olmoe,qwen15,qwen3] [tokens=512,4096,16384]
 *       [precision=bf16|fp16]
 */
public final class ExpertLayerBenchmark {
    record Shape(String name, int hidden, int ffn, int experts, int topK) {
    }

    static final Map<String, Shape> SHAPES = Map.of(
            "mixtral", new Shape("Mixtral-8x7B", 4096, 14336, 8, 2),
            "olmoe", new Shape("OLMoE-1B-7B", 2048, 1024, 64, 8),
            "qwen15", new Shape("Qwen1.5-MoE-A2.7B", 2048, 1408, 60, 4),
            "qwen3", new Shape("Qwen3-30B-A3B", 2048, 768, 128, 8));

    private ExpertLayerBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        File out = new File(args[0]);
        String[] shapes = {"mixtral", "olmoe", "qwen15", "qwen3"};
        int[] tokenCounts = {512, 4096, 16384};
        Precision precision = Precision.BF16;
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            if (kv[0].equals("shapes")) {
                shapes = kv[1].split(",");
            } else if (kv[0].equals("tokens")) {
                tokenCounts = Arrays.stream(kv[1].split(",")).mapToInt(Integer::parseInt).toArray();
            } else if (kv[0].equals("precision")) {
                precision = Precision.parse(kv[1]);
            }
        }
        CudaOptions options = CudaOptions.device(0).withPrecision(precision);
        CudaBackend gpu = new CudaBackend(options);
        // the tuned kernels, then on a Hopper each family pinned: wgmma 128x256 / wgmma.sp, wgmma 128x128,
        // warp-specialized wgmma 128x256 (dense; 2:4 as the first), paired wgmma 128x128 (dense; 2:4 as the second),
        // mma.sync / mma.sp
        Map<String, CudaBackend> backends = new java.util.LinkedHashMap<>();
        backends.put("", gpu);
        if (gpu.gemmPath().startsWith("tuned")) {
            backends.put("-wgmma", new CudaBackend(options.withKernels(Kernels.WGMMA)));
            backends.put("-wgmma-n128", new CudaBackend(options.withKernels(Kernels.WGMMA_N128)));
            backends.put("-wgmma-ws", new CudaBackend(options.withKernels(Kernels.WGMMA_WS)));
            backends.put("-wgmma-paired", new CudaBackend(options.withKernels(Kernels.WGMMA_PAIRED)));
            backends.put("-mma", new CudaBackend(options.withKernels(Kernels.MMA_SYNC)));
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("device", gpu.deviceName());
        root.put("precision", precision.userName());
        root.put("dense_gemm", gpu.gemmPath());
        root.put("sparse_mma", gpu.sparsePath());
        ArrayNode rows = root.putArray("runs");
        Random random = new Random(7);
        Path dir = Files.createTempDirectory("moescore-expert-bench");
        System.out.printf("%-18s %6s %-16s %9s %9s%n", "shape", "tokens", "kernel", "ms", "TFLOP/s");
        for (String key : shapes) {
            Shape s = SHAPES.get(key);
            int h = s.hidden();
            int f = s.ffn();
            // random experts, pruned 2:4 and 128:2:8 by magnitude; the dense run uses the unpruned weights
            float[][][] weights = new float[3][s.experts()][];
            Sparse24.Packed[][] packed = new Sparse24.Packed[3][s.experts()];
            VectorSparse.Packed[][] vectorPacked = new VectorSparse.Packed[3][s.experts()];
            SafeTensorsWriter writer = new SafeTensorsWriter(Map.of());
            for (int e = 0; e < s.experts(); e++) {
                int[][] dims = {{f, h}, {f, h}, {h, f}};
                for (int w = 0; w < 3; w++) {
                    float[] values = new float[dims[w][0] * dims[w][1]];
                    double scale = 1 / Math.sqrt(dims[w][1]);
                    for (int i = 0; i < values.length; i++) {
                        values[i] = (float) (random.nextGaussian() * scale);
                    }
                    weights[w][e] = values;
                    writer.add("w" + w + "_" + e, DType.BF16, values, dims[w][0], dims[w][1]);
                }
            }
            java.util.stream.IntStream.range(0, 3 * s.experts()).parallel().forEach(i -> {  // pruning takes a while
                int w = i / s.experts();
                int e = i % s.experts();
                int outDim = w == 2 ? h : f;
                int inDim = w == 2 ? f : h;
                packed[w][e] = Sparse24.pack(Sparse24.pruneMagnitude(weights[w][e], outDim, inDim), outDim, inDim);
                vectorPacked[w][e] = VectorSparse.pack(VectorSparse.pruneMagnitude(weights[w][e], outDim, inDim), outDim,
                        inDim);
            });
            Path file = dir.resolve(key);
            Files.createDirectories(file);
            writer.write(file.resolve("model.safetensors"));
            // each backend uploads the experts in the layout its kernels read (pre-tiled for wgmma on a Hopper)
            ExpertWeights denseWeights;
            ExpertWeights denseMmaWeights = null;
            try (Checkpoint c = Checkpoint.open(file)) {
                WeightSlice[][] slices = new WeightSlice[3][s.experts()];
                for (int e = 0; e < s.experts(); e++) {
                    slices[0][e] = WeightSlice.whole(c.get("w0_" + e), f, h);
                    slices[1][e] = WeightSlice.whole(c.get("w1_" + e), f, h);
                    slices[2][e] = WeightSlice.whole(c.get("w2_" + e), h, f);
                }
                denseWeights = gpu.expertWeights(slices[0], slices[1], slices[2]);
                if (backends.containsKey("-mma")) {
                    denseMmaWeights = backends.get("-mma").expertWeights(slices[0], slices[1], slices[2]);
                }
            }
            Files.delete(file.resolve("model.safetensors"));
            ExpertWeights sparseWeights = gpu.sparseExpertWeights(packed[0], packed[1], packed[2]);
            ExpertWeights sparseMmaWeights = backends.containsKey("-mma")
                    ? backends.get("-mma").sparseExpertWeights(packed[0], packed[1], packed[2]) : null;
            Arrays.stream(packed).forEach(row -> Arrays.fill(row, null));
            ExpertWeights vectorSparseWeights = gpu.vectorSparseExpertWeights(vectorPacked[0], vectorPacked[1],
                    vectorPacked[2]);
            Arrays.stream(vectorPacked).forEach(row -> Arrays.fill(row, null));
            long weightsPerLayer = 3L * s.experts() * h * f;
            ObjectNode memory = root.putObject("memory_" + key);
            memory.put("dense_expert_bytes_per_layer", weightsPerLayer * 2);
            memory.put("sparse24_expert_bytes_per_layer",
                    (long) (weightsPerLayer * SparsityPattern.TWO_FOUR.bytesPerWeight()));
            memory.put("vector_sparse_expert_bytes_per_layer",
                    (long) (weightsPerLayer * SparsityPattern.VECTOR_128_2_8.bytesPerWeight()));
            for (int tokens : tokenCounts) {
                float[] x = new float[tokens * h];
                float[] logits = new float[tokens * s.experts()];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) random.nextGaussian();
                }
                for (int i = 0; i < logits.length; i++) {
                    logits[i] = (float) random.nextGaussian();
                }
                double flops = 2.0 * tokens * s.topK() * 3 * h * f;
                try (Tensor xt = gpu.activation(x, tokens, h);
                     Tensor lt = gpu.activation(logits, tokens, s.experts());
                     Tensor o = gpu.activation(tokens, h)) {
                    List<String> kernels = new java.util.ArrayList<>();
                    for (String suffix : backends.keySet()) {
                        kernels.add("dense" + suffix);
                        if (!suffix.equals("-wgmma")) {  // tuned, 128-row tiles, mma.sp (256-row tiles: mostly tuned)
                            kernels.add("2:4" + suffix);
                        }
                    }
                    kernels.add(VectorSparse.PATTERN);
                    for (String kernel : kernels) {
                        ExpertWeights w = kernel.equals(VectorSparse.PATTERN) ? vectorSparseWeights
                                : kernel.equals("2:4-mma") ? sparseMmaWeights
                                : kernel.equals("dense-mma") ? denseMmaWeights
                                : kernel.startsWith("2:4") ? sparseWeights : denseWeights;
                        CudaBackend b = kernel.equals(VectorSparse.PATTERN) ? gpu
                                : backends.get(kernel.substring(kernel.startsWith("2:4") ? 3 : 5));
                        // warm-up: at least 2 runs and half a second (after 2 runs alone, the first shape of a JVM
                        // once measured 2-3x slow: Mixtral at 512 tokens, sixth session)
                        long warmUntil = System.nanoTime() + 500_000_000L;
                        for (int r = 0; r < 2 || System.nanoTime() < warmUntil; r++) {
                            expertLayerMs(b, lt, s.topK(), xt, w, o);
                        }
                        double[] ms = new double[10];
                        for (int r = 0; r < ms.length; r++) {
                            ms[r] = expertLayerMs(b, lt, s.topK(), xt, w, o);
                        }
                        Arrays.sort(ms);
                        double median = ms[ms.length / 2];
                        ObjectNode row = rows.addObject();
                        row.put("shape", s.name());
                        row.put("hidden", h);
                        row.put("ffn", f);
                        row.put("experts", s.experts());
                        row.put("top_k", s.topK());
                        row.put("tokens", tokens);
                        row.put("kernel", kernel);
                        row.put("median_ms", median);
                        row.put("dense_equivalent_tflops", flops / (median * 1e-3) / 1e12);
                        System.out.printf("%-18s %6d %-16s %9.3f %9.1f%n", s.name(), tokens, kernel, median,
                                flops / (median * 1e-3) / 1e12);
                    }
                }
            }
            denseWeights.close();
            sparseWeights.close();
            vectorSparseWeights.close();
            if (sparseMmaWeights != null) {
                sparseMmaWeights.close();
                denseMmaWeights.close();
            }
        }
        root.putPOJO("tuned_kernels", gpu.tunedKernels());
        json.writerWithDefaultPrettyPrinter().writeValue(out, root);
    }

    /** Device time of one expert layer: routing, then the experts (CUDA events, summed over the ops). */
    private static double expertLayerMs(CudaBackend b, Tensor logits, int topK, Tensor x, ExpertWeights w, Tensor out) {
        b.startProfiling();
        try (ExpertRouting routing = b.route(logits, new TopKSoftmaxRouter(topK, true))) {
            b.experts(x, routing, w, out);
        }
        return b.drainProfile().values().stream().mapToDouble(Double::doubleValue).sum();
    }
}
