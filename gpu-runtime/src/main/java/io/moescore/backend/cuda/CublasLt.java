package io.moescore.backend.cuda;

import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import jcuda.NativePointerObject;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * NVIDIA's cuBLASLt, called through JNA (JCuda 12.6 binds no cuBLAS for CUDA 13): one more way to run a dense GEMM
 * {@code out[m][n] = a[m][k] w[n][k]^T (+ bias[n])}, 16-bit operands, fp32 accumulation and output, that the tuner
 * times against our own kernels per shape (tuned mode only: deterministic mode and pinned kernel families never
 * call it). Where the library is missing it is simply not offered; our kernels always work.
 *
 * <p>Row-major {@code out = a w^T} is column-major {@code out^T (n x m) = w (n x k) . a^T (k x m)}: cuBLASLt's "TN"
 * product with A = w (k x n column-major, transposed), B = a (k x m), D = out (n x m, leading dimension n), the
 * bias one value per row of D (the BIAS epilogue). One plan (descriptors and the heuristic's algorithm) per shape.
 *
 * <p>Which library: {@code -Dmoescore.cublasLt=FILE} or {@code MOESCORE_CUBLASLT=FILE} ({@code none}: never),
 * else {@code libcublasLt} as the system finds it, else in {@code $CUDA_HOME/lib64} or {@code /usr/local/cuda/lib64}.
 */
final class CublasLt implements AutoCloseable {
    /** The tuner's name for the library's algorithms (kernel caches record "cublasLt", "cublasLt#1", ...). */
    static final String NAME = "cublasLt";
    /** Algorithms of the heuristic's ranking offered to the tuner per shape (its first is not always fastest). */
    static final int ALGORITHMS = 4;
    private static final System.Logger LOG = System.getLogger("io.moescore.cublaslt");

    // cublasLt.h / library_types.h values (stable since CUDA 11)
    private static final int CUBLAS_COMPUTE_32F = 68;
    private static final int CUDA_R_32F = 0;
    private static final int CUDA_R_16F = 2;
    private static final int CUDA_R_16BF = 14;
    private static final int CUBLAS_OP_N = 0;
    private static final int CUBLAS_OP_T = 1;
    private static final int DESC_TRANSA = 3;
    private static final int DESC_TRANSB = 4;
    private static final int DESC_EPILOGUE = 7;
    private static final int DESC_BIAS_POINTER = 8;
    private static final int EPILOGUE_DEFAULT = 1;
    private static final int EPILOGUE_BIAS = 4;
    private static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** sizeof(cublasLtMatmulHeuristicResult_t): the algorithm (64 bytes) first. */
    private static final int HEURISTIC_BYTES = 96;
    /** Workspace the heuristic may ask for (cuBLAS recommends 32 MiB on a Hopper). */
    static final long WORKSPACE_BYTES = 32L << 20;

    /** The C functions used, as JNA maps them: handles are pointers, device addresses and the stream longs. */
    interface Lib extends Library {
        int cublasLtCreate(PointerByReference handle);

        int cublasLtDestroy(Pointer handle);

        long cublasLtGetVersion();

        int cublasLtMatmulDescCreate(PointerByReference desc, int computeType, int scaleType);

        int cublasLtMatmulDescSetAttribute(Pointer desc, int attribute, Pointer value, long bytes);

        int cublasLtMatmulDescDestroy(Pointer desc);

        int cublasLtMatrixLayoutCreate(PointerByReference layout, int type, long rows, long cols, long ld);

        int cublasLtMatrixLayoutDestroy(Pointer layout);

        int cublasLtMatmulPreferenceCreate(PointerByReference preference);

        int cublasLtMatmulPreferenceSetAttribute(Pointer preference, int attribute, Pointer value, long bytes);

        int cublasLtMatmulPreferenceDestroy(Pointer preference);

        int cublasLtMatmulAlgoGetHeuristic(Pointer handle, Pointer desc, Pointer a, Pointer b, Pointer c, Pointer d,
                                           Pointer preference, int requested, Pointer results, IntByReference found);

        int cublasLtMatmul(Pointer handle, Pointer desc, Pointer alpha, long a, Pointer aLayout, long b,
                           Pointer bLayout, Pointer beta, long c, Pointer cLayout, long d, Pointer dLayout,
                           Pointer algorithm, long workspace, long workspaceBytes, long stream);
    }

    /** A shape's descriptors and the heuristic's algorithms for it (best first), kept for the runtime's life. */
    private record Plan(Pointer desc, Pointer wLayout, Pointer aLayout, Pointer outLayout, List<Memory> algorithms) {
    }

    /** One of the heuristic's algorithms for one shape: a candidate the tuner times beside our kernels. */
    record Algorithm(CublasLt library, int index) implements KernelTuner.Candidate {
        @Override
        public String name() {
            return index == 0 ? NAME : NAME + "#" + index;
        }
    }

    private record Shape(int m, int n, int k, boolean bias) {
    }

    private final Lib lib;
    private final String source;
    private final Pointer handle;
    private final int operandType;
    private final Map<Shape, Plan> plans = new ConcurrentHashMap<>();
    private final Memory one = floatMemory(1f);
    private final Memory zero = floatMemory(0f);

    private CublasLt(Lib lib, String source, HalfType type) {
        this.lib = lib;
        this.source = source;
        this.operandType = type == HalfType.BF16 ? CUDA_R_16BF : CUDA_R_16F;
        PointerByReference h = new PointerByReference();
        check(lib.cublasLtCreate(h), "cublasLtCreate");
        this.handle = h.getValue();
    }

    /**
     * cuBLASLt for this operand type where the library loads (the calling thread must have the device's context
     * current, as every launch does); null where it is missing or switched off, saying why at debug level.
     */
    static CublasLt load(HalfType type) {
        String configured = System.getProperty("moescore.cublasLt", System.getenv("MOESCORE_CUBLASLT"));
        if ("none".equals(configured)) {
            return null;
        }
        List<String> tried = new ArrayList<>();
        for (String candidate : candidates(configured)) {
            try {
                Lib lib = Native.load(candidate, Lib.class);
                long version = lib.cublasLtGetVersion();
                if (version < 120000) {
                    tried.add(candidate + " (version " + version + ", need 12 or later)");
                    continue;
                }
                CublasLt lt = new CublasLt(lib, candidate + " " + version, type);
                LOG.log(System.Logger.Level.INFO, "moescore: cuBLASLt " + lt.source + " is offered to the tuner");
                return lt;
            } catch (UnsatisfiedLinkError | IllegalStateException e) {
                tried.add(candidate + " (" + e.getMessage() + ")");
            }
        }
        if (configured != null) {
            throw new IllegalArgumentException("moescore.cublasLt=" + configured + " cannot be loaded: " + tried);
        }
        LOG.log(System.Logger.Level.DEBUG, "moescore: no cuBLASLt, our GEMM kernels only; tried " + tried);
        return null;
    }

    /** The libraries to try, in order: the configured one alone, else the system's, then the CUDA toolkit's. */
    private static List<String> candidates(String configured) {
        if (configured != null) {
            return List.of(configured);
        }
        List<String> out = new ArrayList<>(List.of("cublasLt"));
        String home = System.getenv("CUDA_HOME");
        for (String dir : new String[] {home == null ? null : home + "/lib64", "/usr/local/cuda/lib64"}) {
            if (dir == null || !Files.isDirectory(Path.of(dir))) {
                continue;
            }
            try (Stream<Path> files = Files.list(Path.of(dir))) {
                files.map(Path::toString).filter(f -> f.matches(".*/libcublasLt\\.so\\.\\d+$")).sorted()
                        .forEach(out::add);
            } catch (java.io.IOException e) {
                // an unreadable directory offers nothing
            }
        }
        return out;
    }

    /** Whether these device pointers (null: none) meet the 256-byte alignment the heuristic assumes by default. */
    static boolean aligned(jcuda.Pointer... pointers) {
        for (jcuda.Pointer p : pointers) {
            if (p != null && Address.of(p) % 256 != 0) {
                return false;
            }
        }
        return true;
    }

    /** The algorithms the heuristic offers for a shape, best ranked first (at most {@link #ALGORITHMS}). */
    List<Algorithm> algorithms(int m, int n, int k, boolean bias) {
        int count = plans.computeIfAbsent(new Shape(m, n, k, bias), this::plan).algorithms.size();
        List<Algorithm> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            out.add(new Algorithm(this, i));
        }
        return out;
    }

    /** The library file and version in use. */
    String source() {
        return source;
    }

    /**
     * out[m][n] = a[m][k] w[n][k]^T (+ bias[n]), on {@code stream}; a, w 16-bit rows of this backend's type, out
     * and bias fp32 (bias null: none); {@code workspace} at least {@link #WORKSPACE_BYTES}.
     */
    void multiply(Algorithm algorithm, CUdeviceptr a, CUdeviceptr w, CUdeviceptr bias, CUdeviceptr out, int m, int n,
                  int k, CUdeviceptr workspace, CUstream stream) {
        Plan p = plans.computeIfAbsent(new Shape(m, n, k, bias != null), this::plan);
        Memory chosen = p.algorithms.get(Math.min(algorithm.index(), p.algorithms.size() - 1));
        synchronized (p) {  // the bias is an attribute of the shared descriptor, read when the call enqueues
            if (bias != null) {
                setInt64(p.desc, DESC_BIAS_POINTER, Address.of(bias));
            }
            check(lib.cublasLtMatmul(handle, p.desc, one, Address.of(w), p.wLayout, Address.of(a), p.aLayout, zero,
                    Address.of(out), p.outLayout, Address.of(out), p.outLayout, chosen, Address.of(workspace),
                    WORKSPACE_BYTES, Address.of(stream)), "cublasLtMatmul " + m + "x" + n + "x" + k);
        }
    }

    private Plan plan(Shape s) {
        PointerByReference ref = new PointerByReference();
        check(lib.cublasLtMatmulDescCreate(ref, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
        Pointer desc = ref.getValue();
        setInt(desc, DESC_TRANSA, CUBLAS_OP_T);
        setInt(desc, DESC_TRANSB, CUBLAS_OP_N);
        setInt(desc, DESC_EPILOGUE, s.bias ? EPILOGUE_BIAS : EPILOGUE_DEFAULT);
        check(lib.cublasLtMatrixLayoutCreate(ref, operandType, s.k, s.n, s.k), "layout of w");
        Pointer wLayout = ref.getValue();
        check(lib.cublasLtMatrixLayoutCreate(ref, operandType, s.k, s.m, s.k), "layout of a");
        Pointer aLayout = ref.getValue();
        check(lib.cublasLtMatrixLayoutCreate(ref, CUDA_R_32F, s.n, s.m, s.n), "layout of out");
        Pointer outLayout = ref.getValue();
        check(lib.cublasLtMatmulPreferenceCreate(ref), "cublasLtMatmulPreferenceCreate");
        Pointer preference = ref.getValue();
        try {
            Memory workspace = new Memory(8);
            workspace.setLong(0, WORKSPACE_BYTES);
            check(lib.cublasLtMatmulPreferenceSetAttribute(preference, PREF_MAX_WORKSPACE_BYTES, workspace, 8),
                    "workspace preference");
            Memory results = new Memory((long) HEURISTIC_BYTES * ALGORITHMS);
            results.clear();
            IntByReference found = new IntByReference();
            check(lib.cublasLtMatmulAlgoGetHeuristic(handle, desc, wLayout, aLayout, outLayout, outLayout,
                    preference, ALGORITHMS, results, found), "cublasLtMatmulAlgoGetHeuristic " + s);
            if (found.getValue() < 1) {
                throw new IllegalStateException("cuBLASLt has no algorithm for " + s);
            }
            List<Memory> algorithms = new ArrayList<>();
            for (int i = 0; i < found.getValue(); i++) {  // the cublasLtMatmulAlgo_t at the start of each result
                Memory algorithm = new Memory(64);
                algorithm.write(0, results.getByteArray((long) i * HEURISTIC_BYTES, 64), 0, 64);
                algorithms.add(algorithm);
            }
            return new Plan(desc, wLayout, aLayout, outLayout, List.copyOf(algorithms));
        } finally {
            lib.cublasLtMatmulPreferenceDestroy(preference);
        }
    }

    private void setInt(Pointer desc, int attribute, int value) {
        Memory m = new Memory(4);
        m.setInt(0, value);
        check(lib.cublasLtMatmulDescSetAttribute(desc, attribute, m, 4), "matmul attribute " + attribute);
    }

    private void setInt64(Pointer desc, int attribute, long value) {
        Memory m = new Memory(8);
        m.setLong(0, value);
        check(lib.cublasLtMatmulDescSetAttribute(desc, attribute, m, 8), "matmul attribute " + attribute);
    }

    private static Memory floatMemory(float value) {
        Memory m = new Memory(4);
        m.setFloat(0, value);
        return m;
    }

    private static void check(int status, String what) {
        if (status != 0) {
            throw new IllegalStateException("cuBLASLt " + what + " failed with status " + status);
        }
    }

    @Override
    public void close() {
        for (Plan p : plans.values()) {
            lib.cublasLtMatrixLayoutDestroy(p.wLayout);
            lib.cublasLtMatrixLayoutDestroy(p.aLayout);
            lib.cublasLtMatrixLayoutDestroy(p.outLayout);
            lib.cublasLtMatmulDescDestroy(p.desc);
        }
        plans.clear();
        lib.cublasLtDestroy(handle);
    }

    /** The raw address behind a JCuda device pointer (with its byte offset) or stream, for a C call JCuda lacks. */
    static final class Address extends jcuda.Pointer {
        private Address(jcuda.Pointer p) {
            super(p);
        }

        static long of(jcuda.Pointer p) {
            Address a = new Address(p);
            return a.getNativePointer() + a.getByteOffset();
        }

        static long of(CUstream s) {
            return new Handle(s).address();
        }

        private static final class Handle extends NativePointerObject {
            Handle(NativePointerObject o) {
                super(o);
            }

            long address() {
                return getNativePointer();
            }
        }
    }
}
