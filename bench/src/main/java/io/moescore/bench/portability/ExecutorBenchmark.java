package io.moescore.bench.portability;

import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.GpuRuntime;
import io.moescore.backend.select.Backends;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * The body of one benchmark task, on an executor: benchmarks the GPU Spark assigned the task (task resource
 * {@code gpu}); where Spark assigns none, every GPU this executor's JVM can see, one after the other; where there is
 * none (or {@code --backend cpu}), the CPU backend, with rows marked backend=cpu. A GPU that fails gets a row saying
 * why, and the task goes on to the next device.
 */
final class ExecutorBenchmark implements Serializable {
    private final PortabilityOptions options;

    ExecutorBenchmark(PortabilityOptions options) {
        this.options = options;
    }

    SlotResult run(BenchmarkSlot slot) {
        TaskContext task = TaskContext.get();
        String host = SparkEnv.get().blockManager().blockManagerId().host();
        String executorId = SparkEnv.get().executorId();
        ResourceInformation assigned = task == null ? null : task.resourcesJMap().get("gpu");
        List<String> assignedAddresses = assigned == null ? List.of() : List.of(assigned.addresses());
        List<String> devices = options.backend().equals("cpu") ? List.of()
                : assignedAddresses.isEmpty() ? visibleGpus() : assignedAddresses;
        List<PortabilityRow> rows = new ArrayList<>();
        Map<String, Map<String, String>> choices = new TreeMap<>();
        Path scratch = createScratch();
        try {
            if (devices.isEmpty()) {
                int threads = task == null ? Runtime.getRuntime().availableProcessors() : Math.max(1, task.cpus());
                try (Backend cpu = Backends.open("cpu", threads, 0, Precision.BF16, false)) {
                    DeviceFacts facts = DeviceFacts.ofCpu(cpu.deviceName());
                    rows.addAll(toRows(host, executorId, null, facts, new SuiteRunner(cpu, false, "fp32",
                            options.suite(), scratch).run(options.modelPath())));
                }
            }
            for (String address : devices) {
                rows.addAll(benchmarkGpu(host, executorId, address, scratch, choices));
            }
        } finally {
            deleteRecursively(scratch);
        }
        return new SlotResult(host, executorId, assignedAddresses, rows, choices);
    }

    /** Device ordinals this JVM can use when Spark assigned none: none for --backend cpu or a build without kernels. */
    private List<String> visibleGpus() {
        if (!GpuRuntime.hasKernels()) {
            return List.of();
        }
        List<String> ordinals = new ArrayList<>();
        for (int i = 0; i < GpuRuntime.deviceCount(); i++) {
            ordinals.add(Integer.toString(i));
        }
        return ordinals;
    }

    private List<PortabilityRow> benchmarkGpu(String host, String executorId, String address, Path scratch,
                                              Map<String, Map<String, String>> choices) {
        DeviceFacts facts = DeviceFacts.unknown("cuda");
        try {
            int ordinal = Integer.parseInt(address);
            facts = DeviceFacts.ofGpu(GpuRuntime.forDevice(ordinal));
            Precision precision = Precision.parse(options.precision());
            try (Backend cuda = Backends.open("cuda", 1, ordinal, precision, false)) {
                List<Measurement> measured = new SuiteRunner(cuda, true, precision.userName(), options.suite(), scratch)
                        .run(options.modelPath());
                choices.computeIfAbsent(facts.deviceName(), k -> new TreeMap<>()).putAll(cuda.tunedKernels());
                return toRows(host, executorId, address, facts, measured);
            }
        } catch (RuntimeException | LinkageError e) {
            String why = e instanceof NumberFormatException
                    ? "Spark assigned GPU address '" + address + "', which is not a CUDA device ordinal"
                    : "this GPU could not be benchmarked: " + e;
            return toRows(host, executorId, address, facts, List.of(Measurement.failed("all", "-", 0, "-", "-", why)));
        }
    }

    private List<PortabilityRow> toRows(String host, String executorId, String address, DeviceFacts d,
                                        List<Measurement> measured) {
        List<PortabilityRow> rows = new ArrayList<>();
        for (Measurement m : measured) {
            rows.add(new PortabilityRow(options.runLabel(), host, executorId, address, d.backend(), d.deviceName(),
                    d.computeCapability(), d.smCount(), d.memoryBytes(), d.smClockMhz(), d.memoryClockMhz(),
                    d.driverVersion(), d.cudaVersion(), m.kernel(), m.shape(), m.tokens(), m.dtype(), m.pattern(),
                    m.medianMs(), m.tflops(), m.gbps(), null, m.tileConfig(), m.error()));
        }
        return rows;
    }

    private static Path createScratch() {
        try {
            return Files.createTempDirectory("moescore-portability");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a scratch folder for synthetic weights", e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover temporary folder is not worth failing a benchmark for
        }
    }
}
