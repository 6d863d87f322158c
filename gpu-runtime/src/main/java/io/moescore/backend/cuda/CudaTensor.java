package io.moescore.backend.cuda;

import io.moescore.backend.IntTensor;
import io.moescore.backend.Tensor;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import jcuda.driver.CUdeviceptr;

/**
 * A tensor in device memory. Weights are 16-bit floats for the tensor cores (bf16, or fp16 at fp16 precision), and
 * small ones (norm weights, biases, routers) also keep an fp32 copy. Activations are fp32 and come from the
 * thread's pool; one may also hold a 16-bit copy of its values (one GEMM input part, the operand type of the
 * half-input attention): written in the same pass by the ops that can (the norms, RoPE), so that the products and
 * attention read it instead of converting. The copy is current only while the last op that wrote the tensor wrote
 * it too ({@link #output}, {@link #wroteCopy}): ops are enqueued in order on the calling thread's stream, so the
 * flag, kept on the host, says what the device will hold when a later op runs.
 */
final class CudaTensor implements Tensor {
    final int rows;
    final int cols;
    /** fp32 values; null for a weight stored in 16 bits only. */
    final CUdeviceptr f32;
    /** A weight's 16-bit rows (bf16 or fp16, as the backend's precision says); null for activations. */
    final CUdeviceptr half;
    /** Copies per 16-bit row: 1 (hi) or 2 (hi, then lo: the weight split for split-bf16 precision). */
    final int parts;
    private final DevicePool pool;
    /** An activation's 16-bit copy (from the pool, elements() * 2 bytes), or null; current: see the class. */
    private CUdeviceptr copy;
    private boolean copyCurrent;
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

    /** An activation from the pool: fp32 values, and a 16-bit copy buffer made now (or none yet). */
    static CudaTensor activation(int rows, int cols, DevicePool pool, boolean withCopy) {
        long n = (long) rows * cols;
        CudaTensor t = new CudaTensor(rows, cols, pool.allocate(n * 4), null, 1, pool);
        if (withCopy) {
            t.copy = pool.allocate(n * 2);
        }
        return t;
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
            if (f32 != null) {
                pool.release(f32, elements() * 4);
            }
            if (copy != null) {
                pool.release(copy, elements() * 2);
            }
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

    /** The activation's 16-bit copy where it is current (the last op that wrote the tensor wrote it), else null. */
    CUdeviceptr currentCopy() {
        return copyCurrent ? copy : null;
    }

    /**
     * Where an op that writes the fp32 values and the 16-bit copy in one pass puts the copy (made on first use
     * and kept until the tensor is closed); the op then calls {@link #wroteCopy}.
     */
    CUdeviceptr copyBuffer() {
        if (pool == null) {
            throw new IllegalStateException("a weight keeps no activation copy");
        }
        if (copy == null) {
            copy = pool.allocate(elements() * 2);
        }
        return copy;
    }

    /** Whether the activation has a 16-bit copy buffer (a normed activation, or q and k once RoPE made one). */
    boolean hasCopy() {
        return copy != null;
    }

    /** Says the op just enqueued wrote this tensor's fp32 values (if any) and its 16-bit copy alike. */
    void wroteCopy() {
        copyCurrent = true;
    }

    /** {@code t} as the output of an op that writes its fp32 values only: the 16-bit copy is stale from now on. */
    static CudaTensor output(Tensor t, String op) {
        CudaTensor c = of(t);
        c.requireF32(op);
        c.copyCurrent = false;
        return c;
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
