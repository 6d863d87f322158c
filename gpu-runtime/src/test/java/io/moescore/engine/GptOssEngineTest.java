package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.model.DType;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.SafeTensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * gpt_oss on the CPU backend against {@link NaiveFamilyForward} (double precision, transformers' modeling_gpt_oss
 * step order) on tiny random checkpoints written here: fp32, bf16 and MXFP4-packed experts; a sliding window (4)
 * shorter than the longest sequence (20); sinks, the clamp, the window and YaRN each shown to matter by more than
 * 100 x the tolerance. The MXFP4 experts are decoded for the naive forward by the E2M1 formula (sign, exponent,
 * mantissa), not the engine's lookup table.
 */
class GptOssEngineTest {
    static final long SEED = 20261207L;

    @TempDir
    Path dir;

    /** The engine's log-probs on a CPU backend of its own (packed and alone: the same bits). */
    static double[][] engineLogProbs(Path model) {
        try (CpuBackend cpu = new CpuBackend(2)) {
            return FamilyEngineTest.engineLogProbs(model, cpu);
        }
    }

    /** Loading fails as {@code type} says. */
    static <T extends Throwable> T loadFails(Class<T> type, Path model, LoadOptions options) {
        try (CpuBackend cpu = new CpuBackend(2)) {
            return assertThrows(type, () -> Engine.load(model, cpu, options));
        }
    }

    static final String GPT_OSS = """
            {"model_type": "gpt_oss", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
             "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 4,
             "layer_types": ["sliding_attention", "full_attention"], "rope_theta": 150000.0,
             "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                              "truncate": false, "original_max_position_embeddings": 16},
             "rms_norm_eps": 1e-5, "attention_bias": true, "swiglu_limit": 1.5, "router_aux_loss_coef": 0.9,
             "output_router_logits": false, "tie_word_embeddings": false, "max_position_embeddings": 256,
             "hidden_act": "silu"}""";

