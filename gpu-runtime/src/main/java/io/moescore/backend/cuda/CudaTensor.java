package io.moescore.backend.cuda;

import io.moescore.backend.IntTensor;
import io.moescore.backend.Tensor;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import jcuda.driver.CUdeviceptr;

/**
 * A tensor in device memory. Activations are fp32 and come from the thread's pool; weights are 16-bit floats for the
 * tensor cores (bf16, or fp16 at fp16 precision), and small ones (norm weights, biases, routers) also keep an fp32
 * copy.
 */
final class CudaTensor implements Tensor {
    final int rows;
    final int cols;
    final CUdeviceptr f32;
    /** The 16-bit rows (bf16 or fp16, as the backend's precision says). */
    final CUdeviceptr half;
    /** Copies per 16-bit row: 1 (hi) or 2 (hi, then lo: the weight split for split-bf16 precision). */
    final int parts;
    private final DevicePool pool;
    private boolean closed;
    /** A weight's 16-bit rows pre-tiled for the bulk-copy linear kernels (gemm_sm90.cu), made on first use. */
    private CUdeviceptr tiled;

    CudaTensor(int rows, int cols, CUdeviceptr f32, CUdeviceptr half, int parts, DevicePool pool) {
        this.rows = rows;
        this.cols = cols;
        this.f32 = f32;
        this.half = half;
        this.parts = parts;
        this.pool = pool;
    }

    long elements() {
        return (long) rows * cols;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (pool != null) {
            pool.release(f32, elements() * 4);
        } else {
            if (f32 != null) {
                GpuRuntime.free(f32);
            }
            if (half != null) {
                GpuRuntime.free(half);
            }
            synchronized (this) {
                if (tiled != null) {
                    GpuRuntime.free(tiled);
                }
            }
        }
    }

    /** The pre-tiled copy of this weight, made by {@code make} the first time any task asks. */
    synchronized CUdeviceptr tiled(java.util.function.Function<CudaTensor, CUdeviceptr> make) {
        if (tiled == null) {
            tiled = make.apply(this);
        }
        return tiled;
    }

    static CudaTensor of(Tensor t) {
        if (t instanceof CudaTensor c) {
            return c;
        }
        throw new IllegalArgumentException("tensor " + t + " does not belong to the CUDA backend");
    }

    CUdeviceptr requireF32(String op) {
        if (f32 == null) {
            throw new IllegalArgumentException(op + " needs an fp32 tensor; this " + rows + " x " + cols
                    + " weight is stored in 16 bits only");
        }
        return f32;
    }

    /** int32 values on the device, with their host copy (tile lists are planned from it on the host). */
    static final class Ints implements IntTensor {
        final int[] host;
        final CUdeviceptr device;
        private final DevicePool pool;
        private final Map<String, Ints> derived = new HashMap<>();
        private boolean closed;

        Ints(int[] host, CUdeviceptr device, DevicePool pool) {
            this.host = host;
            this.device = device;
            this.pool = pool;
        }

        @Override
        public int length() {
            return host.length;
        }

        /**
         * A device int array computed from this one (e.g. the attention tile list for the sequence offsets), made
         * by {@code make} on first use under {@code key} and kept, owned by this tensor, until it is closed.
         */
        synchronized Ints derived(String key, Supplier<Ints> make) {
            if (closed) {
                throw new IllegalStateException("int tensor of " + host.length + " values is closed");
            }
            return derived.computeIfAbsent(key, k -> make.get());
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                derived.values().forEach(Ints::close);
                derived.clear();
                pool.release(device, Math.max(4L, host.length * 4L));
            }
        }

        static Ints of(IntTensor t) {
            if (t instanceof Ints i) {
                return i;
            }
            throw new IllegalArgumentException("int tensor " + t + " does not belong to the CUDA backend");
        }
    }
}
