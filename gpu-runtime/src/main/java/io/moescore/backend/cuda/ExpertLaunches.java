package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.S90_A_BYTES;
import static io.moescore.backend.cuda.KernelConstants.S90_BK;
import static io.moescore.backend.cuda.KernelConstants.SP9_B_BYTES;
import static io.moescore.backend.cuda.KernelConstants.SP9_K;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.Arrays;
import java.util.function.Consumer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The grouped expert launches, dense, 2:4 and 128:2:8 alike: per layer a work list of (expert, first entry)
 * items, a gate+up kernel with SwiGLU into 16-bit rows per routing entry, then its paired down kernel scaling by
 * the gate weight and combining into each token's output row (atomics, or in deterministic mode a store per entry
 * summed per token in expert order). The kernel pair is a {@link KernelVariant} of the weights' family.
 */
final class ExpertLaunches {
    private final CudaLauncher launcher;
    private final KernelChoice choice;
    private final CudaGemm gemm;
    private final Precision precision;
    private final boolean deterministic;

    ExpertLaunches(CudaLauncher launcher, KernelChoice choice, CudaGemm gemm, Precision precision,
                   boolean deterministic) {
        this.launcher = launcher;
        this.choice = choice;
        this.gemm = gemm;
        this.precision = precision;
        this.deterministic = deterministic;
    }

    /** The experts of a layer on their routed tokens, into out. */
    void run(CudaTensor x, CudaExpertRouting r, ExpertWeights weights, CudaTensor out) {
        CombineOrder combine = deterministic ? new CombineOrder(r.chosen, r.perToken, r.k) : null;
        Routed routed = new Routed(r.offsets, r.tokens, r.gates, r.numExperts, r.entries);
        if (weights instanceof CudaSparseExperts sparse) {
            sparse(x, routed, sparse, out, combine);
            return;
        }
        dense(x, routed, (CudaExperts) weights, out, combine, null);
    }

    /**
     * {@link #run} on dense experts (timed as the experts op), then their inputs downloaded for {@code seen}: x as
     * the fp32 hidden states, the SwiGLU products as the gate/up kernel stored them for down (bf16 or fp16; hi + lo
     * at split-bf16), whichever layout ({@link ExpertIntermediate}).
     */
    void observed(CudaTensor x, CudaExpertRouting r, CudaExperts w, CudaTensor out, ExpertInputObserver seen) {
        CombineOrder combine = deterministic ? new CombineOrder(r.chosen, r.perToken, r.k) : null;
        short[][] inter = new short[1][];
        int[] tokens = new int[r.entries];
        Routed routed = new Routed(r.offsets, r.tokens, r.gates, r.numExperts, r.entries);
        launcher.timed("experts", () -> dense(x, routed, w, out, combine, (device, bytes) -> {
                    inter[0] = new short[Math.toIntExact(bytes / 2)];
                    cuStreamSynchronize(launcher.stream());
                    cuMemcpyDtoH(Pointer.to(inter[0]), device, bytes);
                    cuMemcpyDtoH(Pointer.to(tokens), r.tokens, tokens.length * 4L);
                }));
        float[] hidden = launcher.download(x);
        int[] counts = r.tokensPerExpert();
        float[][] swiglu = inter[0] == null ? new float[counts.length][0]
                : ExpertIntermediate.swiglu(inter[0], counts, w.ffn, gemm.inputParts(w.parts), w.tiled,
                        precision == Precision.FP16);
        for (int e = 0, from = 0; e < counts.length; from += counts[e], e++) {
            seen.observe(e, hidden, Arrays.copyOfRange(tokens, from, from + counts[e]), w.hidden, swiglu[e], w.ffn);
        }
    }

    /** Reads the expert intermediate (device pointer, bytes) before it is released. */
    private interface InterTap {
        void read(CUdeviceptr inter, long bytes);
    }

    /** A dense FFN as one expert that every token takes with gate weight 1. */
    void ffn(CudaTensor in, CudaExperts weights, CudaTensor out) {
        DevicePool pool = launcher.pool();
        int t = in.rows;
        CUdeviceptr tokens = pool.allocate(Math.max(4L, t * 4L));
        CUdeviceptr gates = pool.allocate(Math.max(4L, t * 4L));
        launcher.launch("route_identity", blocks(t, 256), 1, 256, 0, t, tokens, gates);
        try (CudaTensor.Ints offsets = launcher.upload(new int[] {0, t})) {
            // one entry per token: its single atomicAdd onto zero is exact, batch-invariant already
            dense(in, new Routed(offsets.device, tokens, gates, 1, t), weights, out, null, null);
        } finally {
            pool.release(tokens, Math.max(4L, t * 4L));
            pool.release(gates, Math.max(4L, t * 4L));
        }
    }