    /** Writes a model of the config with random weights in dtype; returns the weights as the checkpoint holds them. */
    static Map<String, float[]> write(String config, Path model, long seed, DType dtype) throws IOException {
        System.out.println("GptOssEngineTest " + model.getFileName() + " seed " + seed);
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), config);
        ModelConfig c = ModelConfig.load(model);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> w = FamilyEngineTest.weights(c, new Random(seed), shapes);
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        for (Map.Entry<String, float[]> e : w.entrySet()) {
            if (dtype == DType.BF16) {
                float[] v = e.getValue();
                for (int i = 0; i < v.length; i++) {
                    v[i] = Float.intBitsToFloat(SafeTensorsWriter.toBf16(v[i]) << 16);
                }
            }
            writer.add(e.getKey(), dtype, e.getValue(), shapes.get(e.getKey()));
        }
        writer.write(model.resolve("model.safetensors"));
        return w;
    }

    static double check(String name, Path model, Map<String, float[]> w) {
        ModelConfig c = ModelConfig.load(model);
        double worst = FamilyEngineTest.worst(engineLogProbs(model), c, w);
        System.out.printf("%s: worst |engine - naive| %.2e%n", name, worst);
        assertTrue(worst <= FamilyEngineTest.TOLERANCE, name + ": worst " + worst);
        return worst;
    }

    @Test
    void fp32MatchesTheNaiveForwardAndEveryFeatureMatters() throws IOException {
        Path model = dir.resolve("gptoss-fp32");
        Map<String, float[]> w = write(GPT_OSS, model, SEED, DType.F32);
        ModelConfig c = ModelConfig.load(model);
        double[][] engine = engineLogProbs(model);
        double worst = FamilyEngineTest.worst(engine, c, w);
        System.out.printf("gpt_oss fp32: worst |engine - naive| %.2e%n", worst);
        assertTrue(worst <= FamilyEngineTest.TOLERANCE, "worst " + worst);
        Map<String, Consumer<ObjectNode>> variants = Map.of(
                "the clamp (swiglu_limit 100)", n -> n.put("swiglu_limit", 100.0),
                "the sliding window (64)", n -> n.put("sliding_window", 64),
                "yarn", n -> n.putNull("rope_scaling"));
        for (Map.Entry<String, Consumer<ObjectNode>> v : variants.entrySet()) {
            ObjectNode changed = (ObjectNode) FamilyEngineTest.JSON.readTree(GPT_OSS);
            v.getValue().accept(changed);
            double off = FamilyEngineTest.worst(engine, ModelConfig.parse(changed, v.getKey()), w);
            System.out.printf("gpt_oss without %s: %.2e%n", v.getKey(), off);
            assertTrue(off > 100 * FamilyEngineTest.TOLERANCE, v.getKey() + " is not exercised: " + off);
        }
        // the sinks: zeroed (a logit of 0 in every denominator) and absent (-infinity: no extra term)
        for (float sink : new float[] {0f, Float.NEGATIVE_INFINITY}) {
            Map<String, float[]> changed = new LinkedHashMap<>(w);
            changed.replaceAll((k, v) -> {
                if (!k.endsWith("self_attn.sinks")) {
                    return v;
                }
                float[] s = new float[v.length];
                Arrays.fill(s, sink);
                return s;
            });
            double off = FamilyEngineTest.worst(engine, c, changed);
            System.out.printf("gpt_oss with sinks %s: %.2e%n", sink, off);
            assertTrue(off > 100 * FamilyEngineTest.TOLERANCE, "sinks of " + sink + " are as close: " + off);
        }
    }

    @Test
    void bf16MatchesTheNaiveForward() throws IOException {
        Path model = dir.resolve("gptoss-bf16");
        check("gpt_oss bf16", model, write(GPT_OSS, model, SEED + 1, DType.BF16));
    }

    @Test
    void layerTypesAbsentAlternateFromASlidingFirstLayer() throws IOException {
        String config = GPT_OSS.replace("\"layer_types\": [\"sliding_attention\", \"full_attention\"],", "");
        Path model = dir.resolve("gptoss-default-layers");
        Map<String, float[]> w = write(config, model, SEED + 2, DType.F32);
        assertTrue(Arrays.equals(new int[] {4, 0}, ModelConfig.load(model).slidingWindow()));
        check("gpt_oss default layer_types", model, w);
    }

    @Test
    void pruningOnLoadIsRefusedNamingTheExperts() throws IOException {
        Path model = dir.resolve("gptoss-prune");
        write(GPT_OSS, model, SEED + 5, DType.F32);
        LoadOptions prune = LoadOptions.DEFAULT.withPruneExperts(io.moescore.sparse.SparsityPattern.TWO_FOUR);
        UnsupportedOperationException e = loadFails(UnsupportedOperationException.class, model, prune);
        assertTrue(e.getMessage().contains("--prune-experts") && e.getMessage().contains("gate_up_proj"),
                e.getMessage());
    }

    // ---- MXFP4 -------------------------------------------------------------------------------------------------

    /** E2M1 by its bits, the way the OCP spec defines it (not a table): (-1)^s 2^(e-1) (1 + m/2), e = 0: m/2. */
    static float e2m1(int nibble) {
        int sign = nibble >> 3;
        int exp = (nibble >> 1) & 3;
        int man = nibble & 1;
        double v = exp == 0 ? man * 0.5 : Math.pow(2, exp - 1) * (1 + man / 2.0);
        return (float) (sign == 1 ? -v : v);
    }

    /** Random packed blocks and scales of a [e, rows, cols] weight, and its values decoded by {@link #e2m1}. */
    record Packed(byte[] blocks, byte[] scales, float[] values) {
        static Packed random(Random r, int e, int rows, int cols) {
            int groups = cols / 32;
            byte[] blocks = new byte[e * rows * groups * 16];
            byte[] scales = new byte[e * rows * groups];
            r.nextBytes(blocks);
            for (int i = 0; i < scales.length; i++) {
                scales[i] = (byte) (121 + r.nextInt(4));  // 2^-6 .. 2^-3: weights of a few tenths
            }
            float[] v = new float[e * rows * cols];
            for (int i = 0; i < v.length; i++) {
                int g = i / 32;
                int within = i % 32;
                int b = blocks[g * 16 + within / 2] & 0xFF;
                int nibble = within % 2 == 0 ? b & 15 : b >> 4;
                v[i] = e2m1(nibble) * (float) Math.pow(2, (scales[g] & 0xFF) - 127);
            }
            return new Packed(blocks, scales, v);
        }
    }

    /** [n, rows, cols] to [n, cols, rows]. */
    static float[] transpose(float[] a, int n, int rows, int cols) {
        float[] out = new float[a.length];
        for (int x = 0; x < n; x++) {
            for (int r = 0; r < rows; r++) {
                for (int col = 0; col < cols; col++) {
                    out[x * rows * cols + col * rows + r] = a[x * rows * cols + r * cols + col];
                }
            }
        }
        return out;
    }

    /**
     * A model whose experts are MXFP4 as released: gate_up_proj_blocks [E, 2F, H/32, 16] and down_proj_blocks
     * [E, H, F/32, 16] with their scales; the naive forward gets gate_up_proj [E, H, 2F] and down_proj [E, F, H] as
     * transformers' convert_moe_packed_tensors returns them (the dequantized [.., rows, cols] transposed).
     * {@code edit} may break the packed tensors before they are written (name -> [blocks or scales]).
     */
    Map<String, float[]> writeMxfp4(Path model, long seed, Consumer<Map<String, Object[]>> edit) throws IOException {
        System.out.println("GptOssEngineTest " + model.getFileName() + " seed " + seed);
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), GPT_OSS);
        ModelConfig c = ModelConfig.load(model);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Random r = new Random(seed);
        Map<String, float[]> w = FamilyEngineTest.weights(c, r, shapes);
        int e = c.numExperts();
        int h = c.hiddenSize();
        int f = c.expertFfnSize();
        Map<String, Object[]> packed = new LinkedHashMap<>();
        for (int l = 0; l < c.numLayers(); l++) {
            String x = "model.layers." + l + ".mlp.experts.";
            Packed gateUp = Packed.random(r, e, 2 * f, h);
            Packed down = Packed.random(r, e, h, f);
            w.put(x + "gate_up_proj", transpose(gateUp.values(), e, 2 * f, h));
            w.put(x + "down_proj", transpose(down.values(), e, h, f));
            packed.put(x + "gate_up_proj_blocks", new Object[] {gateUp.blocks(), new long[] {e, 2 * f, h / 32, 16}});
            packed.put(x + "gate_up_proj_scales", new Object[] {gateUp.scales(), new long[] {e, 2 * f, h / 32}});
            packed.put(x + "down_proj_blocks", new Object[] {down.blocks(), new long[] {e, h, f / 32, 16}});
            packed.put(x + "down_proj_scales", new Object[] {down.scales(), new long[] {e, h, f / 32}});
        }
        edit.accept(packed);
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        for (Map.Entry<String, float[]> t : w.entrySet()) {
            if (!t.getKey().endsWith("gate_up_proj") && !t.getKey().endsWith("down_proj")) {
                writer.add(t.getKey(), DType.BF16, t.getValue(), shapes.get(t.getKey()));
                float[] v = t.getValue();
                for (int i = 0; i < v.length; i++) {
                    v[i] = Float.intBitsToFloat(SafeTensorsWriter.toBf16(v[i]) << 16);
                }
            }
        }
        packed.forEach((name, p) -> writer.addBytes(name, (byte[]) p[0], (long[]) p[1]));
        writer.write(model.resolve("model.safetensors"));
        return w;
    }

    @Test
    void mxfp4ExpertsMatchTheNaiveForwardOfTheirDecodedValues() throws IOException {
        Path model = dir.resolve("gptoss-mxfp4");
        Map<String, float[]> w = writeMxfp4(model, SEED + 3, p -> { });
        check("gpt_oss mxfp4", model, w);
        // the same values read with the gate/up interleave ignored (gate = first F columns) are far off
        ModelConfig c = ModelConfig.load(model);
        Map<String, float[]> swapped = new LinkedHashMap<>(w);
        int f = c.expertFfnSize();
        swapped.replaceAll((k, v) -> {
            if (!k.endsWith("gate_up_proj")) {
                return v;
            }
            float[] s = new float[v.length];
            for (int row = 0; row < v.length / (2 * f); row++) {
                for (int j = 0; j < f; j++) {
                    s[row * 2 * f + 2 * j] = v[row * 2 * f + j];
                    s[row * 2 * f + 2 * j + 1] = v[row * 2 * f + f + j];
                }
            }
            return s;
        });
        double off = FamilyEngineTest.worst(engineLogProbs(model), c, swapped);
        System.out.printf("gpt_oss mxfp4 read as halves: %.2e%n", off);
        assertTrue(off > 100 * FamilyEngineTest.TOLERANCE, "the interleave is not exercised: " + off);
    }

    void refused(String name, Consumer<Map<String, Object[]>> edit, String... mustName) throws IOException {
        Path model = dir.resolve(name);
        writeMxfp4(model, SEED + 4, edit);
        ModelFormatException e = loadFails(ModelFormatException.class, model, LoadOptions.DEFAULT);
        for (String s : mustName) {
            assertTrue(e.getMessage().contains(s), e.getMessage() + " does not name " + s);
        }
    }

    @Test
    void malformedMxfp4IsRefusedNamingTheTensor() throws IOException {
        String x = "model.layers.1.mlp.experts.";
        refused("no-scales", p -> p.remove(x + "down_proj_scales"), x + "down_proj_scales");
        refused("short-blocks", p -> p.put(x + "gate_up_proj_blocks", new Object[] {new byte[4 * 64 * 1 * 8],
                new long[] {4, 64, 1, 8}}), x + "gate_up_proj_blocks", "[4, 64, 1, 8]");
        refused("wrong-scales", p -> p.put(x + "gate_up_proj_scales", new Object[] {new byte[4 * 32],
                new long[] {4, 32, 1}}), x + "gate_up_proj_scales", "intermediate_size");
        refused("nan-scale", p -> ((byte[]) p.get(x + "down_proj_scales")[0])[5] = (byte) 255,
                x + "down_proj_scales", "255", "block 5");
    }
}
