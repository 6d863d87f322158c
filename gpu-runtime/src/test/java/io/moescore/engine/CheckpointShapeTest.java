package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.model.ModelFormatException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A checkpoint that disagrees with its config.json, or lacks a tensor, fails {@link Engine#load} with a
 * {@link ModelFormatException} naming the tensor (and the shapes), before anything is computed.
 */
class CheckpointShapeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static CpuBackend backend;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(1);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static Path fixture(String name) {
        return TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf").resolve(name);
    }

    /** Copies a fixture's config and weights (not its reference.json) into a fresh directory. */
    Path copy(String name) throws IOException {
        Path from = fixture(name);
        Path to = Files.createDirectories(tmp.resolve(name));
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                if (n.equals("config.json") || n.endsWith(".safetensors") || n.endsWith(".index.json")) {
                    Files.copy(f, to.resolve(n));
                }
            }
        }
        return to;
    }

    static void editConfig(Path model, Consumer<ObjectNode> edit) throws IOException {
        Path file = model.resolve("config.json");
        ObjectNode root = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept(root);
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), root);
    }

    /** Rewrites a safetensors file without one tensor, packing the remaining data with fresh offsets. */
    static void removeTensor(Path file, String tensor) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLength = (int) in.getLong(0);
        int dataStart = 8 + headerLength;
        ObjectNode header = (ObjectNode) JSON.readTree(new String(bytes, 8, headerLength, StandardCharsets.UTF_8));
        assertNotNull(header.remove(tensor), "fixture " + file + " has no tensor " + tensor);
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            ObjectNode entry = (ObjectNode) e.getValue();
            long begin = entry.get("data_offsets").get(0).asLong();
            long end = entry.get("data_offsets").get(1).asLong();
            long newBegin = data.size();
            data.write(bytes, dataStart + (int) begin, (int) (end - begin));
            entry.putArray("data_offsets").add(newBegin).add(data.size());
        }
        byte[] h = JSON.writeValueAsBytes(header);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + data.size()).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length).put(h).put(data.toByteArray());
        Files.write(file, out.array());
    }

    static ModelFormatException assertLoadFails(Path model, String... mustContain) {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> Engine.load(model, backend).close());
        for (String s : mustContain) {
            assertTrue(e.getMessage().contains(s), () -> "message should contain '" + s + "': " + e.getMessage());
        }
        return e;
    }

    @Test
    void unmodifiedCopyLoads() throws IOException {
        Path model = copy("mixtral-bf16");
        try (Engine engine = Engine.load(model, backend)) {
            assertEquals(48, engine.config().expertFfnSize());
        }
    }

    @Test
    void removingTensorKeepsTheRestReadable() throws IOException {
        // The rewriting helper itself: dropping the (untied) lm_head keeps every other tensor loadable.
        Path model = copy("mixtral-bf16");
        removeTensor(model.resolve("model.safetensors"), "lm_head.weight");
        editConfig(model, c -> c.put("tie_word_embeddings", true));
        try (Engine engine = Engine.load(model, backend)) {
            assertTrue(engine.config().tieWordEmbeddings());
        }
    }

    @Test
    void expertFfnSizeDisagreesWithWeights() throws IOException {
        Path model = copy("mixtral-bf16");
        editConfig(model, c -> c.put("intermediate_size", 40));
        ModelFormatException e = assertLoadFails(model,
                "model.layers.0.block_sparse_moe.experts.0.w1.weight", "[48, 64]", "[40, 64]",
                "dimension 0 is intermediate_size = 40");
        assertTrue(e.getMessage().contains(model.resolve("model.safetensors").toString()), e.getMessage());
    }

    @Test
    void kvHeadsDisagreeWithWeights() throws IOException {
        Path model = copy("mixtral-bf16");
        editConfig(model, c -> c.put("num_key_value_heads", 4));
        assertLoadFails(model, "model.layers.0.self_attn.k_proj.weight", "[32, 64]", "[64, 64]",
                "dimension 0 is num_key_value_heads x head_dim = 64");
    }

    @Test
    void vocabSizeDisagreesWithWeights() throws IOException {
        Path model = copy("mixtral-bf16");
        editConfig(model, c -> c.put("vocab_size", 500));
        assertLoadFails(model, "model.embed_tokens.weight", "[512, 64]", "[500, 64]", "vocab_size = 500");
    }

    @Test
    void moreExpertsInConfigThanInCheckpoint() throws IOException {
        Path model = copy("mixtral-bf16");
        editConfig(model, c -> c.put("num_local_experts", 9));
        assertLoadFails(model, "model.layers.0.block_sparse_moe.gate.weight", "[8, 64]", "[9, 64]",
                "num_local_experts = 9");
    }

    @Test
    void shardedExpertFfnSizeDisagreesWithWeights() throws IOException {
        Path model = copy("qwen3moe-bf16-sharded");
        editConfig(model, c -> c.put("moe_intermediate_size", 32));
        assertLoadFails(model, "model.layers.0.mlp.experts.0.gate_proj.weight", "[40, 64]", "[32, 64]",
                ".safetensors", "moe_intermediate_size = 32");
    }

    @Test
    void fusedExpertFfnSizeDisagreesWithWeights() throws IOException {
        Path model = copy("olmoe-fp32-fused");
        editConfig(model, c -> c.put("intermediate_size", 16));
        assertLoadFails(model, "model.layers.0.mlp.experts.gate_up_proj", "[8, 64, 64]", "[8, 32, 64]",
                "dimension 1 is 2 x intermediate_size = 32");
    }

    @Test
    void missingExpertTensor() throws IOException {
        Path model = copy("mixtral-bf16");
        String gone = "model.layers.1.block_sparse_moe.experts.7.w2.weight";
        removeTensor(model.resolve("model.safetensors"), gone);
        assertLoadFails(model, gone, model.toString());
    }

    @Test
    void missingAttentionTensor() throws IOException {
        Path model = copy("mixtral-bf16");
        String gone = "model.layers.1.self_attn.k_proj.weight";
        removeTensor(model.resolve("model.safetensors"), gone);
        assertLoadFails(model, gone);
    }

    @Test
    void missingLmHeadWithoutTiedEmbeddings() throws IOException {
        Path model = copy("mixtral-bf16");
        removeTensor(model.resolve("model.safetensors"), "lm_head.weight");
        assertLoadFails(model, "lm_head.weight", "tie");
    }
}