    /**
     * A layer's routing as the launches read it: per expert offsets into the entries' tokens and gates; entries is
     * the most there can be (the buffers' size, and the tuner's shape key), the routed total where every token has k.
     */
    private record Routed(CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates, int experts, long entries) {
    }

    /**
     * Each token's chosen experts ([tokens, k], the first perToken[t] of a row where counts vary, perToken null
     * where they do not), for combining expert outputs in expert order.
     */
    private record CombineOrder(CUdeviceptr chosen, CUdeviceptr perToken, int k) {
    }

    /**
     * The down projections' combine: atomicAdd into out (combine null), or, batch-invariant, a store per entry that
     * combine_expert_outputs then sums per token in expert order. Returns the per-entry buffer to pass to the down
     * kernel (null for atomics); {@link #finishCombine} sums it, the caller releases it.
     */
    private CUdeviceptr startCombine(CombineOrder combine, long entries, int h) {
        return combine == null ? null : launcher.pool().allocate(entries * h * 4);
    }

    private void finishCombine(CombineOrder combine, CUdeviceptr perEntry, CUdeviceptr offsets, CUdeviceptr tokens,
                               CudaTensor out) {
        if (combine != null) {
            launcher.launch("combine_expert_outputs", out.rows, 1, 256, combine.k() * Integer.BYTES, perEntry,
                    combine.chosen(), combine.perToken(), offsets, tokens, out.f32, out.rows, combine.k(), out.cols);
        }
    }

    /**
     * Dense experts: gate+up with SwiGLU into 16-bit rows per entry, then down with combine. interTap (null: none)
     * reads those rows ({@link ExpertIntermediate}'s layouts) before they are released.
     */
    private void dense(CudaTensor x, Routed r, CudaExperts w, CudaTensor out, CombineOrder combine,
                       InterTap interTap) {
        int h = w.hidden;
        int f = w.ffn;
        long entries = routedEntries(r.entries(), out);
        if (entries == 0) {
            return;
        }
        CUdeviceptr offsets = r.offsets();
        CUdeviceptr tokens = r.tokens();
        CUdeviceptr gates = r.gates();
        // pre-tiled weights: the wgmma kernels that read them (_sm90t: bulk copies), never mma.sync
        Family family = w.tiled ? Family.EXPERTS_TILED : Family.EXPERTS;
        DevicePool pool = launcher.pool();
        WorkList work = workList(r, family.tokenRows, pool);
        int aParts = gemm.inputParts(w.parts);
        // the intermediate: [entries, F x aParts] 16-bit, or with pre-tiled weights tiled per work item as the down
        // kernel's activation stages (S90_BK columns, gemm_sm90.cu), columns padded to a multiple of S90_BK
        long interBytes = w.tiled ? (long) work.items() * blocks(f, S90_BK) * S90_A_BYTES
                : entries * f * 2 * aParts;
        CUdeviceptr inter = pool.allocate(interBytes);
        CudaGemm.Input xb = gemm.input(x, aParts, pool);
        CUdeviceptr perEntry = startCombine(combine, entries, h);
        try (work) {
            int items = work.items();
            Consumer<KernelVariant> run = v -> {
                launcher.allowSharedMemory(v);
                cuMemsetD32Async(out.f32, 0, out.elements(), launcher.stream());
                if (w.tiled && f % S90_BK != 0) {  // padding columns meet zero weights: no NaN bit patterns there
                    cuMemsetD32Async(inter, 0, interBytes / 4, launcher.stream());
                }
                launcher.launch(v.name(), items, (int) blocks(2L * f, v.rowTile()), v.threads(), v.sharedBytes(), xb.rows(),
                        tokens, offsets, work.device(), w.gateUp, inter, f, h, aParts, w.parts);
                launcher.launch(v.pair(), items, (int) blocks(h, v.rowTile()), v.threads(), v.sharedBytes(), inter,
                        tokens, gates, offsets, work.device(), w.down, out.f32, perEntry, h, f, aParts, w.parts);
            };
            run.accept(choice.choose("experts " + r.experts() + "x" + f + "x" + h + " entries "
                    + KernelTuner.bucket(entries) + " parts " + aParts + "/" + w.parts + (w.tiled ? " tiled" : ""),
                    family, run));
            finishCombine(combine, perEntry, offsets, tokens, out);
            if (interTap != null) {
                interTap.read(inter, interBytes);
            }
        } finally {
            if (perEntry != null) {
                pool.release(perEntry, entries * h * 4);
            }
            pool.release(inter, interBytes);
            xb.close();
        }
    }

    /**
     * The layer's routing entries. With none, out is zeroed here: otherwise each launch zeroes it before its combine
     * adds into it.
     */
    private long routedEntries(long entries, CudaTensor out) {
        if (entries == 0) {
            cuMemsetD32Async(out.f32, 0, out.elements(), launcher.stream());
        }
        return entries;
    }

