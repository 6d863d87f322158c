package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.function.Supplier;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;

/**
 * Launch plumbing for one backend: kernels looked up by name in the runtime's module, grid and block, arguments
 * marshalled, shared memory opted into, CUDA errors turned into what they mean ({@link #guarded}), and per-op
 * device time when profiling is on.
 */
final class CudaLauncher {
    private static final CUdeviceptr NULL = new CUdeviceptr();
    /** The calling thread's pageable staging buffer of {@link #uploadQueued}, grown as needed. */
    private static final ThreadLocal<ByteBuffer> STAGING = ThreadLocal.withInitial(
            () -> ByteBuffer.allocateDirect(1024).order(ByteOrder.nativeOrder()));

    final GpuRuntime gpu;
    private volatile OpTimer timer;

    CudaLauncher(GpuRuntime gpu) {
        this.gpu = gpu;
    }

    /** The calling thread's stream on this device. */
    CUstream stream() {
        return gpu.stream();
    }

    /** The calling thread's memory pool. */
    DevicePool pool() {
        return gpu.pool();
    }

    /**
     * Launches a kernel on the calling thread's stream: a gridX x gridY grid (nothing when either is 0) of 1-D
     * blocks. Arguments: device pointers (null: a null pointer), Integer, Long and Float values, and long[] for a
     * struct of 64-bit words passed by value (copied at the launch).
     */
    void launch(String kernel, long gridX, int gridY, int block, int sharedBytes, Object... args) {
        if (gridX == 0 || gridY == 0) {
            return;
        }
        if (gridX > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(kernel + ": grid of " + gridX + " blocks is too large");
        }
        CUfunction f = gpu.function(kernel);
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                params[i] = Pointer.to(NULL);
            } else if (a instanceof CUdeviceptr p) {
                params[i] = Pointer.to(p);
            } else if (a instanceof Integer v) {
                params[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Long v) {
                params[i] = Pointer.to(new long[] {v});
            } else if (a instanceof Float v) {
                params[i] = Pointer.to(new float[] {v});
            } else if (a instanceof long[] v) {
                params[i] = Pointer.to(v.clone());  // a struct of 64-bit words, by value
            } else {
                throw new IllegalArgumentException(kernel + ": kernel argument of type " + a.getClass());
            }
        }
        cuLaunchKernel(f, (int) gridX, gridY, 1, block, 1, 1, sharedBytes, gpu.stream(), Pointer.to(params), null);
    }

    /** Lets a variant (and its paired kernel) use its dynamic shared memory, beyond the default 48 KB. */
    void allowSharedMemory(KernelVariant v) {
        gpu.allowSharedMemory(gpu.function(v.name()), v.sharedBytes());
        if (v.pair() != null) {
            gpu.allowSharedMemory(gpu.function(v.pair()), v.sharedBytes());
        }
    }

    /** Blocks of {@code per} covering {@code n}. */
    static long blocks(long n, int per) {
        return (n + per - 1) / per;
    }

    /** int32 values on the device, from the thread's pool, with their host copy. */
    CudaTensor.Ints upload(int[] values) {
        DevicePool pool = gpu.pool();
        CUdeviceptr p = pool.allocate(Math.max(4L, values.length * 4L));
        // The stream may still be reading a block this pool handed out before: wait, then copy.
        cuStreamSynchronize(gpu.stream());
        if (values.length > 0) {
            cuMemcpyHtoD(p, Pointer.to(values), values.length * 4L);
        }
        return new CudaTensor.Ints(values, p, pool);
    }

    /**
     * int32 values on the device, from the thread's pool, copied behind the work queued on the stream without
     * waiting for it (what {@link #upload} does): a copy from pageable host memory returns once the driver has
     * staged the values (CUDA's API synchronization behavior), so the staging buffer may be reused at once, and
     * the copy lands in stream order, after every kernel still reading a block the pool handed out before. For small
     * per-layer tables (batch-level gating's block starts). CUDA allows the driver to wait for the stream where it
     * must stage pageable memory; it does not for copies this small.
     */
    CudaTensor.Ints uploadQueued(int[] values) {
        DevicePool pool = gpu.pool();
        CUdeviceptr p = pool.allocate(Math.max(4L, values.length * 4L));
        if (values.length > 0) {
            ByteBuffer staging = STAGING.get();
            if (staging.capacity() < values.length * 4) {
                staging = ByteBuffer.allocateDirect(Math.max(values.length * 4, 2 * staging.capacity()))
                        .order(ByteOrder.nativeOrder());
                STAGING.set(staging);
            }
            staging.clear();
            staging.asIntBuffer().put(values);
            cuMemcpyHtoDAsync(p, Pointer.to(staging), values.length * 4L, gpu.stream());
        }
        return new CudaTensor.Ints(values, p, pool);
    }

    /** A tensor's fp32 values, copied to the host once the stream has finished writing them. */
    float[] download(CudaTensor c) {
        float[] out = new float[(int) c.elements()];
        return guarded("download", () -> {
            cuStreamSynchronize(gpu.stream());
            cuMemcpyDtoH(Pointer.to(out), c.requireF32("toHost"), out.length * 4L);
            return out;
        });
    }

    /** Starts recording device time per op (for benchmarks). */
    void startProfiling() {
        timer = new OpTimer();
    }

    /** Device milliseconds per op since profiling started or was last drained. */
    Map<String, Double> drainProfile() {
        OpTimer t = timer;
        return t == null ? Map.of() : t.drain();
    }

    /** Runs an op, recording its device time when profiling is on. */
    void timed(String op, Runnable body) {
        timedValue(op, () -> {
            body.run();
            return null;
        });
    }

    <T> T timedValue(String op, Supplier<T> body) {
        return guarded(op, () -> {
            OpTimer t = timer;
            Object span = t == null ? null : t.begin(op, gpu.stream());
            try {
                return body.get();
            } finally {
                if (span != null) {
                    OpTimer.end(span, gpu.stream());
                }
            }
        });
    }

    /**
     * Runs device work on a usable context: an unrecoverable CUDA error (here, or in an earlier launch that it
     * surfaces) becomes a {@link io.moescore.backend.GpuFaultException} and leaves the runtime broken, so no
     * later call touches the device (GpuRuntime.fault).
     */
    <T> T guarded(String op, Supplier<T> body) {
        gpu.checkUsable();
        try {
            return body.get();
        } catch (CudaException e) {
            throw gpu.fault(e, op);
        }
    }
}
