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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Comparisons of 2:4 compressed checkpoints (the sparsify tool's and job's). */
final class SparseCheckpoints {
    private SparseCheckpoints() {
    }

    /** Every tensor equal, but the expert weights' values, which SparseGPT computes in fp64 from Hessians summed in
     * another order: the same kept positions, values within one bf16 step; and every group of 4 keeps at most 2. */
    static void assertSame(Path expected, Path actual) throws IOException {
        ObjectMapper json = new ObjectMapper();
        // "source" says where the dense model was read from: a job that read it from HDFS names its local copy.
        ObjectNode expectedJson = (ObjectNode) json.readTree(expected.resolve("sparsity.json").toFile());
        ObjectNode actualJson = (ObjectNode) json.readTree(actual.resolve("sparsity.json").toFile());
        expectedJson.remove("source");
        actualJson.remove("source");
        assertEquals(expectedJson, actualJson);
        int valuesDiffering = 0;
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
                if (!name.endsWith(".sp24_values")) {
                    assertArrayEquals(bytes(te), bytes(ta), name);
                    continue;
                }
                float[] ve = te.toFloats();
                float[] va = ta.toFloats();
                for (int i = 0; i < ve.length; i++) {
                    values++;
                    if (ve[i] != va[i]) {
                        valuesDiffering++;
                        assertEquals(ve[i], va[i], Math.abs(ve[i]) / 64, name + "[" + i + "]");
                    }
                }
                String weight = name.substring(0, name.length() - ".sp24_values".length());
                assertTrue(ExpertTensor.parse(weight).isPresent(), weight);
                int rows = (int) ta.shape()[0];
                int cols = (int) ta.shape()[1] * 2;
                assertAtMostTwoOfFour(weight, Sparse24.decompress(new Sparse24.Packed(rows, cols, va,
                        a.get(weight + ".sp24_meta").toInts())));
            }
        }
        System.out.printf("expert weight values differing between %s and %s: %d of %d%n",
                expected.getFileName(), actual.getFileName(), valuesDiffering, values);
        assertTrue(valuesDiffering <= values / 1000, valuesDiffering + " of " + values + " values differ");
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
