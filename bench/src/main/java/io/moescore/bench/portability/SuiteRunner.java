package io.moescore.bench.portability;

import io.moescore.backend.Backend;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.IntTensor;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.engine.Engine;
import io.moescore.routing.ExpertRouting;
import io.moescore.batch.ScoreBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.TokenBatch;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.SparsityPattern;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * Runs a {@link KernelSuite} on one backend. Times are CUDA-event device time of the measured ops on the GPU
 * (the backend's profiler, {@link Backend#drainProfile}; routing included for the expert layer, as in ExpertLayerBenchmark) and wall-clock time
 * on the CPU; the median of {@code repeats} runs after {@code warmups}. FLOP counts are dense-equivalent; bytes are
 * the weights as the backend stores them plus the fp32 activations at the Backend interface. A case that fails
 * becomes a measurement carrying the error, and the suite goes on.
 */
final class SuiteRunner {
    private final Backend backend;
    private final boolean onGpu;
    private final String dtype;
    private final KernelSuite suite;
    private final Path scratch;
    private final SplittableRandom random = new SplittableRandom(7);

    /**
     * @param onGpu whether the backend runs on a GPU (weights stored in 16 bits, 2:4 experts kept packed, ops timed
     *              on the device), as the caller that opened it knows
     * @param dtype the number format the rows report: the GPU's precision, fp32 on the CPU
     */
    SuiteRunner(Backend backend, boolean onGpu, String dtype, KernelSuite suite, Path scratch) {
        this.backend = backend;
        this.onGpu = onGpu;
        this.dtype = dtype;
        this.suite = suite;
        this.scratch = scratch;
    }

    /** Weight bytes per element as stored: bf16 on the GPU, fp32 on the CPU. */
    private int weightBytes() {
        return onGpu ? 2 : 4;
    }

    /** Every kernel case of the suite, then the model-level run when a model is given. */
    List<Measurement> run(Path model) {
        List<Measurement> out = new ArrayList<>();
        for (KernelSuite.ExpertShape shape : suite.expertShapes()) {
            out.addAll(expertLayer(shape));
        }
        for (KernelSuite.AttentionShape shape : suite.attentionShapes()) {
            out.add(guard(PortabilityRow.ATTENTION, shape.describe(), shape.length() * shape.sequences(),
                    PortabilityRow.DENSE, () -> attention(shape)));
        }
        for (KernelSuite.LmHeadShape shape : suite.lmHeadShapes()) {
            out.add(guard(PortabilityRow.LM_HEAD, shape.describe(), shape.tokens(), PortabilityRow.DENSE,
                    () -> lmHead(shape)));
        }
        int modelTokens = suite.modelSequences() * suite.modelSequenceLength();
        for (boolean sparse : new boolean[] {false, true}) {
            String pattern = sparse ? PortabilityRow.SPARSE_24 : PortabilityRow.DENSE;
            if (model == null) {
                out.add(Measurement.failed(PortabilityRow.MODEL, "-", modelTokens, dtype, pattern,
                        "skipped: no --model given (a checkpoint directory every executor can read)"));
            } else {
                out.add(guard(PortabilityRow.MODEL, model.getFileName().toString(), modelTokens, pattern,
                        () -> modelRun(model, sparse)));
            }
        }
        return out;
    }

    private interface Case {
        Measurement measure() throws Exception;
    }

    private Measurement guard(String kernel, String shape, int tokens, String pattern, Case c) {
        try {
            return c.measure();
        } catch (Exception | OutOfMemoryError e) {
            return Measurement.failed(kernel, shape, tokens, dtype, pattern, e.toString());
        }
    }

    /** Median milliseconds of the op: device time of the profiled ops on the GPU, wall-clock on the CPU. */
    private double medianMs(Runnable op) {
        double[] ms = new double[suite.repeats()];
        for (int r = -suite.warmups(); r < ms.length; r++) {
            double t;
            if (onGpu) {
                backend.startProfiling();
                op.run();
                t = backend.drainProfile().values().stream().mapToDouble(Double::doubleValue).sum();
            } else {
                long start = System.nanoTime();
                op.run();
                t = (System.nanoTime() - start) / 1e6;
            }
            if (r >= 0) {
                ms[r] = t;
            }
        }
        Arrays.sort(ms);
        return ms[ms.length / 2];
    }

    // ---- expert layer ------------------------------------------------------------------------------------------

    private List<Measurement> expertLayer(KernelSuite.ExpertShape s) {
        List<Measurement> out = new ArrayList<>();
        ExpertWeights dense = null;
        ExpertWeights sparse = null;
        String setupError = null;
        try {
            Sparse24.Packed[][] packed = new Sparse24.Packed[3][s.experts()];
            dense = denseAndPackedExperts(s, packed);
            sparse = backend.sparseExpertWeights(packed[0], packed[1], packed[2]);
        } catch (Exception | OutOfMemoryError e) {
            setupError = "could not place the experts: " + e;
        }
        try {
            for (int tokens : suite.expertTokens()) {
                for (String pattern : List.of(PortabilityRow.DENSE, PortabilityRow.SPARSE_24)) {
                    ExpertWeights w = pattern.equals(PortabilityRow.DENSE) ? dense : sparse;
                    if (w == null) {
                        out.add(Measurement.failed(PortabilityRow.EXPERT_LAYER, s.describe(), tokens, dtype,
                                pattern, setupError));
                        continue;
                    }
                    out.add(guard(PortabilityRow.EXPERT_LAYER, s.describe(), tokens, pattern,
                            () -> expertLayer(s, tokens, pattern, w)));
                }
            }
        } finally {
            if (dense != null) {
                dense.close();
            }
            if (sparse != null) {
                sparse.close();
            }
        }
        return out;
    }

    /** Random experts placed dense on the backend; {@code packed} receives the same experts pruned 2:4. */
    private ExpertWeights denseAndPackedExperts(KernelSuite.ExpertShape s, Sparse24.Packed[][] packed)
            throws IOException {
        int h = s.hidden();
        int f = s.ffn();
        int[][] dims = {{f, h}, {f, h}, {h, f}};
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of());
        for (int e = 0; e < s.experts(); e++) {
            for (int w = 0; w < 3; w++) {
                float[] values = randomWeights(dims[w][0], dims[w][1]);
                packed[w][e] = Sparse24.pack(Sparse24.pruneMagnitude(values, dims[w][0], dims[w][1]), dims[w][0],
                        dims[w][1]);
                writer.add("w" + w + "_" + e, DType.BF16, values, dims[w][0], dims[w][1]);
            }
        }
        Path dir = Files.createTempDirectory(scratch, "experts");
        Path file = dir.resolve(Checkpoint.SINGLE_FILE);
        try {
            writer.write(file);
            try (Checkpoint c = Checkpoint.open(dir)) {
                WeightSlice[][] slices = new WeightSlice[3][s.experts()];
                for (int e = 0; e < s.experts(); e++) {
                    for (int w = 0; w < 3; w++) {
                        slices[w][e] = WeightSlice.whole(c.get("w" + w + "_" + e), dims[w][0], dims[w][1]);
                    }
                }
                return backend.expertWeights(slices[0], slices[1], slices[2]);
            }
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    private Measurement expertLayer(KernelSuite.ExpertShape s, int tokens, String pattern, ExpertWeights w) {
        int h = s.hidden();
        long weightElements = 3L * s.experts() * h * s.ffn();
        double weightBytes = pattern.equals(PortabilityRow.SPARSE_24) && onGpu
                ? weightElements + weightElements / 8.0   // half the values in bf16, 2 bits of metadata each
                : (double) weightElements * weightBytes();
        double flops = 2.0 * tokens * s.topK() * 3 * h * s.ffn();
        try (Tensor x = backend.activation(unitVarianceValues(tokens * h), tokens, h);
             Tensor logits = backend.activation(unitVarianceValues(tokens * s.experts()), tokens, s.experts());
             Tensor out = backend.activation(tokens, h)) {
            double ms = medianMs(() -> {
                try (ExpertRouting routing = backend.route(logits, new TopKSoftmaxRouter(s.topK(), true))) {
                    backend.experts(x, routing, w, out);
                }
            });
            long entries = (long) tokens * s.topK();
            String prefix = (pattern.equals(PortabilityRow.SPARSE_24) ? "experts 2:4 " : "experts ") + s.experts()
                    + "x" + s.ffn() + "x" + h + " entries " + tunerBucket(entries);
            String tile = tileConfig(key -> key.equals(prefix) || key.startsWith(prefix + " "),
                    pattern.equals(PortabilityRow.SPARSE_24));
            return Measurement.timed(PortabilityRow.EXPERT_LAYER, s.describe(), tokens, dtype, pattern, ms, flops,
                    weightBytes + 2.0 * tokens * h * 4, tile);
        }
    }

    // ---- attention and lm_head -----------------------------------------------------------------------------------

    private Measurement attention(KernelSuite.AttentionShape s) {
        int tokens = s.length() * s.sequences();
        int qCols = s.heads() * s.headDim();
        int kvCols = s.kvHeads() * s.headDim();
        int[] offsets = new int[s.sequences() + 1];
        for (int i = 0; i <= s.sequences(); i++) {
            offsets[i] = i * s.length();
        }
        // causal: each query sees half the keys on average; QK^T and PV are 2 flops per multiply-add each
        double flops = 2.0 * 2 * s.sequences() * (double) s.length() * s.length() / 2 * s.heads() * s.headDim();
        double bytes = 4.0 * tokens * (2L * qCols + 2L * kvCols);
        try (Tensor q = backend.activation(unitVarianceValues(tokens * qCols), tokens, qCols);
             Tensor k = backend.activation(unitVarianceValues(tokens * kvCols), tokens, kvCols);
             Tensor v = backend.activation(unitVarianceValues(tokens * kvCols), tokens, kvCols);
             Tensor out = backend.activation(tokens, qCols);
             IntTensor seqOffsets = backend.ints(offsets)) {
            double ms = medianMs(() -> backend.attention(q, k, v, seqOffsets, s.heads(), s.kvHeads(), s.headDim(), 0,
                    out));
            return Measurement.timed(PortabilityRow.ATTENTION, s.describe(), tokens, dtype, PortabilityRow.DENSE,
                    ms, flops, bytes, "fixed (attention is not autotuned)");
        }
    }

    private Measurement lmHead(KernelSuite.LmHeadShape s) throws IOException {
        Path dir = Files.createTempDirectory(scratch, "lm_head");
        Path file = dir.resolve(Checkpoint.SINGLE_FILE);
        try {
            new SafeTensorsWriter(Map.of()).add("lm_head", DType.BF16, randomWeights(s.vocab(), s.hidden()),
                    s.vocab(), s.hidden()).write(file);
            int[] targets = random.ints(s.tokens(), 0, s.vocab()).toArray();
            try (Checkpoint c = Checkpoint.open(dir);
                 Tensor head = backend.weight(WeightSlice.whole(c.get("lm_head"), s.vocab(), s.hidden()));
                 Tensor hidden = backend.activation(unitVarianceValues(s.tokens() * s.hidden()), s.tokens(), s.hidden());
                 IntTensor targetIds = backend.ints(targets)) {
                double ms = medianMs(() -> backend.logProbs(hidden, head, targetIds, new int[0], 0));
                double flops = 2.0 * s.tokens() * s.hidden() * s.vocab();
                double bytes = (double) s.vocab() * s.hidden() * weightBytes() + 4.0 * s.tokens() * s.hidden();
                String prefix = "linear " + tunerBucket(s.tokens()) + "x";
                String tile = tileConfig(key -> key.startsWith(prefix) && key.contains("x" + s.hidden() + " parts"),
                        false);
                return Measurement.timed(PortabilityRow.LM_HEAD, s.describe(), s.tokens(), dtype,
                        PortabilityRow.DENSE, ms, flops, bytes, tile);
            }
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    // ---- model level --------------------------------------------------------------------------------------------

    /** Wall-clock of Engine.score over random token sequences (SUMS_ONLY), experts dense or pruned 2:4 on load. */
    private Measurement modelRun(Path model, boolean sparse) {
        try (Engine engine = Engine.load(model, backend, sparse ? SparsityPattern.TWO_FOUR : null)) {
            int[][] sequences = new int[suite.modelSequences()][];
            for (int i = 0; i < sequences.length; i++) {
                sequences[i] = random.ints(suite.modelSequenceLength(), 0, engine.config().vocabSize()).toArray();
            }
            TokenBatch batch = TokenBatch.of(sequences);
            double[] ms = new double[suite.repeats()];
            for (int r = -suite.warmups(); r < ms.length; r++) {
                long start = System.nanoTime();
                ScoreBatch result = engine.score(batch, ScoreOptions.SUMS_ONLY);
                double t = (System.nanoTime() - start) / 1e6;
                String error = result.scores().get(0).error();
                if (error != null) {
                    throw new IllegalStateException("the model could not score: " + error);
                }
                if (r >= 0) {
                    ms[r] = t;
                }
            }
            Arrays.sort(ms);
            int tokens = sequences.length * suite.modelSequenceLength();
            return Measurement.timed(PortabilityRow.MODEL, model.getFileName() + " (" + engine.config().family()
                    + ", wall-clock forward)", tokens, dtype, sparse ? PortabilityRow.SPARSE_24 : PortabilityRow.DENSE,
                    ms[ms.length / 2], 0, 0, null);
        }
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    /**
     * The autotuner's choices for the shapes {@code key} accepts, or the fixed kernel family where this backend
     * does not tune (a GPU that is not a Hopper; the CPU).
     */
    private String tileConfig(Predicate<String> key, boolean sparse) {
        if (!onGpu) {
            return "n/a (cpu)";
        }
        String picked = backend.tunedKernels().entrySet().stream().filter(e -> key.test(e.getKey()))
                .map(e -> e.getValue()).sorted().distinct().collect(Collectors.joining(", "));
        if (!picked.isEmpty()) {
            return picked;
        }
        return "fixed: " + (sparse ? backend.sparsePath() : backend.gemmPath());
    }

    /** The autotuner's power-of-two token bucket (KernelTuner.bucket, which is package-private there). */
    private static long tunerBucket(long tokens) {
        return Long.highestOneBit(Math.max(1, tokens - 1)) << 1;
    }

    /** Uniform weights with the variance of N(0, 1/cols): cheaper to draw than Gaussians for billions of them. */
    private float[] randomWeights(int rows, int cols) {
        float[] values = new float[rows * cols];
        double bound = Math.sqrt(3.0 / cols);
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextDouble(-bound, bound);
        }
        return values;
    }

    /** Uniform values of variance 1, for activations and router logits. */
    private float[] unitVarianceValues(int n) {
        float[] values = new float[n];
        double bound = Math.sqrt(3.0);
        for (int i = 0; i < n; i++) {
            values[i] = (float) random.nextDouble(-bound, bound);
        }
        return values;
    }
}
