package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.batch.TokenRouting;
import io.moescore.routing.HostExpertRouting;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * A routing the host made, copied to a device in the form its expert launches read ({@link CudaExpertRouting}):
 * the per-expert lists (offsets, tokens, gates) and, for the batch-invariant combine, each row's experts
 * ({@code chosen} [rows, k], with per-row counts where they vary). For experts spread over several devices
 * ({@code io.moescore.engine.DeviceGroup}), whose rows travel through host memory: synchronous copies
 * (cuMemcpyHtoD once the stream has drained, since the pool's blocks may still be read by queued work).
 * Compiled; NOT yet run on a GPU.
 */
final class HostRoutingUpload {
    private HostRoutingUpload() {
    }

    static CudaExpertRouting upload(GpuRuntime gpu, HostExpertRouting routing, int rows) {
        TokenRouting.Choices choices = routing.choices(rows);
        int experts = routing.numExperts();
        int entries = routing.tokens().length;
        int width = 1;
        for (int t = 0; t < rows; t++) {
            width = Math.max(width, choices.offsets()[t + 1] - choices.offsets()[t]);
        }
        int[] chosen = new int[rows * width];
        int[] perRow = new int[rows];
        boolean varies = false;
        for (int t = 0; t < rows; t++) {
            int from = choices.offsets()[t];
            perRow[t] = choices.offsets()[t + 1] - from;
            varies |= perRow[t] != width;
            System.arraycopy(choices.experts(), from, chosen, t * width, perRow[t]);
        }
        DevicePool pool = gpu.pool();
        long offsetBytes = (experts + 1) * 4L;
        long entryBytes = Math.max(4L, entries * 4L);
        long chosenBytes = Math.max(4L, chosen.length * 4L);
        long rowBytes = Math.max(4L, rows * 4L);
        CUdeviceptr offsets = pool.allocate(offsetBytes);
        CUdeviceptr tokens = pool.allocate(entryBytes);
        CUdeviceptr gates = pool.allocate(entryBytes);
        CUdeviceptr chosenRows = pool.allocate(chosenBytes);
        CUdeviceptr perToken = varies ? pool.allocate(rowBytes) : null;
        cuStreamSynchronize(gpu.stream());
        cuMemcpyHtoD(offsets, Pointer.to(routing.offsets()), offsetBytes);
        if (entries > 0) {
            cuMemcpyHtoD(tokens, Pointer.to(routing.tokens()), entries * 4L);
            cuMemcpyHtoD(gates, Pointer.to(routing.gates()), entries * 4L);
        }
        if (chosen.length > 0) {
            cuMemcpyHtoD(chosenRows, Pointer.to(chosen), chosen.length * 4L);
        }
        if (perToken != null) {
            cuMemcpyHtoD(perToken, Pointer.to(perRow), rows * 4L);
        }
        return new CudaExpertRouting(experts, entries, offsets, tokens, gates, chosenRows, perToken, width,
                routing.tokensPerExpert(), gpu.stream(), () -> {
                    pool.release(offsets, offsetBytes);
                    pool.release(tokens, entryBytes);
                    pool.release(gates, entryBytes);
                    pool.release(chosenRows, chosenBytes);
                    if (perToken != null) {
                        pool.release(perToken, rowBytes);
                    }
                });
    }
}
