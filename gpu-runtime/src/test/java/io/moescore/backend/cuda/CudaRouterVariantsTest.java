package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelComparisons.SEED;
import static io.moescore.backend.cuda.KernelComparisons.assertValuesClose;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.moescore.GpuTest;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.routing.BatchTopKRouter;
import io.moescore.routing.DropExpertsRouter;
import io.moescore.routing.GroupLimitedSigmoidRouter;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.routing.ThresholdRouter;
import io.moescore.routing.ThresholdRouter.Gate;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.routing.TopPRouter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each CUDA router kernel (router.cu, router_variants.cu) against its CPU twin in io.moescore.routing, per token:
 * the same experts and gates, the device's per-token counts and chosen rows agreeing with its per-expert lists, the
 * counts the host reads equal to the lists'. Random logits of every kind, row by row: gaussian at several scales,
 * exact ties, near ties (1e-3 apart), all -inf (all masked), NaN, +inf, only very negative, a single finite logit.
 * The device buffers the router takes from the pool start poisoned (all bits set: NaN gates, expert -1, count -1),
 * so a value a kernel fails to write shows.
 *
 * <p>Where the two sides compute a decision in different arithmetic (exp on the GPU, Math.exp on the CPU; a warp's
 * sums in another order), a decision that hangs on the last bits may differ: a token whose experts differ is allowed
 * only where the CPU's decision lies within 1e-5 of flipping (two of the ranked probabilities, the top-p sum and P,
 * a gate's probability and T: computed here in double), and at most 1 in 50 tokens; it is printed. sparsemax and the
 * batch-level choice use the CPU's float arithmetic in its order and must match bit for bit.
 */
