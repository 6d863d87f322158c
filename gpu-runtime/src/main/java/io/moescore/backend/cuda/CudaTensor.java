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
 *
 * <p>A view ({@link #columns}) is a block of another activation's columns: its rows are {@link #ld} floats apart.
 * Only the ops that take a row stride accept one (RoPE, q and k's norms with RoPE, the half copy attention reads:
 * the consumers of the fused q/k/v product); every other op refuses it ({@link #requireF32}).
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
    /** Floats from one row's start to the next: cols, or the width of the activation a view is a block of. */
    final long ld;
    /** Whether this is a view of another activation's columns (its memory is that activation's). */
    private final boolean view;
    /** A view's activation, or an activation's views: a write to one makes the others' 16-bit copies stale. */
    private CudaTensor[] related = new CudaTensor[0];
    private final DevicePool pool;
    /** An activation's 16-bit copy (from the pool, elements() * 2 bytes), or null; current: see the class. */
    private CUdeviceptr copy;
    private boolean copyCurrent;
    /** Whether the last op wrote the 16-bit copy alone: the fp32 values are then undefined ({@link #requireF32}). */
    private boolean f32Undefined;
    private boolean closed;
    /** A weight's 16-bit rows pre-tiled for the bulk-copy linear kernels (gemm_sm90.cu), made on first use. */
    private CUdeviceptr tiled;

    CudaTensor(int rows, int cols, CUdeviceptr f32, CUdeviceptr half, int parts, DevicePool pool) {
        this(rows, cols, f32, half, parts, cols, false, pool);
    }

    private CudaTensor(int rows, int cols, CUdeviceptr f32, CUdeviceptr half, int parts, long ld, boolean view,
                       DevicePool pool) {
        this.rows = rows;
        this.cols = cols;
        this.f32 = f32;
        this.half = half;
        this.parts = parts;
        this.ld = ld;
        this.view = view;
        this.pool = pool;
    }

    /**
     * Views of consecutive column blocks of an activation, {@code widths} summing to its columns (the fused q/k/v
     * product's q, k and v). A view's 16-bit copy is its own, packed; closing a view releases only that.
     */
    static CudaTensor[] columns(CudaTensor t, int... widths) {
        if (t.view || t.pool == null) {
            throw new IllegalArgumentException("column views are taken of a whole activation, not of " + t);
        }
        if (java.util.Arrays.stream(widths).asLongStream().sum() != t.cols) {
            throw new IllegalArgumentException("column blocks " + java.util.Arrays.toString(widths) + " do not cover "
                    + "the " + t.cols + " columns of the activation");
        }
        CudaTensor[] out = new CudaTensor[widths.length];
        int from = 0;
        for (int i = 0; i < widths.length; i++) {
            out[i] = new CudaTensor(t.rows, widths[i], t.f32.withByteOffset(from * 4L), null, 1, t.cols, true, t.pool);
            out[i].related = new CudaTensor[] {t};
            from += widths[i];
        }
        t.related = out;
        return out;
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
            if (f32 != null && !view) {
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

    /** The fp32 values an op reads: refused for a view, a 16-bit weight, or values the last op left undefined. */
    CUdeviceptr requireF32(String op) {
        requireDefined(op);
        return requireStorage(op);
    }

    /** Refuses fp32 values the last op left undefined (it wrote only the 16-bit copy, for attention or products). */
    void requireDefined(String op) {
        if (f32Undefined) {
            throw new IllegalStateException(op + " reads fp32 values this " + rows + " x " + cols + " activation does "
                    + "not hold: the last op wrote only its 16-bit copy (for attention or matrix products)");
        }
    }

    /** Where an op writes whole fp32 activations: refused for a view or a 16-bit weight. */
    private CUdeviceptr requireStorage(String op) {
        if (view) {
            throw new IllegalStateException(op + " takes whole activations, not a view of columns (rows " + ld
                    + " floats apart)");
        }
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
        wroteCopy(true);
    }

    /**
     * Says the op just enqueued wrote this tensor's 16-bit copy, and its fp32 values too where {@code f32Too}
     * (else they are undefined until an op writes them: {@link #requireF32} refuses them, naming the op).
     */
    void wroteCopy(boolean f32Too) {
        copyCurrent = true;
        f32Undefined = !f32Too;
    }

    /** {@code t} as the output of an op that writes its fp32 values only: the 16-bit copy is stale from now on. */
    static CudaTensor output(Tensor t, String op) {
        CudaTensor c = of(t);
        c.requireStorage(op);
        c.written();
        return c;
    }

    /** This tensor's values are about to change: its copy, and those of its views or activation, are stale. */
    private void written() {
        copyCurrent = false;
        f32Undefined = false;
        for (CudaTensor r : related) {
            r.copyCurrent = false;
            r.f32Undefined &= view;  // a write of the whole activation defines its views' values again
        }
    }

    /**
     * As {@link #output}, for the ops that take a row stride ({@link #ld}), views of columns too, and read the values
     * they rewrite in place (refused where the last op left them undefined).
     */
    static CudaTensor stridedOutput(Tensor t, String op) {
        CudaTensor c = of(t);
        if (c.f32 == null) {
            c.requireF32(op);
        }
        c.requireDefined(op);  // these ops (RoPE, q/k norms) read the values they rewrite
        c.written();
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
