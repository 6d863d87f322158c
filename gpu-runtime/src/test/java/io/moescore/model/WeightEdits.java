package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/** Test helper: overwrites elements of a tensor in a model's safetensors files in place (a broken copy). */
public final class WeightEdits {
    private WeightEdits() {
    }

    /** Sets element {@code flatIndex} of {@code tensor} in the model directory's weights to {@code value}. */
    public static void set(Path modelDirectory, String tensor, long flatIndex, float value) throws IOException {
        write(modelDirectory, tensor, flatIndex, new float[] {value});
    }

    /** Multiplies every element of {@code tensor} by {@code factor} (an overflow made to order). */
    public static void scale(Path modelDirectory, String tensor, float factor) throws IOException {
        float[] values;
        try (Checkpoint ckpt = Checkpoint.open(modelDirectory)) {
            values = ckpt.get(tensor).toFloats();
        }
        for (int i = 0; i < values.length; i++) {
            values[i] *= factor;
        }
        write(modelDirectory, tensor, 0, values);
    }

    /** Writes {@code values} as elements {@code first ..} of the tensor, in its dtype. */
    private static void write(Path modelDirectory, String tensor, long first, float[] values) throws IOException {
        Path file;
        try (Checkpoint ckpt = Checkpoint.open(modelDirectory)) {
            file = ckpt.get(tensor).file();
        }
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            byte[] len = new byte[8];
            f.readFully(len);
            long headerLength = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] header = new byte[(int) headerLength];
            f.readFully(header);
            JsonNode entry = new ObjectMapper().readTree(header).get(tensor);
            DType dtype = DType.fromSafetensors(entry.get("dtype").asText());
            ByteBuffer bytes = ByteBuffer.allocate(values.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            for (float value : values) {
                switch (dtype) {
                    case F32 -> bytes.putFloat(value);
                    case F16 -> bytes.putShort(DType.floatToHalf(value));
                    case BF16 -> bytes.putShort(SafeTensorsWriter.toBf16(value));
                    default -> throw new IllegalArgumentException(tensor + " is " + dtype);
                }
            }
            f.seek(8 + headerLength + entry.get("data_offsets").get(0).asLong() + first * dtype.bytes());
            f.write(bytes.array());
        }
    }
}
