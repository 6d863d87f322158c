package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_ROWS;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.LogProbs;
import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The lm_head step ({@link CudaBackend#logProbs}) by one of two strategies, the tuner's pick per shape where both
 * run: logits for a chunk of the vocabulary at a time (a dense GEMM, {@link CudaGemm}), folded into each row's
 * running log-sum-exp, target logit and top-k candidates (lm_head.cu: logsoftmax_chunk, logsoftmax_finish), so the
 * T x vocab logits never exist whole; or, over a pre-tiled lm_head on the wgmma families, the log-softmax folded
 * into the GEMM's epilogue ({@link Family#LOGSOFTMAX_TILED}: per row and vocabulary tile a max and a sum of
 * exponentials, folded by logsoftmax_combine), so no logit but a top row's leaves the registers. Deterministic mode
 * keeps the chunks of {@link #DETERMINISTIC_LOGITS_CHUNK}. The top-k rows' best tokens are picked on the device
 * (top_rows_k).
 */
final class CudaLogProbs {
    /** The lm_head step computes logits for at most this many (token, vocab) pairs at a time. */
    private static final long LOGITS_CHUNK_ELEMENTS = 64L << 20;
    /** Deterministic mode: vocabulary columns per lm_head chunk, whatever the token count. */
    static final int DETERMINISTIC_LOGITS_CHUNK = 8192;
    /** The chunked strategy, as the tuner names it beside the fused kernels. */
    static final KernelTuner.Candidate CHUNKED = () -> "logits in vocabulary chunks";

    private final CudaLauncher launcher;
    private final CudaGemm gemm;
    private final KernelChoice choice;
    private final boolean deterministic;

    CudaLogProbs(CudaLauncher launcher, CudaGemm gemm, KernelChoice choice, boolean deterministic) {
        this.launcher = launcher;
        this.gemm = gemm;
        this.choice = choice;
        this.deterministic = deterministic;
    }

    /** What both strategies read and write: the GEMM input, the lm_head, each row's target and top slot, the results. */
    private record Step(CUdeviceptr x, int aParts, CudaTensor w, int t, CUdeviceptr targets, CUdeviceptr slots,
                        CUdeviceptr top, CUdeviceptr lp, float scale) {
    }

    /** @param logitDivisor the logits are divided by it (Granite's logits_scaling; 1 elsewhere) */
    LogProbs run(CudaTensor x, CudaTensor w, CudaTensor.Ints targets, int[] topRows, int topK, float logitDivisor) {
        int t = x.rows;
        int vocab = w.rows;
        int[] topSlot = new int[t];
        Arrays.fill(topSlot, -1);
        for (int i = 0; i < topRows.length; i++) {
            topSlot[topRows[i]] = i;
        }
        DevicePool pool = launcher.pool();
        long topBytes = Math.max(4L, (long) topRows.length * vocab * 4);
        CUdeviceptr lp = pool.allocate(Math.max(4L, t * 4L));
        CUdeviceptr top = pool.allocate(topBytes);
        int aParts = gemm.inputParts(w.parts);
        CudaGemm.Input xb = gemm.input(x, aParts, pool);
        try (CudaTensor.Ints slots = launcher.upload(topSlot)) {
            Step step = new Step(xb.rows(), aParts, w, t, targets.device, slots.device, top, lp, 1f / logitDivisor);
            // the fused kernels where the lm_head is pre-tiled (wgmma, one part per input) outside deterministic mode
            CUdeviceptr tiled = deterministic || aParts != 1 ? null : gemm.tiledWeight(w);
            List<KernelTuner.Candidate> candidates = new ArrayList<>();
            if (tiled != null) {
                candidates.addAll(choice.offered(Family.LOGSOFTMAX_TILED));  // none under TUNED until shown correct
            }
            candidates.add(CHUNKED);
            Consumer<KernelTuner.Candidate> launch = c -> {
                if (c instanceof KernelVariant v) {
                    fused(v, tiled, step);
                } else {
                    chunked(step);
                }
            };
            launch.accept(choice.choose("logProbs " + KernelTuner.bucket(t) + "x" + vocab + "x" + w.cols, candidates,
                    launch));
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
            pool.release(lp, Math.max(4L, t * 4L));
            pool.release(top, topBytes);
        }
    }

    /**
     * lm_head's logits chunk by chunk (chunks start at multiples of S90_W_BLOCK_ROWS vocabulary rows: whole blocks of
     * a pre-tiled lm_head), each folded into the rows' running state [T, 3], then lp.
     */
    private void chunked(Step s) {
        int vocab = s.w.rows;
        int chunk = deterministic ? Math.min(vocab, DETERMINISTIC_LOGITS_CHUNK)
                : (int) Math.max(S90_W_BLOCK_ROWS, Math.min(vocab,
                        LOGITS_CHUNK_ELEMENTS / Math.max(1, s.t) / S90_W_BLOCK_ROWS * S90_W_BLOCK_ROWS));
        DevicePool pool = launcher.pool();
        long logitsBytes = (long) s.t * chunk * 4;
        CUdeviceptr logits = pool.allocate(logitsBytes);
        CUdeviceptr state = pool.allocate(s.t * 12L);
        try {
            for (int v0 = 0; v0 < vocab; v0 += chunk) {
                int c = Math.min(chunk, vocab - v0);
                gemm.product(s.x, s.aParts, s.w, v0, c, null, logits, s.t);
                launcher.launch("logsoftmax_chunk", s.t, 1, 256, 0, logits, s.t, c, v0, s.targets, state, s.slots,
                        s.top, vocab, s.scale);
            }
            launcher.launch("logsoftmax_finish", blocks(s.t, 256), 1, 256, 0, state, s.targets, s.t, s.lp);
        } finally {
            pool.release(logits, logitsBytes);
            pool.release(state, s.t * 12L);
        }
    }

    /**
     * One launch over the whole vocabulary with the log-softmax in the epilogue (per row and vocabulary tile a max
     * and a sum of exponentials, the target logit, a top row's logits), then logsoftmax_combine (a warp per row).
     */
    private void fused(KernelVariant v, CUdeviceptr tiled, Step s) {
        int vocab = s.w.rows;
        int tiles = (int) blocks(vocab, v.rowTile());
        DevicePool pool = launcher.pool();
        long partialBytes = (long) s.t * tiles * 8;
        CUdeviceptr partial = pool.allocate(partialBytes);
        CUdeviceptr targetLogit = pool.allocate(s.t * 4L);
        try {
            launcher.allowSharedMemory(v);
            launcher.launch(v.name(), blocks(s.t, v.family().tokenRows), tiles, v.threads(), v.sharedBytes(), s.x,
                    tiled, s.t, vocab, s.w.cols, s.scale, s.targets, partial, targetLogit, s.slots, s.top);
            launcher.launch("logsoftmax_combine", blocks(s.t, 8), 1, 256, 0, partial, tiles, targetLogit, s.targets,
                    s.t, s.lp);
        } finally {
            pool.release(partial, partialBytes);
            pool.release(targetLogit, s.t * 4L);
        }
    }
}
