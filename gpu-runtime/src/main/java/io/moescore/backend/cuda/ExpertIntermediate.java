package io.moescore.backend.cuda;

import io.moescore.model.DType;

/**
 * The SwiGLU rows the gate/up kernels hand the down kernels (silu(x gate^T) * (x up^T), bf16 or fp16), read back on
 * the host for calibration. Two layouts (gemm.cu, gemm_sm90.cu): plain, one row of ffn x aParts values per routing entry,
 * entries in expert order, the value being part 0 plus, at split precision, the last part (hi + lo); tiled (pre-tiled
 * Hopper weights, aParts 1), per work item of 128 entries of one expert a run of ceil(ffn / 64) stages of
 * 128 rows x 64 values, each row 128 bytes whose 16-byte chunks are swizzled (chunk ^ (row & 7)).
 */
final class ExpertIntermediate {
    /** Entries per work item: the token rows of a dense expert block (BM). */
    static final int ROWS_PER_ITEM = KernelConstants.BM;
    /** Columns per stage of the tiled layout: the k-slice of the wgmma kernels (S90_BK). */
    static final int STAGE_COLUMNS = KernelConstants.S90_BK;
    private static final int STAGE_SHORTS = ROWS_PER_ITEM * STAGE_COLUMNS;

    private ExpertIntermediate() {
    }

    /** Per expert, its entries' SwiGLU rows [counts[e], ffn] in fp32, from bf16 values or (fp16) fp16 ones. */
    static float[][] swiglu(short[] inter, int[] counts, int ffn, int aParts, boolean tiled, boolean fp16) {
        float[][] out = new float[counts.length][];
        int entry = 0;
        int item = 0;
        int stages = (ffn + STAGE_COLUMNS - 1) / STAGE_COLUMNS;
        for (int e = 0; e < counts.length; e++) {
            float[] rows = new float[counts[e] * ffn];
            for (int i = 0; i < counts[e]; i++) {
                for (int f = 0; f < ffn; f++) {
                    rows[i * ffn + f] = tiled
                            ? value(inter[tiledIndex(item + i / ROWS_PER_ITEM, stages, i % ROWS_PER_ITEM, f)], fp16)
                            : plain(inter, (long) (entry + i) * ffn * aParts, f, ffn, aParts, fp16);
                }
            }
            out[e] = rows;
            entry += counts[e];
            item += (counts[e] + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM;
        }
        return out;
    }

    private static float plain(short[] inter, long row, int f, int ffn, int aParts, boolean fp16) {
        float hi = value(inter[(int) (row + f)], fp16);
        return aParts == 1 ? hi : hi + value(inter[(int) (row + (long) (aParts - 1) * ffn + f)], fp16);
    }

    private static float value(short bits, boolean fp16) {
        return fp16 ? DType.halfToFloat(bits) : bf16(bits);
    }

    /** The 16-bit element index of (local row r, column f) of a work item in the tiled layout (epi_swiglu_tiled). */
    static int tiledIndex(int item, int stages, int r, int f) {
        int chunk = ((f & 63) >> 3) ^ (r & 7);
        return (item * stages + f / STAGE_COLUMNS) * STAGE_SHORTS + r * STAGE_COLUMNS + chunk * 8 + (f & 7);
    }

    static float bf16(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }
}
