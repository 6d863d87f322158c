package io.moescore.backend.cuda;

import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Which kernel variants one CUDA backend runs: its {@link Kernels} setting resolved for its GPU, and the tuner that
 * picks among a family's variants per shape when that setting is TUNED.
 */
final class KernelChoice {
    /**
     * {@code -Dmoescore.attention} / {@code MOESCORE_ATTENTION}: {@code auto} (the default) runs the wgmma kernels
     * (attention_sm90.cu) where the wgmma families run and they were measured faster than the mma.sync ones
     * ({@link #SM90_ATTENTION_HEAD_DIMS}); {@code sm90} at every head size they take; {@code fa} never.
     */
    static final String ATTENTION_PROPERTY = "moescore.attention";
    static final String ATTENTION_ENV = "MOESCORE_ATTENTION";
    /**
     * Head sizes at which auto takes attention_sm90.cu: measured on an H100 (twelfth session, bench/NOTES.md) at
     * 1.22-1.56x the mma.sync kernel at 256, 0.75-0.93x at 64 and 128 on 512-token sequences and 0.98-1.07x on
     * 2048-token ones.
     */
    static final java.util.Set<Integer> SM90_ATTENTION_HEAD_DIMS = java.util.Set.of(256);

    /** {@link #ATTENTION_PROPERTY}'s values. */
    enum Attention { AUTO, SM90, FA }

    private final GpuRuntime gpu;
    private final Kernels kernels;
    private final Attention attention;
    private final HalfType type;
    private final KernelTuner tuner;
    private final CudaLauncher holdLauncher;

    /**
     * @throws IllegalArgumentException for a wgmma family on a GPU that is not a Hopper, or a value of
     *                                  {@link #ATTENTION_PROPERTY} other than auto and fa
     */
    KernelChoice(GpuRuntime gpu, Kernels requested, HalfType type, boolean deterministic) {
        this.gpu = gpu;
        this.attention = attention(System.getProperty(ATTENTION_PROPERTY, System.getenv(ATTENTION_ENV)));
        this.type = type;
        boolean hopper = gpu.computeCapability().equals("9.0");
        if (requested.needsHopper() && !hopper) {
            throw new IllegalArgumentException("wgmma kernels need compute capability 9.0, not "
                    + gpu.computeCapability());
        }
        Kernels fixed = hopper ? Kernels.WGMMA : Kernels.MMA_SYNC;
        this.kernels = requested == Kernels.TUNED && (deterministic || !hopper) ? fixed : requested;
        this.tuner = kernels == Kernels.TUNED ? KernelTuner.forModel(gpu.name()) : null;
        this.holdLauncher = new CudaLauncher(gpu);
    }

    /** The setting in force: TUNED only on a Hopper outside deterministic mode. */
    Kernels kernels() {
        return kernels;
    }

    /**
     * Whether the sm_90a families (wgmma, wgmma.sp) run here, which read expert weights (and, in bf16 and fp16, the
     * linear layers' weights) pre-tiled, rather than mma.sync / mma.sp over the plain and packed layouts (what
     * sm_80-89 run; pinned with MMA_SYNC on a Hopper too).
     */
    boolean runsWgmma() {
        return kernels != Kernels.MMA_SYNC;  // TUNED and MMA_SYNC are the only settings left off a Hopper
    }

    /**
     * Whether attention at this head size runs on the wgmma kernels (attention_sm90.cu, at the head sizes they take):
     * where the wgmma families run (a Hopper, kernels not pinned to MMA_SYNC), as {@link #ATTENTION_PROPERTY} says.
     */
    boolean runsWgmmaAttention(int headDim) {
        return runsWgmma() && switch (attention) {
            case FA -> false;
            case SM90 -> true;
            case AUTO -> SM90_ATTENTION_HEAD_DIMS.contains(headDim);
        };
    }

    /** {@link #ATTENTION_PROPERTY}'s value (null: not set, auto) read. */
    static Attention attention(String configured) {
        String value = configured == null || configured.isBlank() ? "auto" : configured.strip();
        for (Attention a : Attention.values()) {
            if (a.name().toLowerCase(java.util.Locale.ROOT).equals(value)) {
                return a;
            }
        }
        throw new IllegalArgumentException("-D" + ATTENTION_PROPERTY + " / " + ATTENTION_ENV + " must be auto (wgmma "
                + "attention on a Hopper where measured faster), sm90 (wgmma attention at every head size it takes) or "
                + "fa (the mma.sync kernels), not \"" + configured + "\"");
    }

    /** The variants of a family this backend may run, in the tuner's order; empty where the setting offers none. */
    List<KernelVariant> offered(Family family) {
        return KernelVariants.of(family, type, kernels);
    }

    /** {@link #offered}, refused where empty: the weights were laid out for a family this setting does not run. */
    List<KernelVariant> variants(Family family) {
        List<KernelVariant> variants = offered(family);
        if (variants.isEmpty()) {
            throw new IllegalStateException("no " + family + " kernel runs with kernels " + kernels
                    + ": these weights were laid out for another kernel family");
        }
        return variants;
    }

    /**
     * The variant of a family to run for a shape: the only one, or the tuner's pick (timing each with {@code run} on
     * first sight of the shape). The shape key names the operand type where it is not bf16, so bf16 and fp16 picks
     * never evict each other. The caller runs the returned variant.
     */
    KernelVariant choose(String shape, Family family, Consumer<KernelVariant> run) {
        return choose(shape, variants(family), run);
    }

    /** {@link #choose(String, Family, Consumer)} among given candidates (kernels and libraries), the first untuned. */
    <C extends KernelTuner.Candidate> C choose(String shape, List<C> candidates, Consumer<C> run) {
        String key = shape + (type == HalfType.F16 ? " fp16" : "");
        return tuner == null ? candidates.get(0)
                : tuner.pick(key, candidates, run, () -> holdStream(holdLauncher), gpu.stream());
    }

    /** Keeps the launcher's stream busy for TUNER_HOLD_NS while the tuner enqueues a timed batch (timing.cu). */
    static void holdStream(CudaLauncher launcher) {
        launcher.launch("tuner_hold", 1, 1, 1, 0, (long) KernelConstants.TUNER_HOLD_NS);
    }

    /**
     * cuBLASLt, offered to the tuner beside our dense GEMM kernels where the library loads: only when tuning (not
     * in deterministic mode, whose scores must not depend on a library's choice of algorithm per shape, nor with a
     * pinned kernel family); null otherwise.
     */
    CublasLt library() {
        return tuner == null ? null : gpu.cublasLt(type);
    }

    /** The tuner's choices so far, shape -> kernel (empty where nothing is tuned). */
    Map<String, String> tuned() {
        return tuner == null ? Map.of() : tuner.choices();
    }
}