@GpuTest
class CudaRouterVariantsTest {
    static final int ROWS = 300;
    static final int[] EXPERTS = {5, 8, 40, 64, 128};
    static CpuBackend cpu;
    static CudaBackend gpu;
    static CudaBackend deterministic;
    final Random random = new Random(SEED);
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        gpu = new CudaBackend(CudaOptions.device(0));
        deterministic = new CudaBackend(CudaOptions.device(0).withDeterministic(true));
        System.out.println("CudaRouterVariantsTest on " + gpu.deviceName() + ", random inputs from seed " + SEED
                + " (repeat with -Dmoescore.test.seed=" + SEED + ")");
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
    }

    @Test
    void topPMatchesTheCpu() {
        for (int experts : EXPERTS) {
            float[] logits = logits(ROWS, experts, 1f + random.nextInt(3));
            for (float p : new float[] {0.3f, 0.5f, 0.9f, 1f}) {
                for (int maxK : new int[] {1, 2, 4, 16}) {
                    if (maxK <= experts) {
                        boolean renormalize = random.nextBoolean();
                        compare(new TopPRouter(p, maxK, renormalize), logits, ROWS, experts, null,
                                ranking(maxK + 1, p, null));
                    }
                }
            }
        }
    }

    /**
     * Batches of several of the list kernels' chunks (route_count and route_fill take ROUTE_CHUNK tokens a block), the
     * last one partial: every expert's tokens still come ascending and equal the CPU's, top-k and top-p.
     */
    @Test
    void listsSpanningSeveralChunksMatchTheCpu() {
        int rows = 2 * KernelConstants.ROUTE_CHUNK + 453;
        for (int experts : new int[] {5, 64}) {
            float[] logits = logits(rows, experts, 2f);
            int k = Math.min(4, experts);
            compare(new TopKSoftmaxRouter(k, true), logits, rows, experts, null, ranking(k + 1, Float.NaN, null));
            compare(new TopPRouter(0.5f, k, false), logits, rows, experts, null, ranking(k + 1, 0.5f, null));
        }
    }

    /**
     * DeepSeek-V3's / GLM-4.5's group-limited sigmoid router (router_group_sigmoid) against GroupLimitedSigmoidRouter:
     * DeepSeek's shape (256 experts, 8 groups, 4 eligible, top-8) and smaller ones, GLM's single group, correction
     * biases with exact ties, over the usual rows (exact and near ties, NaN, +-inf).
     */
    @Test
    void groupLimitedSigmoidMatchesTheCpu() {
        int[][] shapes = {{256, 8, 4, 8}, {64, 8, 4, 6}, {8, 4, 2, 3}, {40, 1, 1, 4}, {128, 16, 3, 8}};
        for (int[] shape : shapes) {
            int experts = shape[0];
            float[] bias = new float[experts];
            for (int e = 0; e < experts; e++) {
                bias[e] = e % 3 == 0 ? 0f : (float) (0.1 * random.nextGaussian());
            }
            for (float scale : new float[] {1f, 4f}) {
                boolean renormalize = random.nextBoolean();
                GroupLimitedSigmoidRouter router = new GroupLimitedSigmoidRouter(shape[3], shape[1], shape[2],
                        renormalize, 2.5f, bias);
                compare(router, logits(ROWS, experts, scale), ROWS, experts, null,
                        groupTies(shape[1], shape[2], shape[3], bias));
            }
        }
    }

    /**
     * Group-limited ranking: the last eligible group and the next within 1e-5 (relative, at least 1) of each other,
     * or the k-th and (k+1)-th corrected score among the eligible experts: a choice any rounding may flip.
     */
    static Ambiguity groupTies(int groups, int topkGroups, int k, float[] bias) {
        return (logits, t, experts) -> {
            int per = experts / groups;
            double[] c = new double[experts];
            for (int e = 0; e < experts; e++) {
                c[e] = 1 / (1 + Math.exp(-logits[t * experts + e])) + bias[e];
            }
            Integer[] order = new Integer[groups];
            double[] score = new double[groups];
            for (int g = 0; g < groups; g++) {
                double[] in = Arrays.copyOfRange(c, g * per, (g + 1) * per);
                Arrays.sort(in);
                score[g] = in[per - 1] + in[per - 2];
                order[g] = g;
            }
            Arrays.sort(order, (a, b) -> Double.compare(score[b], score[a]));
            if (topkGroups < groups && near(score[order[topkGroups - 1]], score[order[topkGroups]])) {
                return true;
            }
            double[] eligible = new double[topkGroups * per];
            for (int i = 0; i < topkGroups; i++) {
                System.arraycopy(c, order[i] * per, eligible, i * per, per);
            }
            Arrays.sort(eligible);
            int n = eligible.length;
            return k < n && near(eligible[n - k], eligible[n - k - 1]);
        };
    }

    private static boolean near(double a, double b) {
        return Double.isNaN(a) || Double.isNaN(b) || Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a));
    }

    @Test
    void thresholdGatesMatchTheCpu() {
        for (int experts : EXPERTS) {
            for (float scale : new float[] {0.5f, 3f}) {
                float[] logits = logits(ROWS, experts, scale);
                for (Gate gate : new Gate[] {Gate.SIGMOID, Gate.SOFTMAX, Gate.QUADRATIC, Gate.PIONEER}) {
                    for (float t : new float[] {0f, 0.05f, 0.3f, 0.5f, 0.9f}) {
                        compare(new ThresholdRouter(gate, t), logits, ROWS, experts, null, threshold(gate, t));
                    }
                }
            }
        }
    }

    /** A threshold no probability reaches: every token routed to no expert, and nothing breaks. */
    @Test
    void aThresholdNobodyReachesRoutesNoToken() {
        float[] logits = new float[ROWS * 8];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextGaussian();
        }
        ThresholdRouter router = new ThresholdRouter(Gate.SIGMOID, 0.999999f);
        compare(router, logits, ROWS, 8, null, threshold(Gate.SIGMOID, 0.999999f));
        try (Tensor onGpu = gpu.activation(logits, ROWS, 8);
             CudaExpertRouting got = (CudaExpertRouting) gpu.route(onGpu, router)) {
            assertArrayEquals(new int[8], got.tokensPerExpert());
        }
    }

    @Test
    void sparsemaxMatchesTheCpuBitForBit() {
        for (int experts : EXPERTS) {
            for (float scale : new float[] {0.1f, 1f, 10f}) {
                compare(new ThresholdRouter(Gate.SPARSEMAX, 0f), logits(ROWS, experts, scale), ROWS, experts, null,
                        null);
            }
        }
    }

    /**
     * batch-top-k:K:B over random sequences (empty ones among them) and batch-top-k:K over the whole batch: the
     * block experts bit for bit (the logits are summed in the CPU's order), each row's gates from its softmax.
     */
    @Test
    void batchTopKMatchesTheCpu() {
        for (int experts : EXPERTS) {
            float[] logits = logits(ROWS, experts, 1f);
            List<Integer> starts = new ArrayList<>(List.of(0));
            while (starts.get(starts.size() - 1) < ROWS) {
                int length = random.nextInt(5) == 0 ? 0 : 1 + random.nextInt(90);
                starts.add(Math.min(ROWS, starts.get(starts.size() - 1) + length));
            }
            int[] sequenceStarts = starts.stream().mapToInt(Integer::intValue).toArray();
            for (int k : new int[] {1, 2, 4}) {
                for (int block : new int[] {0, 1, 3, 16, 64}) {
                    if (k <= experts) {
                        compare(new BatchTopKRouter(k, block, random.nextBoolean()), logits, ROWS, experts,
                                sequenceStarts, null);
                    }
                }
            }
        }
    }

    /** drop-experts around the model's router, with rows whose every kept expert is -inf (all masked). */
    @Test
    void droppedExpertsMatchTheCpu() {
        for (int experts : EXPERTS) {
            for (int k : new int[] {1, 2, 3}) {
                if (k >= experts) {
                    continue;
                }
                boolean[] dropped = new boolean[experts];
                for (int n = 0; n < Math.min(experts - k, 1 + random.nextInt(experts)); n++) {
                    dropped[random.nextInt(experts)] = true;
                }
                float[] logits = logits(ROWS, experts, 2f);
                for (int t = 0; t < ROWS; t += 17) {
                    for (int e = 0; e < experts; e++) {
                        logits[t * experts + e] = dropped[e] ? (float) random.nextGaussian()
                                : Float.NEGATIVE_INFINITY;
                    }
                }
                compare(new DropExpertsRouter(new TopKSoftmaxRouter(k, k > 1), dropped), logits, ROWS, experts, null,
                        ranking(k + 1, Float.NaN, dropped));
            }
        }
    }

    /**
     * The experts on variable routing, tokens without an expert included: the GPU's routing (a threshold gate, top-p)
     * downloaded and given to the CPU's experts as it is, so both sides run the same routing; atomic and ordered
     * combines; outputs poisoned (NaN) first.
     */
    @Test
    void expertsRunVariableRoutingWithEmptyTokens() throws IOException {
        int hidden = 64;
        int ffn = 96;
        for (int experts : new int[] {8, 40}) {
            try (Checkpoint checkpoint = Checkpoint.open(expertFile(experts, hidden, ffn))) {
                WeightSlice[][] slices = new WeightSlice[3][experts];
                for (int e = 0; e < experts; e++) {
                    slices[0][e] = WeightSlice.whole(checkpoint.get("g" + e), ffn, hidden);
                    slices[1][e] = WeightSlice.whole(checkpoint.get("u" + e), ffn, hidden);
                    slices[2][e] = WeightSlice.whole(checkpoint.get("d" + e), hidden, ffn);
                }
                ExpertWeights onCpu = cpu.expertWeights(slices[0], slices[1], slices[2]);
                for (CudaBackend backend : new CudaBackend[] {gpu, deterministic}) {
                    ExpertWeights onGpu = backend.expertWeights(slices[0], slices[1], slices[2]);
                    for (Router router : new Router[] {new ThresholdRouter(Gate.SOFTMAX, 0.3f),
                        new ThresholdRouter(Gate.SIGMOID, 0.7f), new TopPRouter(0.6f, Math.min(4, experts), true)}) {
                        String what = router + " over " + experts + " experts" + (backend == deterministic
                                ? ", ordered combine" : "") + "; seed " + SEED;
                        expertsOnTheSameRouting(backend, router, experts, hidden, onCpu, onGpu, what);
                    }
                    onGpu.close();
                }
            }
        }
    }

    /** The GPU routes; the CPU's experts run that very routing; the outputs agree. */
    private void expertsOnTheSameRouting(CudaBackend backend, Router router, int experts, int hidden,
                                         ExpertWeights onCpu, ExpertWeights onGpu, String what) {
        float[] logits = logits(ROWS, experts, 2f);
        float[] x = gaussian(ROWS * hidden, 1);
        float[] nan = new float[ROWS * hidden];
        Arrays.fill(nan, Float.NaN);
        try (Tensor routerLogits = backend.activation(logits, ROWS, experts);
             CudaExpertRouting routed = (CudaExpertRouting) backend.route(routerLogits, router);
             Tensor xc = cpu.activation(x, ROWS, hidden);
             Tensor xg = backend.activation(x, ROWS, hidden);
             Tensor outC = cpu.activation(nan, ROWS, hidden);
             Tensor outG = backend.activation(nan, ROWS, hidden)) {
            TokenLists lists = download(routed, ROWS).lists();
            int empty = 0;
            for (int[] list : lists.experts()) {
                empty += list.length == 0 ? 1 : 0;
            }
            System.out.println(what + ": " + empty + " of " + ROWS + " tokens without an expert");
            cpu.experts(xc, HostExpertRouting.fromChoices(experts, lists.experts(), lists.gates()), onCpu, outC);
            backend.experts(xg, routed, onGpu, outG);
            float[] c = cpu.toHost(outC);
            float[] g = backend.toHost(outG);
            // a NaN logit (every 16th row's kind 11) gives NaN gates on both: such rows must be NaN on both, and the
            // others close (the closeness check's scale is the rms of the finite rows)
            int nanRows = 0;
            for (int r = 0; r < ROWS; r++) {
                boolean cNan = false;
                boolean gNan = false;
                for (int d = 0; d < hidden; d++) {
                    cNan |= Float.isNaN(c[r * hidden + d]);
                    gNan |= Float.isNaN(g[r * hidden + d]);
                }
                assertEquals(cNan, gNan, what + ": row " + r + " is NaN on " + (cNan ? "the CPU" : "the GPU") + " only");
                if (cNan) {
                    nanRows++;
                    Arrays.fill(c, r * hidden, (r + 1) * hidden, 0f);
                    Arrays.fill(g, r * hidden, (r + 1) * hidden, 0f);
                }
            }
            System.out.println(what + ": " + nanRows + " rows NaN on both (NaN logits)");
            assertValuesClose(c, g, hidden, 1e-2, what);
        }
    }

    /** A safetensors file of random bf16-exact experts g{e}, u{e}, d{e}. */
    private Path expertFile(int experts, int hidden, int ffn) throws IOException {
        Path file = dir.resolve("experts" + experts);
        java.nio.file.Files.createDirectories(file);
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of());
        for (int e = 0; e < experts; e++) {
            writer.add("g" + e, DType.F32, CudaBackendTest.bf16(gaussian(ffn * hidden, 1 / Math.sqrt(hidden))), ffn,
                    hidden);
            writer.add("u" + e, DType.F32, CudaBackendTest.bf16(gaussian(ffn * hidden, 1 / Math.sqrt(hidden))), ffn,
                    hidden);
            writer.add("d" + e, DType.F32, CudaBackendTest.bf16(gaussian(hidden * ffn, 1 / Math.sqrt(ffn))), hidden,
                    ffn);
        }
        writer.write(file.resolve("model.safetensors"));
        return file;
    }

    private float[] gaussian(int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (random.nextGaussian() * scale);
        }
        return f;
    }

    /**
     * Router logits, one kind per row in turn: gaussian (times scale, half the rows), exact ties (a few distinct
     * values), near ties (1e-3 apart), all -inf, a NaN, a +inf, all very negative, one finite logit among -inf.
     */
    float[] logits(int rows, int experts, float scale) {
        float[] z = new float[rows * experts];
        for (int t = 0; t < rows; t++) {
            int base = t * experts;
            int kind = t % 16;
            for (int e = 0; e < experts; e++) {
                z[base + e] = (float) (random.nextGaussian() * scale);
            }
            switch (kind) {
                case 8 -> {
                    float[] values = {(float) random.nextGaussian(), (float) random.nextGaussian(), 0f};
                    for (int e = 0; e < experts; e++) {
                        z[base + e] = values[random.nextInt(values.length)];
                    }
                }
                case 9 -> {
                    float v = (float) random.nextGaussian();
                    for (int e = 0; e < experts; e++) {
                        z[base + e] = v + 1e-3f * random.nextInt(4);
                    }
                }
                case 10 -> Arrays.fill(z, base, base + experts, Float.NEGATIVE_INFINITY);
                case 11 -> z[base + random.nextInt(experts)] = Float.NaN;
                case 12 -> z[base + random.nextInt(experts)] = Float.POSITIVE_INFINITY;
                case 13 -> {
                    for (int e = 0; e < experts; e++) {
                        z[base + e] = -40f - 10f * random.nextFloat();
                    }
                }
                case 14 -> {
                    Arrays.fill(z, base, base + experts, Float.NEGATIVE_INFINITY);
                    z[base + random.nextInt(experts)] = (float) random.nextGaussian();
                }
                default -> {
                    // gaussian
                }
            }
        }
        return z;
    }

    /** Whether the CPU's routing of row t could flip on the last bits of the arithmetic. */
    interface Ambiguity {
        boolean at(float[] logits, int t, int experts);
    }

    /**
     * Softmax ranking (top-k, top-p, removed experts): two of the first {@code ranks} probabilities within 1e-5 of
     * each other (but not exactly tied: equal logits tie on both sides), or, with a top-p, a cumulative sum within
     * 1e-5 of P.
     */
    static Ambiguity ranking(int ranks, float topP, boolean[] dropped) {
        return (logits, t, experts) -> {
            double[] p = new double[experts];
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                double z = dropped != null && dropped[e] ? Double.NEGATIVE_INFINITY : logits[t * experts + e];
                p[e] = z;
                max = Math.max(max, z);
            }
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                p[e] = Math.exp(p[e] - max);
                sum += p[e];
            }
            if (!Double.isFinite(sum)) {
                return false;  // no softmax: NaN everywhere, routed alike on both sides
            }
            double[] sorted = new double[experts];
            for (int e = 0; e < experts; e++) {
                sorted[e] = -p[e] / sum;
            }
            Arrays.sort(sorted);
            double cumulative = 0;
            for (int i = 0; i < Math.min(ranks, experts); i++) {
                cumulative -= sorted[i];
                if (i + 1 < experts && sorted[i] != sorted[i + 1] && sorted[i + 1] - sorted[i] <= -1e-5 * sorted[i]) {
                    return true;
                }
                if (!Float.isNaN(topP) && Math.abs(cumulative - topP) <= 1e-5) {
                    return true;
                }
            }
            return false;
        };
    }

    /** A threshold gate: some expert's probability within 1e-5 of T. */
    static Ambiguity threshold(Gate gate, float t) {
        return (logits, row, experts) -> {
            double[] in = new double[experts];
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                double z = logits[row * experts + e];
                in[e] = switch (gate) {
                    case SIGMOID, SOFTMAX -> z;
                    case QUADRATIC -> z * z;
                    case PIONEER -> Math.cos(z) * Math.cos(z);
                    case SPARSEMAX -> throw new IllegalStateException("sparsemax must match bit for bit");
                };
                max = Math.max(max, in[e]);
            }
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                sum += Math.exp(in[e] - max);
            }
            for (int e = 0; e < experts; e++) {
                double p = gate == Gate.SIGMOID ? 1 / (1 + Math.exp(-in[e])) : Math.exp(in[e] - max) / sum;
                if (Math.abs(p - t) <= 1e-5) {
                    return true;
                }
            }
            return false;
        };
    }

    /** A GPU routing as downloaded: its per-token lists (from the per-expert lists) and its per-expert counts. */
    record Device(TokenLists lists, int[] offsets) {
    }

    /**
     * Downloads the per-expert lists, checks them (offsets rising from 0 to at most the worst-case entries, tokens
     * ascending per expert) and the per-token rows the combine reads: each token's count (where counts vary) and
     * the experts of its chosen row are those of the lists.
     */
    static Device download(CudaExpertRouting r, int rows) {
        gpu.runtime().bind();
        cuStreamSynchronize(gpu.runtime().stream());
        int[] offsets = ints(r.offsets, r.numExperts + 1);
        assertEquals(0, offsets[0]);
        for (int e = 0; e < r.numExperts; e++) {
            assertTrue(offsets[e] <= offsets[e + 1], "offsets fall at expert " + e + ": " + Arrays.toString(offsets));
        }
        int entries = offsets[r.numExperts];
        assertTrue(entries <= r.entries, entries + " entries routed, buffers for " + r.entries);
        int[] tokens = ints(r.tokens, entries);
        float[] gates = new float[entries];
        if (entries > 0) {
            cuMemcpyDtoH(Pointer.to(gates), r.gates, entries * 4L);
        }
        TokenLists lists = TokenLists.of(offsets, tokens, gates, rows);
        int[] chosen = ints(r.chosen, rows * r.k);
        int[] perToken = r.perToken == null ? null : ints(r.perToken, rows);
        for (int t = 0; t < rows; t++) {
            int n = perToken == null ? r.k : perToken[t];
            assertEquals(lists.experts()[t].length, n, "token " + t + "'s count");
            int[] row = Arrays.copyOfRange(chosen, t * r.k, t * r.k + n);
            Arrays.sort(row);
            assertArrayEquals(lists.experts()[t], row, "token " + t + "'s chosen row");
        }
        return new Device(lists, offsets);
    }

    private static int[] ints(CUdeviceptr p, int n) {
        int[] v = new int[n];
        if (n > 0) {
            cuMemcpyDtoH(Pointer.to(v), p, n * 4L);
        }
        return v;
    }

    /**
     * Fills free blocks of the calling thread's pool with all bits set, in the size classes the router takes its
     * buffers in (rows x width ints and floats, per-token counts, per-expert counts and offsets), so they start
     * poisoned.
     */
    static void poisonPool(int rows, int width, int experts) {
        DevicePool pool = gpu.runtime().pool();
        long[] sizes = {(long) rows * width * 4, (long) rows * width * 4, (long) rows * width * 4,
            (long) rows * width * 4, (long) rows * width * 4, rows * 4L, rows * 4L, experts * 4L, (experts + 1) * 4L,
            (long) rows * experts * 4,
            (long) experts * Math.max(1, (rows + KernelConstants.ROUTE_CHUNK - 1) / KernelConstants.ROUTE_CHUNK) * 4};
        List<CUdeviceptr> blocks = new ArrayList<>();
        for (long bytes : sizes) {
            CUdeviceptr p = pool.allocate(Math.max(4L, bytes));
            cuMemsetD32Async(p, 0xffffffff, DevicePool.sizeClass(bytes) / 4, gpu.runtime().stream());
            blocks.add(p);
        }
        for (int i = 0; i < blocks.size(); i++) {
            pool.release(blocks.get(i), Math.max(4L, sizes[i]));
        }
    }

    /**
     * Routes on both sides and compares token by token; a token whose experts differ fails unless {@code ambiguity}
     * (null: none allowed) says the CPU's decision was within reach of the rounding, and such tokens stay rare.
     */
    void compare(Router router, float[] logits, int rows, int experts, int[] sequenceStarts, Ambiguity ambiguity) {
        int[] starts = sequenceStarts == null ? new int[] {0, rows} : sequenceStarts;
        String what = router + " over " + experts + " experts, sequences " + (sequenceStarts == null ? "[0, " + rows
                + "]" : Arrays.toString(starts)) + "; seed " + SEED;
        HostExpertRouting want = router.route(logits, rows, experts, starts);
        TokenLists cpuLists = TokenLists.of(want, rows);
        RouterKernel kernel = RouterKernel.of(router);
        assertTrue(kernel != null, what + ": no kernel");
        poisonPool(rows, kernel.width(experts), experts);
        boolean exact = router instanceof ThresholdRouter r && r.gate() == Gate.SPARSEMAX;
        int allowed = 0;
        try (Tensor onGpu = gpu.activation(logits, rows, experts);
             CudaExpertRouting got = (CudaExpertRouting) gpu.route(onGpu, router, starts)) {
            Device device = download(got, rows);
            int[] counts = new int[experts];
            for (int e = 0; e < experts; e++) {
                counts[e] = device.offsets()[e + 1] - device.offsets()[e];
            }
            assertArrayEquals(counts, got.tokensPerExpert(), what + ": the counts read on the host");
            for (int t = 0; t < rows; t++) {
                int[] ce = cpuLists.experts()[t];
                int[] ge = device.lists().experts()[t];
                String token = what + ": token " + t + ", logits " + Arrays.toString(Arrays.copyOfRange(logits,
                        t * experts, (t + 1) * experts)) + "; cpu experts " + Arrays.toString(ce) + " gates "
                        + Arrays.toString(cpuLists.gates()[t]) + ", gpu experts " + Arrays.toString(ge) + " gates "
                        + Arrays.toString(device.lists().gates()[t]);
                if (!Arrays.equals(ce, ge)) {
                    if (ambiguity == null || !ambiguity.at(logits, t, experts)) {
                        fail(token);
                    }
                    System.out.println("near a flip, allowed: " + token);
                    allowed++;
                    continue;
                }
                for (int j = 0; j < ce.length; j++) {
                    float a = cpuLists.gates()[t][j];
                    float b = device.lists().gates()[t][j];
                    boolean same = exact ? Float.floatToIntBits(a) == Float.floatToIntBits(b)
                            : Float.isNaN(a) ? Float.isNaN(b) : Math.abs(a - b) <= 1e-4 * Math.abs(a) + 1e-6;
                    if (!same) {
                        fail(token + ": gate " + j + " differs");
                    }
                }
            }
        }
        assertTrue(allowed <= rows / 50, what + ": " + allowed + " of " + rows + " tokens routed differently");
    }
}
