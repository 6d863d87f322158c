package io.moescore.spark.sparsify;

import io.moescore.model.ModelConfig;
import io.moescore.sparsify.ExpertHessians;
import io.moescore.sparsify.Sparsifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * What the sparsify job holds in an executor's heap, checked on the driver before any work. A Hessian is summed
 * exactly as its packed upper triangle, cols (cols + 1) / 2 x 16 bytes ({@link ExpertHessians#bytes}, about cols^2 x 8):
 * hidden's for an expert's gate and up, ffn's for its down (wanda: only the diagonal, cols x 16). A calibration task
 * holds every expert's of the layers of its pass, and to reconstruct up to {@link Sparsifier#RECONSTRUCTION_TOKENS}
 * inputs per expert; a solve task one Hessian (reconstructing: both of one expert, and its inputs), the fp64 matrix
 * and SparseGPT's working copies of it ({@link #SOLVE_COPIES} x cols^2 x 8 for the wider projection); a
 * reconstruction task one expert's inputs, its outputs and activations over them, and its weights with Adam's
 * moments; with the CPU backend the executor also holds the model's weights in fp32. Several tasks of one executor
 * run at once.
 */
final class HessianMemory {
    /** Heap Spark keeps for itself in every executor (its reserved memory). */
    static final long SPARK_RESERVED = 300L << 20;
    /** The fp64 Hessian and SparseGPT's copies and factors of it, as Hessian-sized fp64 arrays. */
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

    /** Bytes of one collected statistic of a projection input with this many columns. */
    static long statistic(int cols, Pruning pruning) {
        return pruning.diagonalsOnly() ? 16L * cols : ExpertHessians.bytes(cols);
    }

    /** Bytes of one expert's calibration inputs at most (fp32 rows). */
    static long inputs(ModelConfig c, Pruning pruning) {
        return pruning.reconstructs() ? (long) Sparsifier.RECONSTRUCTION_TOKENS * c.hiddenSize() * Float.BYTES : 0;
    }

    /** Bytes a calibration task holds per MoE layer of its pass: every expert's statistics and inputs. */
    static long perLayer(ModelConfig c, Pruning pruning) {
        return c.numExperts() * (statistic(c.hiddenSize(), pruning) + statistic(c.expertFfnSize(), pruning)
                + inputs(c, pruning));
    }

    /** Bytes a solve task needs: the wider projection input's solve (reconstructing: the whole expert's). */
    static long perSolve(ModelConfig c, Pruning pruning) {
        int cols = Math.max(c.hiddenSize(), c.expertFfnSize());
        long weights = 3L * c.hiddenSize() * c.expertFfnSize() * Double.BYTES;
        if (pruning.diagonalsOnly()) {
            return 2 * statistic(cols, pruning) + weights;
        }
        long solve = SOLVE_COPIES * (long) cols * cols * Double.BYTES + weights;
        return pruning.reconstructs() ? solve + statistic(c.hiddenSize(), pruning)
                + statistic(c.expertFfnSize(), pruning) + 2 * inputs(c, pruning) : solve;
    }

    /**
     * Bytes a reconstruction task needs: inputs and targets [tokens, hidden], the forward pass's [tokens, ffn]
     * activations (3), and per weight the dense and pruned fp32 copies, a gradient, a transpose and Adam's two fp64
     * moments.
     */
    static long perReconstruct(ModelConfig c, Pruning pruning) {
        if (!pruning.reconstructs()) {
            return 0;
        }
        long tokens = Sparsifier.RECONSTRUCTION_TOKENS;
        return 3 * inputs(c, pruning) + 3 * tokens * c.expertFfnSize() * Float.BYTES
                + 3L * c.hiddenSize() * c.expertFfnSize() * (4 * Float.BYTES + 2 * Double.BYTES);
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
     * The calibration passes, each the MoE layers (ascending) whose statistics one pass collects: one layer per pass
     * when sequential, else as many as a calibration task can hold. Throws {@link IllegalArgumentException} saying
     * how many bytes are needed where one layer, one solve or one reconstruction does not fit.
     */
    static List<int[]> passes(ModelConfig c, String backend, Budget budget, Pruning pruning, boolean sequential) {
        int[] moe = IntStream.range(0, c.numLayers()).filter(l -> c.moeLayers()[l]).toArray();
        long model = modelOnHeap(c, backend);
        long layer = perLayer(c, pruning);
        long perTask = Math.max(layer, Math.max(perSolve(c, pruning), perReconstruct(c, pruning)));
        long need = model + budget.tasksPerExecutor() * perTask;
        if (need > budget.usable()) {
            int wide = Math.max(c.hiddenSize(), c.expertFfnSize());
            throw new IllegalArgumentException(String.format(Locale.ROOT, "sparsify-job: an executor needs %s "
                    + "but has %s (%s, less the %s Spark reserves): %d task(s) at once, each holding the largest of "
                    + "one MoE layer's Hessians%s, %s (%d experts), one solve, %s (%d x %d^2 x 8 bytes + the "
                    + "weights)%s%s. One Hessian is summed as cols (cols + 1) / 2 x 16 bytes: %s for gate/up, %s "
                    + "for down. Raise spark.executor.memory (local mode: the driver's -Xmx) or run fewer tasks per "
                    + "executor (spark.executor.cores)",
                    bytes(need), bytes(Math.max(0, budget.usable())), budget.source(), human(SPARK_RESERVED),
                    budget.tasksPerExecutor(), pruning.reconstructs() ? " and expert inputs" : "", bytes(layer),
                    c.numExperts(), bytes(perSolve(c, pruning)), SOLVE_COPIES, wide,
                    pruning.reconstructs() ? ", and one expert's reconstruction, "
                            + bytes(perReconstruct(c, pruning)) : "",
                    model > 0 ? ", plus the model's fp32 weights on the CPU backend, " + bytes(model) : "",
                    bytes(ExpertHessians.bytes(c.hiddenSize())), bytes(ExpertHessians.bytes(c.expertFfnSize()))));
        }
        long layersThatFit = (budget.usable() - model) / budget.tasksPerExecutor() / layer;
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
