package io.moescore.backend.cuda;

/**
 * Which tensor-core kernels a CUDA backend may run. TUNED (the default) lets {@link KernelTuner} pick per shape
 * among those the GPU has; the others pin one family (tests check each against the CPU; benchmarks time each).
 */
public enum Kernels {
    /**
     * On a Hopper: the fastest per shape of wgmma 128x256 and 128x128 (and mma.sync where the weights are not
     * pre-tiled: split-bf16); 2:4 experts on wgmma.sp in 256- or 128-row tiles, 128:2:8 experts on their kernel.
     */
    TUNED,
    /** wgmma, 128 x 256 tiles; wgmma.sp in 256-row tiles for 2:4 (sm_90a). */
    WGMMA,
    /** wgmma, 128 x 128 tiles; wgmma.sp in 128-row tiles for 2:4 (sm_90a). */
    WGMMA_N128,
    /**
     * wgmma 128 x 256, warp-specialized (a producer warpgroup copies, two consumer warpgroups multiply: _sm90w) over
     * pre-tiled weights, the dense experts' and linear layers'; the families without such a kernel (plain weight
     * rows, 2:4, attention) run as under {@link #WGMMA} (sm_90a).
     */
    WGMMA_WS,
    /**
     * wgmma 128 x 128 over pre-tiled weights in three stages, so that two blocks share an SM and one's epilogue runs
     * beside the other's main loop (_sm90t2), the dense experts' and linear layers'; the families without such a
     * kernel run as under {@link #WGMMA_N128} (sm_90a).
     */
    WGMMA_PAIRED,
    /**
     * mma.sync and mma.sp over the plain / packed weight layouts, and attention's mma.sync kernels (attention_fa.cu):
     * what sm_80-89 run. Every other setting runs attention on wgmma on a Hopper (attention_sm90.cu), unless
     * {@code -Dmoescore.attention=fa} / {@code MOESCORE_ATTENTION=fa} keeps it on mma.sync.
     */
    MMA_SYNC;

    /**
     * Whose kernels run where this setting pins none in a family: WGMMA for WGMMA_WS, WGMMA_N128 for WGMMA_PAIRED, else
     * null (none).
     */
    Kernels standIn() {
        return switch (this) {
            case WGMMA_WS -> WGMMA;
            case WGMMA_PAIRED -> WGMMA_N128;
            default -> null;
        };
    }

    /** Whether the setting pins sm_90a kernels, which only a Hopper runs. */
    boolean needsHopper() {
        return this == WGMMA || this == WGMMA_N128 || this == WGMMA_WS || this == WGMMA_PAIRED;
    }
}
