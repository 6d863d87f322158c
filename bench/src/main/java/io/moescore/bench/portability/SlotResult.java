package io.moescore.bench.portability;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * What one benchmark task sends back: where it ran, which GPU addresses Spark gave it (empty: none), its table
 * rows, and the autotuner's choices per GPU model (model name -> shape -> kernel, the kernel-cache format).
 */
public record SlotResult(String host, String executorId, List<String> gpuAddresses, List<PortabilityRow> rows,
                         Map<String, Map<String, String>> kernelChoicesByGpuModel) implements Serializable {
}
