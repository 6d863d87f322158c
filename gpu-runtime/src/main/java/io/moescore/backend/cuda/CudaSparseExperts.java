package io.moescore.backend.cuda;

import io.moescore.backend.ExpertWeights;
import jcuda.driver.CUdeviceptr;

/**
 * Sparse experts on the device: 2:4 in one of two layouts, or Samoyeds' 128:2:8 pre-tiled ({@link #vectorSparse}). Packed, as sparse24.cu (mma.sp) reads them: gateUp
 * values [E, 2F, H/2] (bf16 or fp16) and meta [E, 2F, H/32] (gate and up rows interleaved in blocks of 8), down values
 * [E, H, F/2] and meta [E, H, F/32]. Or pre-tiled, as sparse24_sm90.cu (wgmma.sp) reads them: the same rows cut
 * into 256-row x 128-k blocks laid out as one pipeline stage in shared memory (values swizzled, then metadata).
 * 128:2:8 (vnm_sm90.cu): the condensed 2:4 rows cut into 128-row x 128-k blocks of values, metadata and keep bytes.
 */
final class CudaSparseExperts implements ExpertWeights {
    final int numExperts;
    final int ffn;
    final int hidden;
    final CUdeviceptr gateUpValues;
    final CUdeviceptr gateUpMeta;
    final CUdeviceptr downValues;
    final CUdeviceptr downMeta;
    final CUdeviceptr gateUpTiled;
    final CUdeviceptr downTiled;
    /** Pre-tiled 128:2:8 rather than 2:4. */
    final boolean vectorSparse;
    private final long bytes;

    /** The packed layout. */
    CudaSparseExperts(int numExperts, int ffn, int hidden, CUdeviceptr gateUpValues, CUdeviceptr gateUpMeta,
                      CUdeviceptr downValues, CUdeviceptr downMeta) {
        this.numExperts = numExperts;
        this.ffn = ffn;
        this.hidden = hidden;
        this.gateUpValues = gateUpValues;
        this.gateUpMeta = gateUpMeta;
        this.downValues = downValues;
        this.downMeta = downMeta;
        this.gateUpTiled = null;
        this.downTiled = null;
        this.vectorSparse = false;
        long e = numExperts;
        this.bytes = e * 2 * ffn * (hidden / 2) * 2 + e * 2 * ffn * (hidden / 32) * 4 + e * hidden * (ffn / 2) * 2
                + e * hidden * (ffn / 32) * 4;
    }

    /** A pre-tiled layout, {@code bytes} in all. */
    CudaSparseExperts(int numExperts, int ffn, int hidden, CUdeviceptr gateUpTiled, CUdeviceptr downTiled, long bytes,
                      boolean vectorSparse) {
        this.numExperts = numExperts;
        this.ffn = ffn;
        this.hidden = hidden;
        this.gateUpValues = null;
        this.gateUpMeta = null;
        this.downValues = null;
        this.downMeta = null;
        this.gateUpTiled = gateUpTiled;
        this.downTiled = downTiled;
        this.vectorSparse = vectorSparse;
        this.bytes = bytes;
    }

    boolean tiled() {
        return gateUpTiled != null;
    }

    /** Device bytes of the weights (values and metadata, and the padding of partial tiles when pre-tiled). */
    long bytes() {
        return bytes;
    }

    @Override
    public int numExperts() {
        return numExperts;
    }

    @Override
    public int ffnSize() {
        return ffn;
    }

    @Override
    public void close() {
        for (CUdeviceptr p : new CUdeviceptr[] {gateUpValues, gateUpMeta, downValues, downMeta, gateUpTiled, downTiled}) {
            if (p != null) {
                GpuRuntime.free(p);
            }
        }
    }
}
