package io.moescore.spark.sparsify;

import io.moescore.model.ModelConfig;
import io.moescore.sparsify.ExpertHessians;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * What the sparsify job holds in an executor's heap, checked on the driver before any work. A Hessian is
 * cols^2 x 8 bytes (fp64): hidden^2 x 8 for an expert's gate and up, ffn^2 x 8 for its down. A calibration task
 * holds every expert's of the layers of its pass, (hidden^2 + ffn^2) x 8 x experts per layer; a solve task one
 * Hessian in bands, assembled, and SparseGPT's working copies of it ({@link #SOLVE_COPIES} x cols^2 x 8 for the
 * wider projection); with the CPU backend the executor also holds the model's weights in fp32. Several tasks of one
 * executor run at once.
 */
final class HessianMemory {
    /** Heap Spark keeps for itself in every executor (its reserved memory). */
    static final long SPARK_RESERVED = 300L << 20;
    /** The bands, the assembled Hessian and SparseGPT's copies and factors of it, as Hessian-sized arrays. */
    static final int SOLVE_COPIES = 8;

    private HessianMemory() {
    }

    /** An executor's heap, and how many tasks share it at once; where these come from, for messages. */
    record Budget(long heapBytes, int tasksPerExecutor, String source) {
        static Budget of(SparkContext sc) {
            if (sc.isLocal()) {
                return new Budget(Runtime.getRuntime().maxMemory(), Math.max(1, sc.defaultParallelism()),
                        "local mode: the driver JVM's heap (-Xmx) and " + sc.master() + "'s task slots");
            }
            SparkConf conf = sc.getConf();
            int cores = conf.getInt("spark.executor.cores", 1);
            int taskCpus = conf.getInt("spark.task.cpus", 1);
            return new Budget(conf.getSizeAsBytes("spark.executor.memory", "1g"), Math.max(1, cores / taskCpus),
                    "spark.executor.memory " + conf.get("spark.executor.memory", "1g") + ", spark.executor.cores "
                            + cores + (taskCpus > 1 ? " / spark.task.cpus " + taskCpus : ""));
        }

        long usable() {
            return heapBytes - SPARK_RESERVED;
        }
    }

    /** Bytes of the Hessians of every expert of one MoE layer. */
    static long perLayer(ModelConfig c) {
        return c.numExperts() * (ExpertHessians.bytes(c.hiddenSize()) + ExpertHessians.bytes(c.expertFfnSize()));
    }

    /** Bytes a solve task needs for the wider projection input of an expert. */
    static long perSolve(ModelConfig c) {
        int cols = Math.max(c.hiddenSize(), c.expertFfnSize());
        return SOLVE_COPIES * ExpertHessians.bytes(cols) + 3L * c.hiddenSize() * c.expertFfnSize() * Double.BYTES;
    }

    /** The model's weights in fp32, as the CPU backend holds them (0 for the GPU backends: they live on the device). */
    static long modelOnHeap(ModelConfig c, String backend) {
        if (!backend.equals("cpu")) {
            return 0;
        }
        long h = c.hiddenSize();
        long params = (long) c.vocabSize() * h * (c.tieWordEmbeddings() ? 1 : 2) + h;
        for (int l = 0; l < c.numLayers(); l++) {
            params += h * c.qDim() * 2 + h * c.kvDim() * 2 + 2 * h;
            params += c.moeLayers()[l]
                    ? c.numExperts() * (h + 3 * h * c.expertFfnSize()) + 3 * h * c.sharedExpertSize()
                    : 3 * h * c.denseFfnSize();
        }
        return params * Float.BYTES;
    }

    /**
     * The calibration passes, each the MoE layers (ascending) whose Hessians one pass collects: one layer per pass
     * when sequential, else as many as a calibration task can hold. Throws {@link IllegalArgumentException} saying
     * how many bytes are needed where one layer or one solve does not fit.
     */
    static List<int[]> passes(ModelConfig c, String backend, Budget budget, boolean sequential) {
        int[] moe = IntStream.range(0, c.numLayers()).filter(l -> c.moeLayers()[l]).toArray();
        long model = modelOnHeap(c, backend);
        long perTask = Math.max(perLayer(c), perSolve(c));
        long need = model + budget.tasksPerExecutor() * perTask;
        if (need > budget.usable()) {
            int wide = Math.max(c.hiddenSize(), c.expertFfnSize());
            throw new IllegalArgumentException(String.format(Locale.ROOT, "sparsify-job: an executor needs %s "
                    + "but has %s (%s, less the %s Spark reserves): %d task(s) at once, each holding the larger of "
                    + "one MoE layer's Hessians, %s (%d experts x (%d^2 + %d^2) x 8 bytes), and one solve, %s "
                    + "(%d x %d^2 x 8 bytes + the weights)%s. One Hessian is cols^2 x 8 bytes: %s for gate/up, %s "
                    + "for down. Raise spark.executor.memory (local mode: the driver's -Xmx) or run fewer tasks per "
                    + "executor (spark.executor.cores)",
                    bytes(need), bytes(Math.max(0, budget.usable())), budget.source(), human(SPARK_RESERVED),
                    budget.tasksPerExecutor(), bytes(perLayer(c)), c.numExperts(), c.hiddenSize(), c.expertFfnSize(),
                    bytes(perSolve(c)), SOLVE_COPIES, wide,
                    model > 0 ? ", plus the model's fp32 weights on the CPU backend, " + bytes(model) : "",
                    bytes(ExpertHessians.bytes(c.hiddenSize())), bytes(ExpertHessians.bytes(c.expertFfnSize()))));
        }
        long layersThatFit = (budget.usable() - model) / budget.tasksPerExecutor() / perLayer(c);
        int perPass = sequential ? 1 : (int) Math.max(1, Math.min(moe.length, layersThatFit));
        List<int[]> passes = new ArrayList<>();
        for (int i = 0; i < moe.length; i += perPass) {
            passes.add(Arrays.copyOfRange(moe, i, Math.min(moe.length, i + perPass)));
        }
        return passes;
    }

    /** "N bytes (H)", H in binary units. */
    static String bytes(long n) {
        return String.format(Locale.ROOT, "%,d bytes (%s)", n, human(n));
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    }
}
