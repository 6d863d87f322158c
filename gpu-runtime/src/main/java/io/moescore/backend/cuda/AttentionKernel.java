package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelConstants.ATTENTION_F32_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_F32_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_TC_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_TC_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ATT_ROWS;
import static io.moescore.backend.cuda.KernelConstants.TC_ROWS;

import java.util.ArrayList;
import java.util.List;

/**
 * One attention kernel with its launch geometry: on tensor cores (attention_tc.cu, one per 16-bit type and head
 * size bound up to 128) or in fp32 (attention.cu, up to 256). A launch covers {@link #rows} query rows of one
 * sequence and one head per block.
 *
 * @param name         the kernel's name in the fatbin
 * @param type         the 16-bit type of the tensor-core kernels; null for the fp32 ones
 * @param headDimBound the largest head_dim it takes (the padded head size it is compiled for)
 * @param rows         query rows per block
 * @param threads      threads per block
 */
record AttentionKernel(String name, HalfType type, int headDimBound, int rows, int threads) {
    static final List<AttentionKernel> ALL = build();

    private static List<AttentionKernel> build() {
        List<AttentionKernel> all = new ArrayList<>();
        for (HalfType type : HalfType.values()) {
            for (int d : new int[] {32, 64, 128}) {
                all.add(new AttentionKernel("attention_" + type.spelling + "_d" + d, type, d, TC_ROWS,
                        ATTENTION_TC_THREADS));
            }
        }
        for (int d : new int[] {32, 64, 128, 256}) {
            all.add(new AttentionKernel("attention_f32_d" + d, null, d, ATT_ROWS, ATTENTION_F32_THREADS));
        }
        return List.copyOf(all);
    }

    /** Dynamic shared memory for heads of {@code headDim}: the fp32 kernel's tiles are as wide as the head. */
    int sharedBytes(int headDim) {
        return type == null ? ATTENTION_F32_SHARED_BYTES(headDim) : ATTENTION_TC_SHARED_BYTES(headDimBound);
    }

    /**
     * The kernel for heads of {@code headDim} (at most 256): on tensor cores of {@code type} where asked for and a
     * tensor-core kernel takes that head size, else in fp32; the smallest head bound that fits.
     */
    static AttentionKernel pick(HalfType type, boolean tensorCores, int headDim) {
        for (boolean tc : tensorCores ? new boolean[] {true, false} : new boolean[] {false}) {
            for (AttentionKernel k : ALL) {
                if (k.type == (tc ? type : null) && k.headDimBound >= headDim) {
                    return k;
                }
            }
        }
        throw new IllegalArgumentException("no attention kernel takes head_dim " + headDim);
    }
}
