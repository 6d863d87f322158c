package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuStreamCreate;

import io.moescore.backend.GpuFaultException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import jcuda.driver.CUcontext;
import jcuda.driver.CUresult;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * One CUDA device as this JVM uses it: its primary context (shared with anything else in the process), our
 * kernels loaded once from the fatbin resource, and per thread a non-blocking stream and a memory pool. One
 * instance per (JVM, device ordinal), from {@link #forDevice}; Spark tasks on one executor share it, each on
 * its own stream.
 */
public final class GpuRuntime implements AutoCloseable {
    /** The fatbin the Maven build compiles from src/main/cuda (absent in builds made without nvcc). */
    public static final String KERNELS_RESOURCE = "/io/moescore/cuda/moescore_kernels.fatbin";

    private static final Map<Integer, GpuRuntime> RUNTIMES = new ConcurrentHashMap<>();

    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new ConcurrentHashMap<>();
    private final Map<HalfType, java.util.Optional<CublasLt>> libraries = new ConcurrentHashMap<>();
    private final String name;
    private final int computeMajor;
    private final int computeMinor;
    private final int multiprocessors;
    private final int maxSharedPerBlock;
    private final long totalMemory;
    private final int driverVersion;
    private final ThreadLocal<CUstream> streams = new ThreadLocal<>();
    private final ThreadLocal<DevicePool> pools = new ThreadLocal<>();
    private final ThreadLocal<Boolean> bound = new ThreadLocal<>();
    /** The first unrecoverable error, once one happened: the context is then unusable (see {@link #checkUsable}). */
    private volatile String brokenBy;

    /**
     * CUDA errors after which the context cannot run anything (the driver documents them as sticky): every later
     * call returns them until the process ends.
     */
    private static final java.util.Set<Integer> STICKY_ERRORS = java.util.Set.of(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS,
            CUresult.CUDA_ERROR_LAUNCH_FAILED, CUresult.CUDA_ERROR_ECC_UNCORRECTABLE,
            CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR, CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION,
            CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, CUresult.CUDA_ERROR_INVALID_ADDRESS_SPACE,
            CUresult.CUDA_ERROR_INVALID_PC, CUresult.CUDA_ERROR_LAUNCH_TIMEOUT, CUresult.CUDA_ERROR_ASSERT,
            CUresult.CUDA_ERROR_CONTEXT_IS_DESTROYED);

    private GpuRuntime(int ordinal) {
        this.ordinal = ordinal;
        byte[] fatbin = loadKernels();
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            if (ordinal < 0 || ordinal >= count[0]) {
                throw new CudaUnavailableException("CUDA device " + ordinal + " does not exist (this machine has "
                        + count[0] + ")");
            }
            cuDeviceGet(device, ordinal);
            byte[] nameBytes = new byte[256];
            cuDeviceGetName(nameBytes, nameBytes.length, device);
            name = new String(nameBytes, StandardCharsets.US_ASCII).trim().replace("\0", "");
            computeMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            computeMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
            maxSharedPerBlock = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
            long[] mem = new long[1];
            cuDeviceTotalMem(mem, device);
            totalMemory = mem[0];
            int[] version = new int[1];
            cuDriverGetVersion(version);
            driverVersion = version[0];
            cuDevicePrimaryCtxRetain(context, device);
            cuCtxSetCurrent(context);
            bound.set(true);
            byte[] terminated = new byte[fatbin.length + 1];
            System.arraycopy(fatbin, 0, terminated, 0, fatbin.length);
            cuModuleLoadData(module, terminated);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new CudaUnavailableException("the CUDA driver library could not be loaded (" + e.getMessage()
                    + "): no NVIDIA driver on this machine?", e);
        } catch (jcuda.CudaException e) {
            throw new CudaUnavailableException("CUDA device " + ordinal + " cannot be used: " + e.getMessage(), e);
        }
    }

    /** The runtime of a device, created on first use. */
    public static GpuRuntime forDevice(int ordinal) {
        return RUNTIMES.computeIfAbsent(ordinal, GpuRuntime::new);
    }

    /** How many CUDA devices this machine has (0 when there is no driver). */
    public static int deviceCount() {
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            return count[0];
        } catch (Throwable e) {
            return 0;
        }
    }

    /**
     * Why device {@code ordinal} cannot run the CUDA backend here (this build has no kernels, or there is no such
     * device), or null when it can.
     */
    public static String whyUnavailable(int ordinal) {
        if (!hasKernels()) {
            return "this build has no CUDA kernels (nvcc was not found when it was built)";
        }
        int devices = deviceCount();
        if (devices <= ordinal) {
            return devices == 0 ? "no CUDA device on this machine"
                    : "no CUDA device " + ordinal + " (this machine has " + devices + ")";
        }
        return null;
    }

    /** True when this jar carries compiled kernels. */
    public static boolean hasKernels() {
        return GpuRuntime.class.getResource(KERNELS_RESOURCE) != null;
    }

    private static byte[] loadKernels() {
        try (InputStream in = GpuRuntime.class.getResourceAsStream(KERNELS_RESOURCE)) {
            if (in == null) {
                throw new CudaUnavailableException("this build of moescore has no CUDA kernels (nvcc was not found "
                        + "when it was built): rebuild on a machine with nvcc, or use the cpu backend");
            }
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            in.transferTo(bytes);
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new CudaUnavailableException("cannot read the CUDA kernels: " + e.getMessage(), e);
        }
    }

    private int attribute(int attribute) {
        int[] value = new int[1];
        cuDeviceGetAttribute(value, attribute, device);
        return value[0];
    }

    /**
     * This device's cuBLASLt for an operand type, loaded on first use ({@link CublasLt#load}); null where the
     * library is missing or switched off. Shared by every backend on the device, closed with the runtime.
     */
    CublasLt cublasLt(HalfType type) {
        return libraries.computeIfAbsent(type, t -> {
            bind();
            return java.util.Optional.ofNullable(CublasLt.load(t));
        }).orElse(null);
    }

    /** Makes this device's context current on the calling thread (once per thread). */
    public void bind() {
        if (bound.get() == null) {
            cuCtxSetCurrent(context);
            bound.set(true);
        }
    }

    /** The calling thread's stream on this device. */
    public CUstream stream() {
        CUstream s = streams.get();
        if (s == null) {
            bind();
            s = new CUstream();
            cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING);
            streams.set(s);
        }
        return s;
    }

    /** The calling thread's memory pool: tensors freed return there and serve the next batch's allocations. */
    public DevicePool pool() {
        DevicePool p = pools.get();
        if (p == null) {
            bind();
            p = new DevicePool(this);
            pools.set(p);
        }
        return p;
    }

    /** A kernel of our fatbin by name. */
    public CUfunction function(String kernel) {
        return functions.computeIfAbsent(kernel, k -> {
            bind();
            CUfunction f = new CUfunction();
            cuModuleGetFunction(f, module, k);
            return f;
        });
    }

    /** Lets a kernel use more than the default 48 KB of dynamic shared memory. */
    public void allowSharedMemory(CUfunction f, int bytes) {
        cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
        // the whole carveout as shared memory (the rest of the SM's 256 KB stays L1): the kernels that opt in are
        // the tensor-core ones, which live on shared memory, and the paired GEMMs (_sm90t2) need room for two blocks
        cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 100);
    }

    public int ordinal() {
        return ordinal;
    }

    public String name() {
        return name;
    }

    public String computeCapability() {
        return computeMajor + "." + computeMinor;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    /** The most dynamic shared memory one block may use once allowed ({@link #allowSharedMemory}). */
    public int maxSharedPerBlock() {
        return maxSharedPerBlock;
    }

    public long totalMemory() {
        return totalMemory;
    }

    public int driverVersion() {
        return driverVersion;
    }

    /**
     * Frees device memory. On a context broken by an unrecoverable error the free fails with that error, and the
     * memory is gone with the context anyway: closing what a faulted forward pass held then succeeds quietly.
     */
    static void free(jcuda.driver.CUdeviceptr p) {
        try {
            JCudaDriver.cuMemFree(p);
        } catch (jcuda.CudaException e) {
            if (stickyError(e) == null) {
                throw e;
            }
        }
    }

    /** The name of the unrecoverable CUDA error a failed call reports, or null for any other error. */
    private static String stickyError(jcuda.CudaException e) {
        String message = e.getMessage();
        return message == null ? null : STICKY_ERRORS.stream().map(CUresult::stringFor).filter(message::contains)
                .findFirst().orElse(null);
    }

    /** Fails with a {@link GpuFaultException} naming the first unrecoverable error, if one happened here. */
    public void checkUsable() {
        String cause = brokenBy;
        if (cause != null) {
            throw new GpuFaultException("CUDA device " + ordinal + " (" + name + ") is unusable since " + cause
                    + ": nothing more can run on it in this process");
        }
    }

    /** Whether an unrecoverable error has made this device's context unusable. */
    public boolean broken() {
        return brokenBy != null;
    }

    /**
     * What a failed CUDA call means here: an unrecoverable error marks this runtime broken and becomes a
     * {@link GpuFaultException}; any other error is returned as it is.
     *
     * @param during what was running, for the message (an op name)
     */
    public RuntimeException fault(jcuda.CudaException e, String during) {
        String error = stickyError(e);
        if (error == null) {
            return e;
        }
        synchronized (this) {
            if (brokenBy == null) {
                brokenBy = error + " (first seen in " + during + ")";
            }
        }
        return new GpuFaultException("CUDA device " + ordinal + " (" + name + "): " + error + " in " + during
                + "; the device's context is unusable for the rest of this process", e);
    }

    /** Unloads the kernels and releases the primary context. Only for tests and JVM shutdown. */
    @Override
    public void close() {
        RUNTIMES.remove(ordinal, this);
        try {
            bind();
            libraries.values().forEach(l -> l.ifPresent(CublasLt::close));
            libraries.clear();
            cuModuleUnload(module);
            cuDevicePrimaryCtxRelease(device);
        } catch (jcuda.CudaException e) {
            if (stickyError(e) == null) {
                throw e;
            }
        }
    }
}
