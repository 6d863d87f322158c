package io.moescore.backend.cuda;

import io.moescore.backend.ExpertWeights;
import jcuda.driver.CUdeviceptr;

/**
 * 2:4 sparse experts on the device, as sparse24.cu reads them: gateUp values [E, 2F, H/2] bf16 and meta
 * [E, 2F, H/32] (gate and up rows interleaved in blocks of 8), down values [E, H, F/2] and meta [E, H, F/32];
 * on a Hopper also both pre-tiled for the bulk-copy kernels (sparse24_sm90_bulk.cu), else null.
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
    private final long tiledBytes;

    CudaSparseExperts(int numExperts, int ffn, int hidden, CUdeviceptr gateUpValues, CUdeviceptr gateUpMeta,
                      CUdeviceptr downValues, CUdeviceptr downMeta, CUdeviceptr gateUpTiled, CUdeviceptr downTiled,
                      long tiledBytes) {
        this.numExperts = numExperts;
        this.ffn = ffn;
        this.hidden = hidden;
        this.gateUpValues = gateUpValues;
        this.gateUpMeta = gateUpMeta;
        this.downValues = downValues;
        this.downMeta = downMeta;
        this.gateUpTiled = gateUpTiled;
        this.downTiled = downTiled;
        this.tiledBytes = tiledBytes;
    }

    boolean tiled() {
        return gateUpTiled != null;
    }

    /** Device bytes of the packed weights (values and metadata). */
    long bytes() {
        long e = numExperts;
        return e * 2 * ffn * (hidden / 2) * 2 + e * 2 * ffn * (hidden / 32) * 4 + e * hidden * (ffn / 2) * 2
                + e * hidden * (ffn / 32) * 4 + tiledBytes;
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
