package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The finiteness check of a checked {@link TensorRef}: every float dtype, both read paths (converted floats and
 * raw bytes, which the CUDA upload copies as they are), the first bad index reported wherever the read began,
 * and no false alarm on the largest finite values.
 */
class NonFiniteTensorTest {
    @TempDir
    Path dir;

    Checkpoint write(DType dtype, float[] values, long... shape) throws IOException {
        if (dtype != DType.F16) {
            new SafeTensorsWriter(Map.of()).add("w", dtype, values, shape).write(dir.resolve(Checkpoint.SINGLE_FILE));
            return Checkpoint.open(dir);
        }
        // the writer has no F16: the bytes by hand
        java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(2 * values.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            data.putShort(DType.floatToHalf(v));
        }
        String header = "{\"w\":{\"dtype\":\"F16\",\"shape\":" + java.util.Arrays.toString(shape)
                + ",\"data_offsets\":[0," + 2 * values.length + "]}}";
        java.nio.file.Files.write(dir.resolve(Checkpoint.SINGLE_FILE),
                SafeTensorsCorruptionTest.safetensors(header, data.array()));
        return Checkpoint.open(dir);
    }

    @Test
    void everyFloatDtypeAndBothReadPaths() throws IOException {
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] values = new float[6 * 10];
                java.util.Arrays.fill(values, 0.5f);
                values[4 * 10 + 7] = bad;  // [4, 7]
                values[5 * 10 + 2] = bad;  // later: never the one named
                try (Checkpoint ckpt = write(dtype, values, 6, 10)) {
                    TensorRef plain = ckpt.get("w");
                    assertEquals(47, plain.firstNonFinite(), dtype + " " + bad);
                    assertEquals(values.length, plain.toFloats().length);  // unchecked: reads it
                    plain.bytes(0, values.length);
                    TensorRef checked = plain.checkingFinite();
                    // a read starting past the first bad value still names the first one
                    NonFiniteWeightException e = assertThrows(NonFiniteWeightException.class,
                            () -> checked.toFloats(50, 10));
                    assertArrayEquals(new long[] {4, 7}, e.index(), e.getMessage());
                    assertTrue(e.getMessage().contains("w") && e.getMessage().contains("[4, 7]")
                            && e.getMessage().contains(dir.toString()), e.getMessage());
                    e = assertThrows(NonFiniteWeightException.class, () -> checked.bytes(40, 20));
                    assertArrayEquals(new long[] {4, 7}, e.index());
                    // reads that miss both bad values pass
                    assertEquals(40, checked.toFloats(0, 40).length);
                    checked.bytes(0, 47);
                }
            }
        }
    }

    @Test
    void largestFiniteValuesAreNotFlagged() throws IOException {
        float[][] cases = {
            {Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, 0f, -0f},
            {65504f, -65504f, 6e-8f, 0f, -0f},             // F16's largest and smallest
            {3.3895314e38f, -3.3895314e38f, 1e-40f, 0f, -0f}, // BF16's largest
        };
        DType[] dtypes = {DType.F32, DType.F16, DType.BF16};
        for (int i = 0; i < dtypes.length; i++) {
            try (Checkpoint ckpt = write(dtypes[i], cases[i], cases[i].length)) {
                TensorRef checked = ckpt.get("w").checkingFinite();
                assertEquals(-1, checked.firstNonFinite(), dtypes[i].toString());
                assertEquals(cases[i].length, checked.toFloats().length);
                checked.bytes(0, cases[i].length);
            }
        }
    }

    @Test
    void integerTensorsAreNeverFlagged() throws IOException {
        new SafeTensorsWriter(Map.of()).addInts("m", new int[] {0x7f800000, 0x7fc00000, -1}, 3)
                .write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(3, ckpt.get("m").checkingFinite().toInts().length);
        }
    }
}
