package io.moescore.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.Kernels;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The dense linear op (fp32 activations rounded to bf16, bf16 weights, fp32 out) at the projection and lm_head
 * shapes of the benchmark models, through every GEMM kernel this device has (wgmma and mma.sync on a Hopper).
 * Median device time of 20 runs after 3 warm-ups, TFLOP/s = 2 M N K / time; the bf16 rounding of the input is
 * included (it is part of the op). The cuBLAS peer: bench/python/bench_gemm.py, same call.
 *
 *   java ... io.moescore.bench.GemmBenchmark OUT.json [m=8192]
 */
public final class GemmBenchmark {
    /**
     * N x K weights: Mixtral q/o, k/v, one expert's gate|up and down, lm_head; OLMoE q/k/v/o and lm_head; the fused
     * q/k/v products of Mixtral (4096 + 2 x 1024 rows) and OLMoE (3 x 2048).
     */
    static final int[][] WEIGHTS = {{4096, 4096}, {1024, 4096}, {28672, 4096}, {4096, 14336}, {32000, 4096},
        {2048, 2048}, {50304, 2048}, {6144, 4096}, {6144, 2048}};

    private GemmBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        File out = new File(args[0]);
        int m = args.length > 1 ? Integer.parseInt(args[1].replace("m=", "")) : 8192;
        CudaBackend gpu = new CudaBackend(CudaOptions.device(0));
        List<CudaBackend> paths = new ArrayList<>(List.of(gpu));  // the tuned one, then every family pinned
        if (gpu.gemmPath().startsWith("tuned")) {
            for (Kernels k : new Kernels[] {Kernels.WGMMA, Kernels.WGMMA_N128, Kernels.WGMMA_WS, Kernels.WGMMA_PAIRED,
                    Kernels.MMA_SYNC}) {
                paths.add(new CudaBackend(CudaOptions.device(0).withKernels(k)));
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("device", gpu.deviceName());
        root.put("m", m);
        ArrayNode runs = root.putArray("runs");
        Random random = new Random(11);
        Path dir = Files.createTempDirectory("moescore-gemm-bench");
        float[] x = new float[m * 14336];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        System.out.printf("%6s %6s %6s %-48s %9s %9s%n", "M", "N", "K", "kernel", "ms", "TFLOP/s");
        for (int[] nk : WEIGHTS) {
            int n = nk[0];
            int k = nk[1];
            float[] w = new float[n * k];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) (random.nextGaussian() / Math.sqrt(k));
            }
            Path file = dir.resolve(n + "x" + k);
            Files.createDirectories(file);
            new SafeTensorsWriter(Map.of()).add("w", DType.BF16, w, n, k).write(file.resolve("model.safetensors"));
            try (Checkpoint c = Checkpoint.open(file);
                 Tensor weight = gpu.weight(WeightSlice.whole(c.get("w"), n, k));
                 Tensor in = gpu.activation(Arrays.copyOf(x, m * k), m, k);
                 Tensor o = gpu.activation(m, n)) {
                for (CudaBackend b : paths) {
                    double[] ms = new double[20];
                    for (int r = -3; r < ms.length; r++) {
                        b.startProfiling();
                        b.linear(in, weight, null, o);
                        double t = b.drainProfile().values().stream().mapToDouble(Double::doubleValue).sum();
                        if (r >= 0) {
                            ms[r] = t;
                        }
                    }
                    Arrays.sort(ms);
                    double median = ms[ms.length / 2];
                    double tflops = 2.0 * m * n * k / (median * 1e-3) / 1e12;
                    ObjectNode row = runs.addObject();
                    row.put("m", m);
                    row.put("n", n);
                    row.put("k", k);
                    row.put("kernel", b.gemmPath());
                    row.put("median_ms", median);
                    row.put("tflops", tflops);
                    System.out.printf("%6d %6d %6d %-48s %9.3f %9.1f%n", m, n, k, b.gemmPath(), median, tflops);
                }
            }
            Files.delete(file.resolve("model.safetensors"));
        }
        root.putPOJO("tuned_kernels", gpu.tunedKernels());
        json.writerWithDefaultPrettyPrinter().writeValue(out, root);
    }
}
