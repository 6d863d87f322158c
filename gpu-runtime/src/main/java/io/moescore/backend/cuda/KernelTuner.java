package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * The autotuner: for each op shape (op, token-count bucket, sizes) the first call on a GPU model times every
 * kernel variant that can run it (tile shapes, instruction families) on the real inputs, keeps the fastest, logs
 * the choice and remembers it in a JSON file per GPU model, so later runs and other executors of the same model
 * skip the timing. The variants compute the same function; timing runs overwrite the op's output, and the caller
 * runs the chosen variant last.
 *
 * <p>Cache file: {@code -Dmoescore.kernelCache=FILE} ({@code none}: memory only); default
 * {@code ~/.cache/moescore/kernels-<GPU model>.json}.
 */
final class KernelTuner {
    private static final System.Logger LOG = System.getLogger("io.moescore.autotune");
    private static final Map<String, KernelTuner> BY_MODEL = new ConcurrentHashMap<>();

    private final String gpuModel;
    private final Path file;
    private final Map<String, String> chosen = new ConcurrentHashMap<>();

    KernelTuner(String gpuModel, Path file) {
        this.gpuModel = gpuModel;
        this.file = file;
        if (file != null && Files.isRegularFile(file)) {
            try {
                chosen.putAll(new ObjectMapper().readValue(file.toFile(), new TypeReference<Map<String, String>>() {
                }));
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "moescore: ignoring the unreadable kernel cache " + file + ": "
                        + e.getMessage());
            }
        }
    }

    /** The tuner of a GPU model (one per JVM and model: executors' GPUs of one model share choices). */
    static KernelTuner forModel(String gpuModel) {
        return BY_MODEL.computeIfAbsent(gpuModel, m -> new KernelTuner(m, cacheFile(m)));
    }

    private static Path cacheFile(String gpuModel) {
        String configured = System.getProperty("moescore.kernelCache");
        if ("none".equals(configured)) {
            return null;
        }
        if (configured != null) {
            return Path.of(configured);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "moescore",
                "kernels-" + gpuModel.replaceAll("[^A-Za-z0-9._-]+", "_") + ".json");
    }

    /** What the tuner times and picks among: a kernel variant, or a library that computes the same product. */
    interface Candidate {
        /** The name choices are remembered by (in the kernel cache too). */
        String name();
    }

    /** Token counts share a choice within a power-of-two bucket. */
    static long bucket(long tokens) {
        return Long.highestOneBit(Math.max(1, tokens - 1)) << 1;
    }

    /**
     * The variant to run for this shape, from those of one family ({@link KernelVariants}); the first time, each
     * variant is launched once to warm up, then timed in {@link KernelConstants#TUNER_ROUNDS} rounds, the
     * candidates taking turns: each round {@code hold} keeps the stream busy while the host enqueues
     * {@link KernelConstants#TUNER_BATCH} launches between two CUDA events, so the events time the kernels back to
     * back as a forward runs them, not the host's enqueueing (timing one launch at a time charged cuBLASLt's host
     * calls to it and picked our slower kernel). The median of the rounds is kept; the fastest candidate wins.
     * Choices are remembered by kernel name.
     */
    <C extends Candidate> C pick(String shape, List<C> variants, Consumer<C> launch, Runnable hold, CUstream stream) {
        if (variants.size() == 1) {
            return variants.get(0);
        }
        String known = chosen.get(shape);
        for (C v : variants) {
            if (v.name().equals(known)) {
                return v;
            }
        }
        for (C v : variants) {
            launch.accept(v);  // warm-up: first-use costs (modules, library plans, shared-memory opt-in)
        }
        double[][] rounds = new double[variants.size()][KernelConstants.TUNER_ROUNDS];
        for (int r = 0; r < KernelConstants.TUNER_ROUNDS; r++) {
            for (int i = 0; i < variants.size(); i++) {
                C v = variants.get(i);
                rounds[i][r] = time(() -> launch.accept(v), hold, stream);
            }
        }
        Map<String, Double> ms = new TreeMap<>();
        for (int i = 0; i < variants.size(); i++) {
            ms.put(variants.get(i).name(), median(rounds[i]));
        }
        String best = ms.entrySet().stream().min(Map.Entry.comparingByValue()).orElseThrow().getKey();
        chosen.put(shape, best);
        LOG.log(System.Logger.Level.INFO, String.format("moescore autotune on %s: %s -> %s (ms: %s)", gpuModel,
                shape, best, ms.toString().replaceAll("(\\.\\d{3})\\d+", "$1")));
        save();
        return variants.stream().filter(v -> v.name().equals(best)).findFirst().orElseThrow();
    }

    /** Device milliseconds per launch of one batch of TUNER_BATCH launches enqueued behind the hold. */
    private static double time(Runnable launch, Runnable hold, CUstream stream) {
        CUevent start = new CUevent();
        CUevent end = new CUevent();
        cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
        cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT);
        try {
            hold.run();
            cuEventRecord(start, stream);
            for (int i = 0; i < KernelConstants.TUNER_BATCH; i++) {
                launch.run();
            }
            cuEventRecord(end, stream);
            cuEventSynchronize(end);
            float[] ms = new float[1];
            cuEventElapsedTime(ms, start, end);
            return ms[0] / KernelConstants.TUNER_BATCH;
        } finally {
            cuEventDestroy(start);
            cuEventDestroy(end);
        }
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        java.util.Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** Writes the choices (atomically: other executors of this host may read the file meanwhile). */
    private synchronized void save() {
        if (file == null) {
            return;
        }
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), "kernels", ".tmp");
            new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), new TreeMap<>(chosen));
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "moescore: could not write the kernel cache " + file + ": "
                    + e.getMessage());
        }
    }

    /** The choices so far (benchmarks record them). */
    Map<String, String> choices() {
        return new TreeMap<>(chosen);
    }
}
