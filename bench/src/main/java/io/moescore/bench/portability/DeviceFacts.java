package io.moescore.bench.portability;

import io.moescore.backend.cuda.GpuRuntime;
import java.io.Serializable;

/**
 * What a device is, for the portability table. GPU facts come from gpu-runtime ({@link GpuRuntime}: name, compute
 * capability, SM count, memory, CUDA driver API version); gpu-runtime does not read clocks or the NVIDIA driver's
 * own version, so those come from {@link NvidiaSmi} and stay null where it is missing.
 */
public record DeviceFacts(String backend, String deviceName, String computeCapability, Integer smCount,
                          Long memoryBytes, Integer smClockMhz, Integer memoryClockMhz, String driverVersion,
                          String cudaVersion) implements Serializable {

    public static DeviceFacts ofGpu(GpuRuntime gpu) {
        NvidiaSmi.Facts smi = NvidiaSmi.query(gpu.ordinal());
        int cuda = gpu.driverVersion();
        return new DeviceFacts("cuda", gpu.name(), gpu.computeCapability(), gpu.multiprocessors(),
                gpu.totalMemory(), smi.maxSmClockMhz(), smi.maxMemoryClockMhz(), smi.driverVersion(),
                cuda / 1000 + "." + (cuda % 1000) / 10);
    }

    /** The CPU backend's device: its name says the thread count; memory is this JVM's heap limit. */
    public static DeviceFacts ofCpu(String deviceName) {
        return new DeviceFacts("cpu", deviceName + " on " + System.getProperty("os.arch"), null,
                null, Runtime.getRuntime().maxMemory(), null, null, null, null);
    }

    /** A device that could not even be described (its row carries the error). */
    public static DeviceFacts unknown(String backend) {
        return new DeviceFacts(backend, "unknown", null, null, null, null, null, null, null);
    }
}
