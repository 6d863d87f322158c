package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_ROWS;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.LogProbs;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The lm_head step ({@link CudaBackend#logProbs}): logits for a chunk of the vocabulary at a time (a dense GEMM,
 * {@link CudaGemm}), folded into each row's running log-sum-exp, target logit and top-k candidates
 * (lm_head.cu: logsoftmax_chunk, logsoftmax_finish), so the T x vocab logits never exist whole; the top-k rows'
 * best tokens are picked on the device too (top_rows_k).
 */
final class CudaLogProbs {
    /** The lm_head step computes logits for at most this many (token, vocab) pairs at a time. */
    private static final long LOGITS_CHUNK_ELEMENTS = 64L << 20;
    /** Deterministic mode: vocabulary columns per lm_head chunk, whatever the token count. */
    static final int DETERMINISTIC_LOGITS_CHUNK = 8192;

    private final CudaLauncher launcher;
    private final CudaGemm gemm;
    private final boolean deterministic;

    CudaLogProbs(CudaLauncher launcher, CudaGemm gemm, boolean deterministic) {
        this.launcher = launcher;
        this.gemm = gemm;
        this.deterministic = deterministic;
    }

    /** @param logitDivisor the logits are divided by it (Granite's logits_scaling; 1 elsewhere) */
    LogProbs run(CudaTensor x, CudaTensor w, CudaTensor.Ints targets, int[] topRows, int topK, float logitDivisor) {
        int t = x.rows;
        int vocab = w.rows;
        int h = x.cols;
        // chunks start at multiples of S90_W_BLOCK_ROWS vocabulary rows: whole blocks of a pre-tiled lm_head
        int chunk = deterministic ? Math.min(vocab, DETERMINISTIC_LOGITS_CHUNK)
                : (int) Math.max(S90_W_BLOCK_ROWS, Math.min(vocab,
                        LOGITS_CHUNK_ELEMENTS / Math.max(1, t) / S90_W_BLOCK_ROWS * S90_W_BLOCK_ROWS));
        int[] topSlot = new int[t];
        Arrays.fill(topSlot, -1);
        for (int i = 0; i < topRows.length; i++) {
            topSlot[topRows[i]] = i;
        }
        DevicePool pool = launcher.pool();
        long logitsBytes = (long) t * chunk * 4;
        long topBytes = Math.max(4L, (long) topRows.length * vocab * 4);
        CUdeviceptr logits = pool.allocate(logitsBytes);
        CUdeviceptr state = pool.allocate(t * 12L);
        CUdeviceptr lp = pool.allocate(Math.max(4L, t * 4L));
        CUdeviceptr top = pool.allocate(topBytes);
        int aParts = gemm.inputParts(w.parts);
        CudaGemm.Input xb = gemm.input(x, aParts, pool);
        try (CudaTensor.Ints slots = launcher.upload(topSlot)) {
            CUdeviceptr target = targets.device;
            for (int v0 = 0; v0 < vocab; v0 += chunk) {
                int c = Math.min(chunk, vocab - v0);
                gemm.product(xb.rows(), aParts, w, v0, c, null, logits, t);
                launcher.launch("logsoftmax_chunk", t, 1, 256, 0, logits, t, c, v0, target, state, slots.device, top,
                        vocab, 1f / logitDivisor);
            }
            launcher.launch("logsoftmax_finish", blocks(t, 256), 1, 256, 0, state, target, t, lp);
            // each top row's k best on the device (lm_head.cu, top_rows_k: TopK.indices' order): rows x k indices
            // come back, not rows x vocab logits
            int k = Math.min(Math.max(topK, 0), vocab);
            int[] indices = new int[topRows.length * k];
            CUdeviceptr picked = indices.length == 0 ? null : pool.allocate(indices.length * 4L);
            try {
                if (picked != null) {
                    launcher.launch("top_rows_k", topRows.length, 1, 256, 0, top, vocab, k, picked);
                }
                float[] result = new float[t];
                cuStreamSynchronize(launcher.stream());
                cuMemcpyDtoH(Pointer.to(result), lp, t * 4L);
                if (picked != null) {
                    cuMemcpyDtoH(Pointer.to(indices), picked, indices.length * 4L);
                }
                int[][] best = new int[topRows.length][];
                for (int i = 0; i < topRows.length; i++) {
                    best[i] = Arrays.copyOfRange(indices, i * k, (i + 1) * k);
                }
                return new LogProbs(result, best);
            } finally {
                if (picked != null) {
                    pool.release(picked, indices.length * 4L);
                }
            }
        } finally {
            xb.close();
            pool.release(logits, logitsBytes);
            pool.release(state, t * 12L);
            pool.release(lp, Math.max(4L, t * 4L));
            pool.release(top, topBytes);
        }
    }
}
