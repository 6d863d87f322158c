package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelConstants.BN;
import static io.moescore.backend.cuda.KernelConstants.BN_N128;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_PAIRED_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_TILED_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_THREADS;
import static io.moescore.backend.cuda.KernelConstants.GEMM_WS_THREADS;
import static io.moescore.backend.cuda.KernelConstants.SPARSE_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.SPARSE_SM90_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.SP_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP_THREADS;
import static io.moescore.backend.cuda.KernelConstants.VN_ROWS;
import static io.moescore.backend.cuda.KernelConstants.VN_SHARED_BYTES;

import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.ArrayList;
import java.util.List;

/**
 * Every tensor-core GEMM and expert kernel of the fatbin with its launch geometry ({@link KernelVariant}), in the
 * order the tuner tries a family's variants. Names follow the .cu files' instantiating macros
 * (GEMM_KERNELS, GEMM_SM90_KERNELS, GEMM_SM90_TILED_KERNELS, LOGSOFTMAX_SM90_KERNELS, SPARSE24_KERNELS,
 * SPARSE24_SM90_KERNELS, VNM_SM90_KERNELS); sizes come from constants.cuh through {@link KernelConstants}.
 */
final class KernelVariants {
    static final List<KernelVariant> ALL = build();

    private KernelVariants() {
    }

    private static List<KernelVariant> build() {
        List<KernelVariant> all = new ArrayList<>();
        for (HalfType type : HalfType.values()) {
            String t = type.spelling;
            dense(all, type, Family.LINEAR, Family.LINEAR_TILED, "linear_" + t, null);
            // lm_head with the log-softmax in the epilogue, the two pre-tiled wgmma tiles (gemm_sm90.cu); pinned only
            // (not offered to the tuner) until the GPU suite has shown them correct: written in the fifteenth
            // session, whose device machines were paused
            String logSoftmax = "lm_head_logsoftmax_" + t;
            all.add(new KernelVariant(logSoftmax + "_sm90t", Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA, BN,
                    GEMM_THREADS, GEMM_SM90_TILED_SHARED_BYTES(BN), null, false));
            all.add(new KernelVariant(logSoftmax + "_sm90t_n128", Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA_N128,
                    BN_N128, GEMM_THREADS, GEMM_SM90_TILED_SHARED_BYTES(BN_N128), null, false));
            String gateUp = "experts_" + t + "_gate_up";
            String down = "experts_" + t + "_down";
            dense(all, type, Family.EXPERTS, Family.EXPERTS_TILED, gateUp, down);
            // 2:4 packed: mma.sp (sparse24.cu), whatever the setting (weights are packed only for it)
            all.add(variant(gateUp, down, "_sp24", Family.SPARSE24, type, null, SP_ROWS, SP_THREADS,
                    SPARSE_SHARED_BYTES));
            // 2:4 pre-tiled: wgmma.sp in 256-row tiles (sparse24_sm90.cu), in 128-row tiles (vnm_sm90.cu)
            all.add(variant(gateUp, down, "_sp24_sm90", Family.SPARSE24_TILED, type, Kernels.WGMMA, SP_ROWS,
                    SP_THREADS, SPARSE_SM90_SHARED_BYTES));
            all.add(variant(gateUp, down, "_sp24_sm90_n128", Family.SPARSE24_TILED, type, Kernels.WGMMA_N128,
                    VN_ROWS, SP_THREADS, VN_SHARED_BYTES));
            // 128:2:8: VN_ROWS condensed rows per block, twice as many output rows (vnm_sm90.cu)
            all.add(variant(gateUp, down, "_vnm_sm90", Family.VECTOR_SPARSE, type, null, 2 * VN_ROWS, SP_THREADS,
                    VN_SHARED_BYTES));
        }
        return List.copyOf(all);
    }

    /**
     * A dense GEMM family (down null) or grouped one: wgmma 128 x 256, wgmma 128 x 128 and mma.sync over plain
     * rows (gemm_sm90.cu, gemm.cu), then the two wgmma tiles over pre-tiled weights read by bulk copies (_sm90t), the
     * warp-specialized 128 x 256 one over them (_sm90w) and the paired 128 x 128 one (_sm90t2).
     */
    private static void dense(List<KernelVariant> all, HalfType type, Family plain, Family tiled, String gemm,
                              String down) {
        all.add(variant(gemm, down, "_sm90", plain, type, Kernels.WGMMA, BN, GEMM_THREADS,
                GEMM_SM90_SHARED_BYTES(BN)));
        all.add(variant(gemm, down, "_sm90_n128", plain, type, Kernels.WGMMA_N128, BN_N128, GEMM_THREADS,
                GEMM_SM90_SHARED_BYTES(BN_N128)));
        all.add(variant(gemm, down, "", plain, type, Kernels.MMA_SYNC, BN, GEMM_THREADS, GEMM_SHARED_BYTES));
        all.add(variant(gemm, down, "_sm90t", tiled, type, Kernels.WGMMA, BN, GEMM_THREADS,
                GEMM_SM90_TILED_SHARED_BYTES(BN)));
        all.add(variant(gemm, down, "_sm90t_n128", tiled, type, Kernels.WGMMA_N128, BN_N128, GEMM_THREADS,
                GEMM_SM90_TILED_SHARED_BYTES(BN_N128)));
        // not offered to the tuner until the GPU suite (CudaBackendTest pins WGMMA_WS) has shown it correct: written
        // and compiled in the thirteenth session, which had no device time
        all.add(new KernelVariant(gemm + "_sm90w", tiled, type, Kernels.WGMMA_WS, BN, GEMM_WS_THREADS,
                GEMM_SM90_TILED_SHARED_BYTES(BN), down == null ? null : down + "_sm90w", false));
        // the 128 x 128 tile in three stages, two blocks per SM; likewise pinned only until a GPU run shows it
        // correct (written in the fifteenth session, whose device machines were paused)
        all.add(new KernelVariant(gemm + "_sm90t2", tiled, type, Kernels.WGMMA_PAIRED, BN_N128, GEMM_THREADS,
                GEMM_SM90_PAIRED_SHARED_BYTES, down == null ? null : down + "_sm90t2", false));
    }

    /** Kernel {@code gemm + suffix}, paired (grouped families) with {@code down + suffix}, as the macros name them. */
    private static KernelVariant variant(String gemm, String down, String suffix, Family family, HalfType type,
                                         Kernels pin, int rowTile, int threads, int sharedBytes) {
        return new KernelVariant(gemm + suffix, family, type, pin, rowTile, threads, sharedBytes,
                down == null ? null : down + suffix, true);
    }

    /**
     * The variants of a family and type a backend set to {@code kernels} may run, in the tuner's order; where the
     * setting pins none of the family, its {@link Kernels#standIn() stand-in}'s.
     */
    static List<KernelVariant> of(Family family, HalfType type, Kernels kernels) {
        List<KernelVariant> own = ALL.stream()
                .filter(v -> v.family() == family && v.type() == type && v.runsUnder(kernels)).toList();
        return own.isEmpty() && kernels.standIn() != null ? of(family, type, kernels.standIn()) : own;
    }
}
