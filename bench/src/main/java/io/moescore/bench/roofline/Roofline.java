package io.moescore.bench.roofline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;

/**
 * The roofline table of a ForwardBenchmark result: for each op of the profile, its measured ms, the FLOPs and
 * bytes of its floor ({@link OpCosts}), the rates achieved, and the floor's time on the GPU's datasheet limits as a
 * share of the measured time, so the next bottleneck is visible.
 *
 *   java ... io.moescore.bench.roofline.Roofline OURS.json [OUT.md]
 */
public final class Roofline {
    /** Datasheet limits: dense bf16 tensor-core FLOP/s and DRAM bytes/s. */
    public record Limits(String gpu, double flops, double bytesPerSecond) {
        /** The GPU the device name says (H100 SXM, H200), or null where none is known. */
        public static Limits forDevice(String deviceName) {
            if (deviceName.contains("H200")) {
                return new Limits("H200 (989 TFLOP/s bf16, 4.8 TB/s)", 989.4e12, 4.8e12);
            }
            if (deviceName.contains("H100")) {
                return new Limits("H100 SXM (989 TFLOP/s bf16, 3.35 TB/s)", 989.4e12, 3.35e12);
            }
            return null;
        }
    }

    private Roofline() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: Roofline OURS.json [OUT.md]");
            System.exit(2);
        }
        String table = table(new ObjectMapper().readTree(Path.of(args[0]).toFile()));
        System.out.print(table);
        if (args.length > 1) {
            Files.writeString(Path.of(args[1]), table);
        }
    }

    /** The markdown tables (one per run) of a ForwardBenchmark JSON. */
    public static String table(JsonNode result) {
        JsonNode dimsNode = result.get("dims");
        if (dimsNode == null) {
            throw new IllegalArgumentException("no \"dims\" in the benchmark result: rerun ForwardBenchmark (it writes "
                    + "them since the roofline table exists)");
        }
        OpCosts.Dims dims = new ObjectMapper().convertValue(dimsNode, OpCosts.Dims.class);
        String device = result.path("device").asText("");
        Limits limits = Limits.forDevice(device);
        if (limits == null) {
            throw new IllegalArgumentException("no datasheet limits known for device \"" + device + "\"");
        }
        StringBuilder out = new StringBuilder();
        for (JsonNode run : result.path("runs")) {
            JsonNode ops = run.get("op_ms");
            if (ops == null) {
                continue;
            }
            long tokens = run.path("tokens").asLong();
            int seq = run.path("sequence_length").asInt();
            Map<String, OpCosts.Cost> costs = OpCosts.of(dims, tokens, seq, ops.has("rmsNormRope"));
            out.append(String.format(Locale.ROOT, "%n%s, %s experts, %d tokens of %d-token sequences, %s%n%n",
                    result.path("config").asText().replaceAll("\\(.*", ""), result.path("experts").asText(), tokens,
                    seq, limits.gpu()));
            out.append("| op | ms | GFLOP | GB | TFLOP/s | GB/s | floor ms | floor / measured |\n");
            out.append("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
            double totalMs = 0;
            double totalFloor = 0;
            for (Iterator<Map.Entry<String, JsonNode>> it = ops.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> op = it.next();
                double ms = op.getValue().asDouble();
                totalMs += ms;
                OpCosts.Cost c = costs.get(op.getKey());
                if (c == null) {
                    out.append(String.format(Locale.ROOT, "| %s | %.2f | | | | | | (no cost model) |%n", op.getKey(), ms));
                    continue;
                }
                double floorMs = Math.max(c.flops() / limits.flops(), c.bytes() / limits.bytesPerSecond()) * 1e3;
                totalFloor += floorMs;
                out.append(String.format(Locale.ROOT, "| %s | %.2f | %.0f | %.2f | %s | %.0f | %.2f | %.0f%% |%n",
                        op.getKey(), ms, c.flops() / 1e9, c.bytes() / 1e9,
                        c.flops() > 0 ? String.format(Locale.ROOT, "%.0f", c.flops() / (ms * 1e-3) / 1e12) : "",
                        c.bytes() / (ms * 1e-3) / 1e9, floorMs, 100 * floorMs / ms));
            }
            out.append(String.format(Locale.ROOT, "| all ops | %.2f | | | | | %.2f | %.0f%% |%n", totalMs, totalFloor,
                    100 * totalFloor / totalMs));
        }
        return out.toString();
    }
}
