package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelConstants.ATTENTION_FA90_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_FA_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_F32_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_F32_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_TC_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.ATTENTION_TC_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ATT_ROWS;
import static io.moescore.backend.cuda.KernelConstants.FA90_KEYS;
import static io.moescore.backend.cuda.KernelConstants.FA90_KEYS_D256;
import static io.moescore.backend.cuda.KernelConstants.FA90_STAGES;
import static io.moescore.backend.cuda.KernelConstants.FA90_STAGES_D64;
import static io.moescore.backend.cuda.KernelConstants.FA90_THREADS;
import static io.moescore.backend.cuda.KernelConstants.FA_KEYS;
import static io.moescore.backend.cuda.KernelConstants.FA_KEYS_D256;
import static io.moescore.backend.cuda.KernelConstants.FA_ROWS;
import static io.moescore.backend.cuda.KernelConstants.FA_WARPS;
import static io.moescore.backend.cuda.KernelConstants.FA_WARPS_D256;
import static io.moescore.backend.cuda.KernelConstants.FA_WARPS_D64;
import static io.moescore.backend.cuda.KernelConstants.TC_ROWS;

import java.util.ArrayList;
import java.util.List;

/**
 * One attention kernel with its launch geometry, as data. A launch covers {@link #rows} query rows of one
 * sequence and one head per block; the blocks' query tiles come from {@link AttentionTiles}.
 *
 * @param name         the kernel's name in the fatbin
 * @param kind         which kernel family, and so which arguments it takes
 * @param type         the 16-bit type of the tensor-core kernels; null for the fp32 ones
 * @param headDimBound the largest head_dim it takes (the padded head size it is compiled for; the half-input
 *                     kernels ({@link #halfInputs()}) take exactly this head size)
 * @param rows         query rows per block
 * @param threads      threads per block
 * @param keys         keys per K/V tile of the half-input kernels (their shared memory); 0 otherwise
 */
record AttentionKernel(String name, Kind kind, HalfType type, int headDimBound, int rows, int threads, int keys) {
    static final List<AttentionKernel> ALL = build();

    /** The kernel families, in the order {@link #pick} prefers them. */
    enum Kind {
        /**
         * attention_sm90.cu: HALF_INPUTS' arguments, grid and tile list (FA_ROWS query rows a block) on wgmma, one
         * producer and two consumer warpgroups (FlashAttention-3's structure); sm_90a, so compute capability 9.0
         * only, and only where the backend runs the wgmma families ({@link KernelChoice#runsWgmmaAttention}).
         */
        SM90,
        /**
         * attention_fa.cu: q, k, v as 16-bit copies (to_half_T, by the op before the launch), double-buffered cp.async
         * K/V tiles, 128-row query tiles; a one-dimensional grid of (tile, head) blocks, heads fastest.
         * Arguments: q, k, v (T), out, tiles, heads, kv heads, window, log2(e) / sqrt(head_dim).
         */
        HALF_INPUTS,
        /**
         * attention_tc.cu: fp32 q, k, v rounded while staged, head sizes up to 128 padded; grid (tiles, heads).
         * Arguments: q, k, v (fp32), out, tiles, heads, kv heads, head_dim, window, 1 / sqrt(head_dim).
         */
        TENSOR_CORES,
        /** attention.cu: fp32 throughout (split-bf16 precision), up to 256; grid and arguments as TENSOR_CORES. */
        F32
    }

    private static List<AttentionKernel> build() {
        List<AttentionKernel> all = new ArrayList<>();
        for (HalfType type : HalfType.values()) {
            for (int d : new int[] {64, 128, 256}) {
                all.add(new AttentionKernel("attention_sm90_" + type.spelling + "_d" + d, Kind.SM90, type, d, FA_ROWS,
                        FA90_THREADS, d == 256 ? FA90_KEYS_D256 : FA90_KEYS));
            }
            for (int d : new int[] {64, 128, 256}) {
                int warps = d == 64 ? FA_WARPS_D64 : d == 256 ? FA_WARPS_D256 : FA_WARPS;
                all.add(new AttentionKernel("attention_fa_" + type.spelling + "_d" + d, Kind.HALF_INPUTS, type, d,
                        FA_ROWS, 32 * warps, d == 256 ? FA_KEYS_D256 : FA_KEYS));
            }
            for (int d : new int[] {32, 64, 128}) {
                all.add(new AttentionKernel("attention_" + type.spelling + "_d" + d, Kind.TENSOR_CORES, type, d,
                        TC_ROWS, ATTENTION_TC_THREADS, 0));
            }
        }
        for (int d : new int[] {32, 64, 128, 256}) {
            all.add(new AttentionKernel("attention_f32_d" + d, Kind.F32, null, d, ATT_ROWS, ATTENTION_F32_THREADS, 0));
        }
        return List.copyOf(all);
    }

    /** Dynamic shared memory for heads of {@code headDim}: the fp32 kernel's tiles are as wide as the head. */
    int sharedBytes(int headDim) {
        return switch (kind) {
            case SM90 -> ATTENTION_FA90_SHARED_BYTES(headDimBound, keys, headDimBound == 64 ? FA90_STAGES_D64
                    : FA90_STAGES);
            case HALF_INPUTS -> ATTENTION_FA_SHARED_BYTES(headDimBound, keys);
            case TENSOR_CORES -> ATTENTION_TC_SHARED_BYTES(headDimBound);
            case F32 -> ATTENTION_F32_SHARED_BYTES(headDim);
        };
    }

    /**
     * Whether it reads q, k and v as 16-bit copies and writes the output's 16-bit copy too (attention_fa.cu and
     * attention_sm90.cu: one argument list, a one-dimensional grid of (tile, head) blocks).
     */
    boolean halfInputs() {
        return kind == Kind.SM90 || kind == Kind.HALF_INPUTS;
    }

    /** Whether this kernel computes heads of {@code headDim}. */
    private boolean takes(int headDim) {
        return halfInputs() ? headDim == headDimBound : headDim <= headDimBound;
    }

    /**
     * The kernel for heads of {@code headDim} (at most 256): on tensor cores of {@code type} where asked for and a
     * tensor-core kernel takes that head size, preferring the half-input kernels (head sizes 64, 128 and 256, where
     * their shared memory fits {@code maxSharedBytes}: not 128 and 256 on sm_86/89's 99 KB), among them the wgmma
     * ones where {@code sm90} (a Hopper running the wgmma families), else in fp32; within a family the smallest head
     * bound that fits.
     */
    static AttentionKernel pick(HalfType type, boolean tensorCores, boolean sm90, int headDim, int maxSharedBytes) {
        List<Kind> kinds = !tensorCores ? List.of(Kind.F32)
                : sm90 ? List.of(Kind.SM90, Kind.HALF_INPUTS, Kind.TENSOR_CORES, Kind.F32)
                : List.of(Kind.HALF_INPUTS, Kind.TENSOR_CORES, Kind.F32);
        for (Kind kind : kinds) {
            for (AttentionKernel k : ALL) {
                if (k.kind == kind && (kind == Kind.F32 || k.type == type) && k.takes(headDim)
                        && k.sharedBytes(headDim) <= maxSharedBytes) {
                    return k;
                }
            }
        }
        throw new IllegalArgumentException("no attention kernel takes head_dim " + headDim);
    }
}
