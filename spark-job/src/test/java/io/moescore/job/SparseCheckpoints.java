package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.model.Checkpoint;
import io.moescore.model.TensorRef;
import io.moescore.sparsify.ExpertTensor;
import io.moescore.sparse.Sparse24;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Comparisons of 2:4 compressed checkpoints (the sparsify tool's and job's). */
final class SparseCheckpoints {
    private SparseCheckpoints() {
    }

    /**
     * Every tensor equal to the bit (the tool and the job sum the Hessians exactly, so SparseGPT and the expert
     * reconstruction see the same inputs), sparsity.json equal but for the source path, and in every packed weight
     * (2:4, or 128:2:8's condensed matrix) every group of 4 keeps at most 2.
     */
    static void assertSame(Path expected, Path actual) throws IOException {
        ObjectMapper json = new ObjectMapper();
        // "source" says where the dense model was read from: a job that read it from HDFS names its local copy.
        ObjectNode expectedJson = (ObjectNode) json.readTree(expected.resolve("sparsity.json").toFile());
        ObjectNode actualJson = (ObjectNode) json.readTree(actual.resolve("sparsity.json").toFile());
        expectedJson.remove("source");
        actualJson.remove("source");
        assertEquals(expectedJson, actualJson);
        long values = 0;
        try (Checkpoint e = Checkpoint.open(expected); Checkpoint a = Checkpoint.open(actual)) {
            List<String> names = new ArrayList<>();
            e.tensorNames().forEach(names::add);
            List<String> actualNames = new ArrayList<>();
            a.tensorNames().forEach(actualNames::add);
            assertEquals(names.stream().sorted().toList(), actualNames.stream().sorted().toList());
            for (String name : names) {
                TensorRef te = e.get(name);
                TensorRef ta = a.get(name);
                assertArrayEquals(te.shape(), ta.shape(), name);
                assertEquals(te.dtype(), ta.dtype(), name);
                assertArrayEquals(bytes(te), bytes(ta), name);
                if (!name.endsWith(".sp24_values")) {
                    continue;
                }
                String weight = name.substring(0, name.length() - ".sp24_values".length());
                assertTrue(ExpertTensor.parse(weight).isPresent(), weight);
                int rows = (int) ta.shape()[0];
                int cols = (int) ta.shape()[1] * 2;
                values += ta.elementCount();
                assertAtMostTwoOfFour(weight, Sparse24.decompress(new Sparse24.Packed(rows, cols, ta.toFloats(),
                        a.get(weight + ".sp24_meta").toInts())));
            }
        }
        assertArrayEquals(Files.readAllBytes(expected.resolve(Checkpoint.SINGLE_FILE)),
                Files.readAllBytes(actual.resolve(Checkpoint.SINGLE_FILE)), "the same safetensors file, byte for byte");
        System.out.printf("%s and %s: the same to the bit (%d expert weight values)%n", expected.getFileName(),
                actual.getFileName(), values);
    }

    private static byte[] bytes(TensorRef t) {
        java.nio.ByteBuffer b = t.bytes(0, t.elementCount());
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static void assertAtMostTwoOfFour(String name, float[] dense) {
        for (int g = 0; g < dense.length; g += 4) {
            int zeros = 0;
            for (int j = 0; j < 4; j++) {
                zeros += dense[g + j] == 0f ? 1 : 0;
            }
            assertTrue(zeros >= 2, name + " group " + g / 4 + " keeps at most 2 of 4");
        }
    }

}