    /**
     * A layer's work items on the device (router.cu, route_work): (expert, first local row) of {@code rows} entries
     * each, planned from the routing's offsets behind the router on the stream, so the host never waits for the
     * counts; sized for the worst case (ceil(entries / rows) + experts: each expert may end in a partial item), the
     * items past the list marked for the kernels to skip.
     */
    private WorkList workList(Routed r, int rows, DevicePool pool) {
        int items = Math.toIntExact((r.entries() + rows - 1) / rows + r.experts());
        CUdeviceptr device = pool.allocate(items * 8L);
        launcher.launch("route_work", 1, 1, 256, 0, r.offsets(), r.experts(), rows, items, device);
        return new WorkList(device, items, pool);
    }

    /** A work list in the pool, released on close. */
    private record WorkList(CUdeviceptr device, int items, DevicePool pool) implements AutoCloseable {
        @Override
        public void close() {
            pool.release(device, items * 8L);
        }
    }

    /**
     * The dual-sparse expert launches: 2:4 or 128:2:8 weights on Sparse Tensor Cores, tokens gathered by index.
     * wgmma.sp on a Hopper's pre-tiled weights (sparse24_sm90.cu; vnm_sm90.cu: 128:2:8, and 2:4 in 128-row tiles),
     * the tuner picking the 2:4 tile per shape; mma.sp on packed ones (sparse24.cu).
     */
    private void sparse(CudaTensor x, Routed r, CudaSparseExperts w, CudaTensor out, CombineOrder combine) {
        int h = w.hidden;
        int f = w.ffn;
        long entries = routedEntries(r.entries(), out);
        if (entries == 0) {
            return;
        }
        CUdeviceptr offsets = r.offsets();
        CUdeviceptr tokens = r.tokens();
        CUdeviceptr gates = r.gates();
        DevicePool pool = launcher.pool();
        boolean tiled = w.tiled();
        Family family = w.vectorSparse ? Family.VECTOR_SPARSE : tiled ? Family.SPARSE24_TILED : Family.SPARSE24;
        WorkList work = workList(r, family.tokenRows, pool);
        // the intermediate: [entries, F] 16-bit, or on a Hopper tiled per work item as the down kernel's token stages
        // (SP9_K columns, sparse24_sm90.cu), columns padded to a multiple of SP9_K
        long interBytes = tiled ? (long) work.items() * blocks(f, SP9_K) * SP9_B_BYTES : entries * f * 2;
        CUdeviceptr inter = pool.allocate(interBytes);
        CudaGemm.Input xb = gemm.input(x, 1, pool);  // one 16-bit copy: the 2:4 kernels take no split inputs
        CUdeviceptr perEntry = startCombine(combine, entries, h);
        try (work) {
            int items = work.items();
            Consumer<KernelVariant> run = v -> {
                launcher.allowSharedMemory(v);
                int guTiles = (int) blocks(2L * f, v.rowTile());
                int dTiles = (int) blocks(h, v.rowTile());
                cuMemsetD32Async(out.f32, 0, out.elements(), launcher.stream());
                if (tiled) {
                    if (f % SP9_K != 0) {  // padding columns meet zero weights: they must not hold NaN bit patterns
                        cuMemsetD32Async(inter, 0, interBytes / 4, launcher.stream());
                    }
                    launcher.launch(v.name(), items, guTiles, v.threads(), v.sharedBytes(), xb.rows(), tokens, offsets,
                            work.device(), w.gateUpTiled, inter, f, h);
                    launcher.launch(v.pair(), items, dTiles, v.threads(), v.sharedBytes(), inter, tokens, gates,
                            offsets, work.device(), w.downTiled, out.f32, perEntry, h, f);
                } else {
                    launcher.launch(v.name(), items, guTiles, v.threads(), v.sharedBytes(), xb.rows(), tokens, offsets,
                            work.device(), w.gateUpValues, w.gateUpMeta, inter, f, h);
                    launcher.launch(v.pair(), items, dTiles, v.threads(), v.sharedBytes(), inter, tokens, gates,
                            offsets, work.device(), w.downValues, w.downMeta, out.f32, perEntry, h, f);
                }
            };
            run.accept(choice.choose("sparse experts " + r.experts() + "x" + f + "x" + h + " entries "
                    + KernelTuner.bucket(entries) + (w.vectorSparse ? " 128:2:8" : " 2:4"), family, run));
            finishCombine(combine, perEntry, offsets, tokens, out);
        } finally {
            if (perEntry != null) {
                pool.release(perEntry, entries * h * 4);
            }
            xb.close();
            pool.release(inter, interBytes);
        }
    }
}
