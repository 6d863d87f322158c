package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.S90_BK;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_BYTES;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_ROWS;

import io.moescore.backend.Precision;
import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import jcuda.driver.CUdeviceptr;

/**
 * The dense GEMM launches (out = a w^T, the linear layers and lm_head): GEMM inputs rounded to the precision's
 * 16-bit rows, then the {@link Family#LINEAR} kernels over plain weight rows or the {@link Family#LINEAR_TILED}
 * ones over a pre-tiled copy, or cuBLASLt where it loads ({@link CublasLt}), chosen per shape ({@link KernelChoice}).
 */
final class CudaGemm {
    private final CudaLauncher launcher;
    private final KernelChoice choice;
    private final Precision precision;
    private final HalfType type;
    private final CudaWeights weights;

    CudaGemm(CudaLauncher launcher, KernelChoice choice, Precision precision, CudaWeights weights) {
        this.launcher = launcher;
        this.choice = choice;
        this.precision = precision;
        this.type = HalfType.of(precision);
        this.weights = weights;
    }

    /** 16-bit copies per GEMM input row against a weight of wParts copies (gemm.cu, Precision). */
    int inputParts(int wParts) {
        return precision == Precision.SPLIT_BF16 ? wParts + 1 : 1;
    }

    /**
     * A GEMM's input rows: a normed activation's own 16-bit copy (borrowed), or a copy converted from fp32 into the
     * pool, released on close.
     */
    record Input(CUdeviceptr rows, DevicePool pool, long pooledBytes) implements AutoCloseable {
        @Override
        public void close() {
            if (pooledBytes > 0) {
                pool.release(rows, pooledBytes);
            }
        }
    }

    /**
     * An activation as GEMM input rows of aParts 16-bit copies: its 16-bit copy where the norm wrote one (the same
     * bits to_T_parts would write for one part), else converted here.
     */
    Input input(CudaTensor x, int aParts, DevicePool pool) {
        if (aParts == 1 && x.currentCopy() != null) {
            return new Input(x.currentCopy(), pool, 0);
        }
        long bytes = x.elements() * 2 * aParts;
        CUdeviceptr xb = pool.allocate(bytes);
        launcher.launch(type.toPartsKernel, blocks(x.elements(), 256), 1, 256, 0, x.requireF32("a GEMM input of "
                + aParts + " parts"), xb, (long) x.rows, x.cols, aParts);
        return new Input(xb, pool, bytes);
    }

    /** out = x w^T (+ bias) for a weight held as 16-bit rows. */
    void linear(CudaTensor in, CudaTensor w, CUdeviceptr bias, CudaTensor out) {
        int aParts = inputParts(w.parts);
        try (Input xb = input(in, aParts, launcher.pool())) {
            product(xb.rows(), aParts, w, 0, w.rows, bias, out.f32, in.rows);
        }
    }

    /**
     * out[m][n] = a[m][k] w[row0 .. row0 + n)^T (+ bias), a in rows of aParts 16-bit copies, k = w's columns: the
     * tuner's pick among our kernels (over the pre-tiled copy where the wgmma families run, row0 then a multiple of
     * S90_W_BLOCK_ROWS, else over the plain rows) and, where it loads and the operands are single 16-bit copies,
     * cuBLASLt over the plain rows ({@link CublasLt}).
     */
    void product(CUdeviceptr a, int aParts, CudaTensor w, int row0, int n, CUdeviceptr bias, CUdeviceptr out,
                 int m) {
        int k = w.cols;
        if (k % 8 != 0) {
            throw new IllegalArgumentException("the CUDA backend needs inner dimensions that are multiples of 8, got " + k);
        }
        CUdeviceptr plain = w.half.withByteOffset((long) row0 * k * 2 * w.parts);
        CublasLt library = aParts == 1 && w.parts == 1 && CublasLt.aligned(a, plain, bias, out) ? choice.library()
                : null;
        Consumer<CublasLt.Algorithm> viaLibrary = algorithm -> {
            DevicePool pool = launcher.pool();
            CUdeviceptr workspace = pool.allocate(CublasLt.WORKSPACE_BYTES);
            try {
                library.multiply(algorithm, a, plain, bias, out, m, n, k, workspace, launcher.stream());
            } finally {
                pool.release(workspace, CublasLt.WORKSPACE_BYTES);
            }
        };
        List<CublasLt.Algorithm> algorithms = library == null ? List.of() : library.algorithms(m, n, k, bias != null);
        CUdeviceptr tiled = tiledWeight(w);
        String shape = "linear " + KernelTuner.bucket(m) + "x" + n + "x" + k;
        if (tiled != null) {
            if (row0 % S90_W_BLOCK_ROWS != 0) {
                throw new IllegalArgumentException("a pre-tiled weight's rows are taken from a multiple of "
                        + S90_W_BLOCK_ROWS + ", not " + row0);
            }
            CUdeviceptr wTiled = tiled.withByteOffset((long) row0 / S90_W_BLOCK_ROWS * blocks(k, S90_BK)
                    * S90_W_BLOCK_BYTES);
            run(shape + " tiled", Family.LINEAR_TILED, algorithms, v -> launcher.launch(v.name(),
                    blocks(m, v.family().tokenRows), (int) blocks(n, v.rowTile()), v.threads(), v.sharedBytes(), a,
                    wTiled, bias, out, m, n, k), viaLibrary);
        } else {
            run(shape + " parts " + aParts + "/" + w.parts, Family.LINEAR, algorithms, v -> launcher.launch(v.name(),
                    blocks(m, v.family().tokenRows), (int) blocks(n, v.rowTile()), v.threads(), v.sharedBytes(), a,
                    plain, bias, out, m, n, k * aParts, k * w.parts), viaLibrary);
        }
    }

    /**
     * Runs the tuner's pick for a shape among a family's kernel variants and the library's algorithms where offered
     * (the library's name then joins the shape key, so choices cached before it was offered are not taken for a
     * comparison with it).
     */
    private void run(String shape, Family family, List<CublasLt.Algorithm> algorithms,
                     Consumer<KernelVariant> kernel, Consumer<CublasLt.Algorithm> viaLibrary) {
        List<KernelTuner.Candidate> candidates = new ArrayList<>(choice.variants(family));
        candidates.addAll(algorithms);
        Consumer<KernelTuner.Candidate> launch = c -> {
            if (c instanceof KernelVariant v) {
                launcher.allowSharedMemory(v);
                kernel.accept(v);
            } else {
                viaLibrary.accept((CublasLt.Algorithm) c);
            }
        };
        launch.accept(choice.choose(algorithms.isEmpty() ? shape : shape + " +" + CublasLt.NAME, candidates, launch));
    }

    /**
     * The pre-tiled copy of a weight (made on its first use) where its GEMMs run on the bulk-copy kernels: wgmma
     * with one part per input (bf16 or fp16 precision); null where they read the plain rows.
     */
    CUdeviceptr tiledWeight(CudaTensor w) {
        boolean tiled = choice.runsWgmma() && precision != Precision.SPLIT_BF16 && w.parts == 1 && w.half != null
                && w.cols % 8 == 0;
        return tiled ? weights.tiled(w) : null;
    }
}
