package io.moescore.backend.cuda;

import io.moescore.backend.ExpertWeights;
import jcuda.driver.CUdeviceptr;

/**
 * A layer's experts as two device slabs of 16-bit floats (bf16 or fp16): gateUp [E, 2F, H], each expert's gate and
 * up rows interleaved in blocks of 8 (what experts_T_gate_up reads), and down [E, H, F]; every row as `parts` copies
 * (hi, lo).
 * Tiled: the same rows cut into 128-row x 64-k blocks laid out as shared memory holds them (gemm_sm90.cu), for
 * the bulk-copy kernels of a Hopper.
 */
final class CudaExperts implements ExpertWeights {
    final int numExperts;
    final int ffn;
    final int hidden;
    final CUdeviceptr gateUp;
    final CUdeviceptr down;
    final int parts;
    final boolean tiled;

    CudaExperts(int numExperts, int ffn, int hidden, CUdeviceptr gateUp, CUdeviceptr down, int parts, boolean tiled) {
        this.parts = parts;
        this.tiled = tiled;
        this.numExperts = numExperts;
        this.ffn = ffn;
        this.hidden = hidden;
        this.gateUp = gateUp;
        this.down = down;
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
        GpuRuntime.free(gateUp);
        GpuRuntime.free(down);
    }
}
