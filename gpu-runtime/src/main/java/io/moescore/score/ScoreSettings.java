package io.moescore.score;

import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.backend.Precision;
import io.moescore.backend.select.Backends;
import io.moescore.engine.ExpertPlacement;
import io.moescore.engine.LoadOptions;
import io.moescore.model.ModelConfig;
import io.moescore.placement.PlanFile;
import io.moescore.routing.RoutingSpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * How rows are scored: the one home of every scoring option, its default and its checks. Every surface maps onto
 * this record through {@link #resolve}: {@code moescore score-local} and the Spark jobs' command lines (flags made
 * from {@link #ALL} by spark-job's {@code CommandSettings}), {@code spark.moescore.KEY} conf (the jobs, and
 * {@code cpuThreads} for {@code MoeScorer}), {@code MoeScorer}'s Params (one per setting, made from {@link #ALL})
 * and {@link LocalScoreOptions}. An error names the option as its user gave it: {@code --batch-tokens},
 * {@code spark.moescore.batchTokens} or {@code MoeScorer param batchTokens}.
 *
 * <p><b>Adding an option</b> (as {@code --allow-nonfinite} was added) is a change to this file only: a component
 * below, its {@link Setting} constant (conf/Param name, flag, default, help, checks), that constant in {@link #ALL} and in
 * {@link #resolve}/{@link #values}. The command lines of score-local, score and MoeScorer's Params then have it,
 * conf {@code spark.moescore.KEY} sets it in the jobs, the job summaries and the resume manifest record it, and
 * code reads it as {@code settings.allowNonfinite()}. The sparsify job takes the subset it lists
 * ({@code SparsifyJob.SETTINGS}). An option of one command only (score-local's output handling, the job's
 * formats) belongs to that command's options record ({@link LocalScoreOptions}, {@code ScoreJobOptions}).
 *
 * @param backend       auto (the GPU where one and the kernels are usable, else the CPU), cpu or cuda
 * @param precision     how the GPU multiplies ({@link Precision}); the CPU backend computes in fp32 whatever it says
 * @param deterministic batch-invariant GPU scores (the CPU backend always is)
 * @param batchTokens   tokens per forward pass; a longer sequence gets a batch of its own ({@link BatchPlanner})
 * @param tokenLogProbs also give each token's log-prob
 * @param topK          also give the K most likely tokens after each sequence (0: none)
 * @param cpuThreads    threads of the CPU backend (0: all cores of the machine that scores)
 * @param allowNonfinite load weights holding NaN or infinities; by default the first one fails the load naming the
 *                      tensor ({@link io.moescore.engine.LoadOptions}); rows whose scores come out non-finite are
 *                      kept with an error either way
 * @param longRows      what becomes of a row longer than the model's context ({@link LongRows}, {@link RowPlan})
 * @param stride        with {@link LongRows#STRIDE}: tokens each window starts after the one before (0: half the
 *                      context); below the context ({@link #rowLimits})
 * @param routing       which router the MoE layers use ({@link RoutingSpec}; {@code model}: the model's own). A spec
 *                      whose scores depend on batch composition ({@code batch-top-k:K} without a block) is refused
 *                      with {@code --deterministic}
 * @param deviceMemory  bytes the engine may use for weights and activations (0: the device's memory); routed experts
 *                      that do not fit stream from host memory, changing no score ({@link LoadOptions#deviceMemory})
 * @param devices       devices the routed experts are spread over (0: one, or as many as {@link #placement} names;
 *                      {@link #resolvedDevices}); on the CPU backend logical devices splitting {@link #cpuThreads}
 * @param placement     which devices hold each MoE layer's experts ({@link PlanFile#NONE}: round-robin), read and
 *                      checked where the option is given; scores do not depend on it ({@link LoadOptions#placement})
 */
public record ScoreSettings(String backend, Precision precision, boolean deterministic, int batchTokens,
                            boolean tokenLogProbs, int topK, int cpuThreads, boolean allowNonfinite,
                            LongRows longRows, int stride, RoutingSpec routing, long deviceMemory, int devices,
                            PlanFile placement)
        implements Serializable {
    /** ForkJoinPool's limit is 32767; far above any machine's cores, and a typo like 100000 is caught by name. */
    public static final int MAX_CPU_THREADS = 4096;

    public static final Setting<String> BACKEND = Setting.choice("backend", "--backend", String.class, "auto",
            List.of("auto", "cpu", "cuda"), Function.identity(),
            "auto (the GPU where a device and kernels are usable, else the CPU), cpu or cuda");
    public static final Setting<Precision> PRECISION = Setting.choice("precision", "--precision", Precision.class,
            Precision.BF16, Arrays.asList(Precision.values()), Precision::userName,
            "GPU precision: bf16 (fast), fp16 (as fast; fp16 checkpoints exactly, 11-bit GEMM inputs) or split-bf16 "
                    + "(near-fp32 log-probs, 2-3x the GEMM work); the CPU backend is fp32 whatever it says");
    public static final Setting<Boolean> DETERMINISTIC = Setting.flag("deterministic", "--deterministic",
            "batch-invariant GPU scores: a row's scores are bit-identical whatever it is batched or partitioned "
                    + "with, 1-4 percent slower");
    public static final Setting<Integer> BATCH_TOKENS = Setting.integer("batchTokens", "--batch-tokens", 8192, 1,
            Integer.MAX_VALUE, "tokens per forward pass (rows are batched shortest first; a longer row goes alone)");
    public static final Setting<Boolean> TOKEN_LOGPROBS = Setting.flag("tokenLogprobs", "--token-logprobs",
            "also write each token's log-prob given the ones before it");
    public static final Setting<Integer> TOP_K = Setting.integer("topK", "--top-k", 0, 0, Integer.MAX_VALUE,
            "also write the K most likely tokens after each sequence (0: none)");
    public static final Setting<Integer> CPU_THREADS = Setting.integer("cpuThreads", "--threads", 0, 0,
            MAX_CPU_THREADS, "threads of the CPU backend (0: all cores; per executor in the Spark job)");
    public static final Setting<Boolean> ALLOW_NONFINITE = Setting.flag("allowNonfinite", "--allow-nonfinite",
            "load weights holding NaN or infinities (refused by default, naming the tensor); rows whose scores come "
                    + "out non-finite get an error");

    public static final Setting<LongRows> LONG_ROWS = Setting.choice("longRows", "--long-rows", LongRows.class,
            LongRows.ERROR, Arrays.asList(LongRows.values()), LongRows::userName,
            "rows longer than the model's context (max_position_embeddings): error (the row gets an error), "
                    + "truncate (score the first context tokens) or stride (Hugging Face's strided perplexity: "
                    + "windows of the context, each token scored once; see --stride)");
    public static final Setting<Integer> STRIDE = Setting.integer("stride", "--stride", 0, 0, Integer.MAX_VALUE,
            "with --long-rows stride: each window starts S tokens after the one before, so every token after the "
                    + "first window is scored with context - S tokens before it (0: half the context)");

    public static final Setting<RoutingSpec> ROUTING = Setting.parsed("routing", "--routing", "SPEC",
            RoutingSpec.class, RoutingSpec.MODEL, RoutingSpec::parse, RoutingSpec::toString,
            "the MoE layers' router: model (the model's own), top-k:K, top-p:P[:MAXK], sigmoid:T, softmax:T, "
                    + "sparsemax, quadratic:T, pioneer:T (MiSTer's threshold gates), batch-top-k:K[:B] (one expert "
                    + "set per batch, or per block of B token rows) or drop-experts:FILE; all but model and top-k:K "
                    + "need --backend cpu");

    public static final Setting<Long> DEVICE_MEMORY = Setting.bytes("deviceMemory", "--device-memory",
            "cap the memory the engine uses for weights and activations (e.g. 6g, 512m; 0: the device's): MoE "
                    + "layers' experts that do not fit stream from host memory, scores unchanged; a cap below the "
                    + "non-expert weights, two layers' experts and one sequence's activations is refused");

    /** The most devices one engine spreads its experts over. */
    public static final int MAX_DEVICES = 256;

    public static final Setting<Integer> DEVICES = Setting.integer("devices", "--devices", 0, 0, MAX_DEVICES,
            "devices the MoE layers' experts are spread over, scores unchanged (0: one, or as many as --placement "
                    + "names): on the CPU backend logical devices splitting --threads; on cuda the GPUs from the "
                    + "executor's own on (not yet run on GPUs). Device 0 holds the rest of the model");
    /** {@link #PLACEMENT}'s value for no plan. */
    public static final String ROUND_ROBIN = "round-robin";
    public static final Setting<PlanFile> PLACEMENT = Setting.parsed("placement", "--placement", "PLAN.json",
            PlanFile.class, PlanFile.NONE, ScoreSettings::placementFile, ScoreSettings::placementName,
            "which devices hold each MoE layer's experts: a plan from `moescore placement` (its \"devices\" gives "
                    + "--devices; a replicated expert's tokens are split among its copies), or round-robin (expert e "
                    + "on device e mod --devices)");

    /** Every scoring setting, in the order summaries and manifests list them. */
    public static final List<Setting<?>> ALL = List.of(BACKEND, PRECISION, DETERMINISTIC, BATCH_TOKENS,
            TOKEN_LOGPROBS, TOP_K, CPU_THREADS, ALLOW_NONFINITE, LONG_ROWS, STRIDE, ROUTING, DEVICE_MEMORY, DEVICES,
            PLACEMENT);

    /** Every setting at its default. */
    public static final ScoreSettings DEFAULTS = resolve(Setting.Source.NONE);

    /** Checks every value; errors name the setting by its key (code that builds settings directly). */
    public ScoreSettings {
        backend = BACKEND.valueOf(backend, BACKEND.key());
        PRECISION.valueOf(precision, PRECISION.key());
        BATCH_TOKENS.valueOf(batchTokens, BATCH_TOKENS.key());
        TOP_K.valueOf(topK, TOP_K.key());
        CPU_THREADS.valueOf(cpuThreads, CPU_THREADS.key());
        LONG_ROWS.valueOf(longRows, LONG_ROWS.key());
        STRIDE.valueOf(stride, STRIDE.key());
        routing = ROUTING.valueOf(routing, ROUTING.key());
        DEVICE_MEMORY.valueOf(deviceMemory, DEVICE_MEMORY.key());
        DEVICES.valueOf(devices, DEVICES.key());
        placement = PLACEMENT.valueOf(placement, PLACEMENT.key());
        if (devices > 0 && !placement.isNone() && placement.plan().limits().devices() != devices) {
            throw new IllegalArgumentException(DEVICES.flag() + " (" + DEVICES.key() + ") " + devices + " differs from "
                    + "the " + placement.plan().limits().devices() + " devices of " + PLACEMENT.flag() + " "
                    + placement.path() + ": give one of them, or the same count");
        }
        if (deterministic && routing.dependsOnBatch()) {
            throw new IllegalArgumentException(DETERMINISTIC.flag() + " (" + DETERMINISTIC.key() + ") refuses "
                    + ROUTING.flag() + " " + routing + " (" + ROUTING.key() + "): its scores depend on the rows "
                    + "batched together; give a block of token rows, " + routing + ":B, or drop --deterministic");
        }
    }

    /**
     * The settings {@code source} gives, each checked and named as given there; the default where it gives none.
     *
     * @throws IllegalArgumentException naming the first option that is wrong
     */
    public static ScoreSettings resolve(Setting.Source source) {
        return new ScoreSettings(BACKEND.resolve(source), PRECISION.resolve(source), DETERMINISTIC.resolve(source),
                BATCH_TOKENS.resolve(source), TOKEN_LOGPROBS.resolve(source), TOP_K.resolve(source),
                CPU_THREADS.resolve(source), ALLOW_NONFINITE.resolve(source), LONG_ROWS.resolve(source),
                STRIDE.resolve(source), ROUTING.resolve(source), DEVICE_MEMORY.resolve(source),
                DEVICES.resolve(source), PLACEMENT.resolve(source));
    }

    /** {@code round-robin} (any case) for none, else a plan file, read and checked ({@link PlanFile#parse}). */
    private static PlanFile placementFile(String text) {
        return text.trim().equalsIgnoreCase(ROUND_ROBIN) ? PlanFile.NONE : PlanFile.parse(text);
    }

    private static String placementName(PlanFile plan) {
        return plan.isNone() ? ROUND_ROBIN : plan.path();
    }

    /** What the chosen backend lacks to run a model of this config (empty: nothing), asked without opening it. */
    public List<String> unsupported(ModelConfig config) {
        List<String> missing = new ArrayList<>(Backends.unsupported(backend, config));
        if (!routing.isModel() && routing.routers(config).stream()
                .anyMatch(r -> r != null && !Backends.routes(backend, r))) {
            missing.add("a kernel for " + ROUTING.flag() + " " + routing + " on this model");
        }
        return missing;
    }

    /**
     * Checks {@link #routing} against a model's config before its weights load (a K above its experts, a drop list
     * naming a layer or expert it lacks).
     *
     * @throws IllegalArgumentException naming --routing and what is wrong
     */
    public void checkRouting(ModelConfig config) {
        routing.routers(config);
    }

    /** Every setting with its value, in {@link #ALL}'s order. */
    public Map<Setting<?>, Object> values() {
        Map<Setting<?>, Object> values = new LinkedHashMap<>();
        values.put(BACKEND, backend);
        values.put(PRECISION, precision);
        values.put(DETERMINISTIC, deterministic);
        values.put(BATCH_TOKENS, batchTokens);
        values.put(TOKEN_LOGPROBS, tokenLogProbs);
        values.put(TOP_K, topK);
        values.put(CPU_THREADS, cpuThreads);
        values.put(ALLOW_NONFINITE, allowNonfinite);
        values.put(LONG_ROWS, longRows);
        values.put(STRIDE, stride);
        values.put(ROUTING, routing);
        values.put(DEVICE_MEMORY, deviceMemory);
        values.put(DEVICES, devices);
        values.put(PLACEMENT, placement);
        return values;
    }

    /** These settings with one changed: {@code DEFAULTS.with(BACKEND, "cpu").with(TOP_K, 5)}. */
    public <T> ScoreSettings with(Setting<T> setting, T value) {
        Map<Setting<?>, Object> values = values();
        values.put(setting, value);
        return resolve(s -> new Setting.Given(values.get(s), s.key()));
    }

    /** Each setting by its key with its value as JSON holds it ({@code {"backend": "cpu", "batchTokens": 8192}}). */
    public Map<String, Object> describe() {
        Map<String, Object> out = new LinkedHashMap<>();
        values().forEach((s, v) -> out.put(s.key(), json(s, v)));
        return out;
    }

    @SuppressWarnings("unchecked")
    private static <T> Object json(Setting<T> setting, Object value) {
        return setting.jsonValue((T) value);
    }

    /** The CPU threads to use on this machine: {@link #cpuThreads}, or all its cores where that is 0. */
    public int resolvedCpuThreads() {
        return cpuThreads > 0 ? cpuThreads : Runtime.getRuntime().availableProcessors();
    }

    /**
     * Opens the backend these settings ask for on a CUDA device (the CPU backend ignores it); the caller owns it.
     *
     * @throws IllegalArgumentException where cuda was asked for and cannot run (the message says why)
     */
    public Backend openBackend(int device) {
        return Backends.open(backend, resolvedCpuThreads(), device, precision, deterministic);
    }

    /** The devices the experts are spread over: {@link #devices}, else the plan's count, else one. */
    public int resolvedDevices() {
        return devices > 0 ? devices : placement.isNone() ? 1 : placement.plan().limits().devices();
    }

    /**
     * Opens the {@link #resolvedDevices} an engine computes on ({@link Backends#openDevices}: on the CPU backend
     * logical devices splitting the threads, on cuda the GPUs from {@code device} on); the caller owns them.
     *
     * @throws IllegalArgumentException where cuda was asked for and cannot run (the message says why)
     */
    public Devices openDevices(int device) {
        return Devices.of(Backends.openDevices(backend, resolvedCpuThreads(), device, resolvedDevices(), precision,
                deterministic));
    }

    /**
     * Checks {@link #placement} against a model's config before its weights load ({@link ExpertPlacement#of}).
     *
     * @return the experts' devices over {@link #resolvedDevices} (round-robin without a plan)
     * @throws IllegalArgumentException naming the plan's file and the layer that does not fit
     */
    public ExpertPlacement checkPlacement(ModelConfig config) {
        return ExpertPlacement.of(placement, config, resolvedDevices());
    }

    /** How an engine loads its weights under these settings (non-finite weights allowed, routers, memory cap). */
    public LoadOptions loadOptions() {
        return LoadOptions.DEFAULT.withAllowNonfinite(allowNonfinite).withRouting(routing)
                .withDeviceMemory(deviceMemory).withPlacement(placement);
    }

    /** Whether a row's scores depend on the rows batched with it (its output says so: {@link #routing}). */
    public boolean batchDependentScores() {
        return routing.dependsOnBatch();
    }

    /**
     * What an engine depends on: these settings with those that only shape a batch's work (batch tokens, token
     * log-probs, top-k, long rows) at their defaults, so engines can be shared across them.
     */
    public ScoreSettings forEngine() {
        return new ScoreSettings(backend, precision, deterministic, DEFAULTS.batchTokens, DEFAULTS.tokenLogProbs,
                DEFAULTS.topK, cpuThreads, allowNonfinite, DEFAULTS.longRows, DEFAULTS.stride, routing, deviceMemory,
                devices, placement);
    }

    /**
     * How rows longer than a model's context of {@code context} tokens are scored under these settings.
     *
     * @throws IllegalArgumentException naming --stride (spark.moescore.stride) where it is not below the context
     */
    public RowPlan.Limits rowLimits(int context) {
        if (longRows != LongRows.STRIDE || stride == 0) {
            return new RowPlan.Limits(longRows, context, Math.max(1, context / 2));
        }
        if (stride >= context) {
            throw new IllegalArgumentException(STRIDE.flag() + " (" + STRIDE.key() + ") " + stride + " is not below "
                    + "the model's context of " + context + " tokens (max_position_embeddings): give 1 to "
                    + (context - 1) + ", or 0 for half the context");
        }
        return new RowPlan.Limits(longRows, context, stride);
    }
}
