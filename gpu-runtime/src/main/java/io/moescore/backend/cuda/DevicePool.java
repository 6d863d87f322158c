package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;

import io.moescore.backend.DeviceOutOfMemoryException;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import jcuda.CudaException;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

/**
 * Device memory for one thread's activations, reused across batches: freed blocks wait in per-size lists
 * (sizes rounded up to 1/8 of their power of two) until the next allocation of that size. Each thread has its
 * own pool and stream, so a block is only reused in the stream order of the work that last used it.
 */
final class DevicePool {
    private final GpuRuntime runtime;
    private final Map<Long, ArrayDeque<CUdeviceptr>> free = new HashMap<>();
    private long cachedBytes;

    DevicePool(GpuRuntime runtime) {
        this.runtime = runtime;
    }

    static long sizeClass(long bytes) {
        long b = Math.max(bytes, 256);
        long power = Long.highestOneBit(b);
        long step = Math.max(256, power / 8);
        return (b + step - 1) / step * step;
    }

    CUdeviceptr allocate(long bytes) {
        long size = sizeClass(bytes);
        ArrayDeque<CUdeviceptr> list = free.get(size);
        if (list != null && !list.isEmpty()) {
            cachedBytes -= size;
            return list.pop();
        }
        CUdeviceptr p = new CUdeviceptr();
        try {
            cuMemAlloc(p, size);
        } catch (CudaException e) {
            if (!e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw e;
            }
            releaseCached();
            try {
                cuMemAlloc(p, size);
            } catch (CudaException again) {
                throw new DeviceOutOfMemoryException("out of GPU memory on " + runtime.name() + " allocating "
                        + size + " bytes");
            }
        }
        return p;
    }

    void release(CUdeviceptr p, long bytes) {
        long size = sizeClass(bytes);
        free.computeIfAbsent(size, k -> new ArrayDeque<>()).push(p);
        cachedBytes += size;
    }

    /** Frees every cached block (before retrying an allocation that failed). */
    void releaseCached() {
        jcuda.driver.JCudaDriver.cuCtxSynchronize();
        for (ArrayDeque<CUdeviceptr> list : free.values()) {
            for (CUdeviceptr p : list) {
                GpuRuntime.free(p);
            }
        }
        free.clear();
        cachedBytes = 0;
    }

    long cachedBytes() {
        return cachedBytes;
    }
}
