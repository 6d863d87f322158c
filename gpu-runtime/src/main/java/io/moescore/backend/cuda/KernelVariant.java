package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelConstants.BM;
import static io.moescore.backend.cuda.KernelConstants.SP_TOKENS;

import java.util.Objects;

/**
 * One tensor-core kernel the backend may launch for a dense GEMM or a grouped expert layer, as data: what the
 * launch needs to know about it. The variants of a {@link Family} compute the same function with the same
 * arguments (tile shapes and instruction families differ), so the tuner may pick any of them; the table of them
 * all is {@link KernelVariants}.
 *
 * @param name        the kernel's name in the fatbin
 * @param family      what it computes, over which weight layout
 * @param type        the 16-bit operand type
 * @param pin         the {@link Kernels} setting that pins it (never TUNED), or null where it is its family's only
 *                    kernel for that type, run whatever the setting
 * @param rowTile     weight (output) rows per block: the grid's second dimension is ceil(rows / rowTile)
 * @param threads     threads per block
 * @param sharedBytes dynamic shared memory per block, for the kernel and its pair
 * @param pair        for the grouped expert families, the down-projection kernel launched after this gate+up
 *                    kernel, with the same tile, threads and shared memory; null for the dense GEMMs
 * @param tunable     whether TUNED offers it to the tuner: the tuner keeps the fastest candidate, never checks its
 *                    results, so a kernel not yet shown correct on a GPU (the GPU suite pins it) stays out
 */
record KernelVariant(String name, Family family, HalfType type, Kernels pin, int rowTile, int threads,
                     int sharedBytes, String pair, boolean tunable) implements KernelTuner.Candidate {

    /** What a variant computes, over which weight layout; the launch code of a family is one. */
    enum Family {
        /** linear_T*: out = x w^T (+ bias), w as rows of 16-bit copies (gemm.cu, gemm_sm90.cu). */
        LINEAR(BM, false),
        /** linear_T_sm90t*: the same over a pre-tiled copy of w, read by bulk copies (gemm_sm90.cu). */
        LINEAR_TILED(BM, false),
        /**
         * lm_head_logsoftmax_T_sm90t*: lm_head over a pre-tiled copy with the log-softmax folded into the epilogue
         * (gemm_sm90.cu; {@link CudaLogProbs}).
         */
        LOGSOFTMAX_TILED(BM, false),
        /** experts_T_gate_up* and experts_T_down*: dense experts as rows of 16-bit copies. */
        EXPERTS(BM, true),
        /** The same over pre-tiled expert weights (_sm90t). */
        EXPERTS_TILED(BM, true),
        /** 2:4 experts, packed values and metadata, on mma.sp (sparse24.cu). */
        SPARSE24(SP_TOKENS, true),
        /** 2:4 experts pre-tiled, on wgmma.sp (sparse24_sm90.cu; the 128-row tiles of vnm_sm90.cu). */
        SPARSE24_TILED(SP_TOKENS, true),
        /** 128:2:8 experts, pre-tiled condensed rows (vnm_sm90.cu). */
        VECTOR_SPARSE(SP_TOKENS, true);

        /**
         * Token (activation) rows per block: the grid's first dimension for the dense GEMMs, the rows of a work
         * item (the entries of one expert one block takes) for the grouped ones.
         */
        final int tokenRows;
        /** Grouped over experts: a gate+up kernel and its down kernel. */
        final boolean grouped;

        Family(int tokenRows, boolean grouped) {
            this.tokenRows = tokenRows;
            this.grouped = grouped;
        }
    }

    KernelVariant {
        Objects.requireNonNull(name, "kernel name");
        Objects.requireNonNull(family, "kernel family");
        Objects.requireNonNull(type, "kernel operand type");
        if (pin == Kernels.TUNED) {
            throw new IllegalArgumentException(name + ": a kernel is pinned by a family setting, not TUNED");
        }
        if (family.grouped != (pair != null)) {
            throw new IllegalArgumentException(name + ": " + family + (family.grouped ? " needs" : " has no")
                    + " paired down kernel");
        }
        if (rowTile <= 0 || threads <= 0 || sharedBytes < 0) {
            throw new IllegalArgumentException(name + ": row tile " + rowTile + ", threads " + threads
                    + ", shared bytes " + sharedBytes);
        }
    }

    /** Whether a backend set to {@code kernels} may run this variant. */
    boolean runsUnder(Kernels kernels) {
        return pin == null || pin == kernels || (kernels == Kernels.TUNED && tunable);
    }
}
