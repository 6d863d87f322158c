package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/** Test helper: overwrites one element of a tensor in a safetensors file in place (a broken copy of a model). */
public final class WeightEdits {
    private WeightEdits() {
    }

    /** Sets element {@code flatIndex} of {@code tensor} in the model directory's weights to {@code value}. */
    public static void set(Path modelDirectory, String tensor, long flatIndex, float value) throws IOException {
        try (Checkpoint ckpt = Checkpoint.open(modelDirectory)) {
            setInFile(ckpt.get(tensor).file(), tensor, flatIndex, value);
        }
    }

    /** Sets element {@code flatIndex} of {@code tensor} in one safetensors file to {@code value}. */
    public static void setInFile(Path file, String tensor, long flatIndex, float value) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            byte[] len = new byte[8];
            f.readFully(len);
            long headerLength = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] header = new byte[(int) headerLength];
            f.readFully(header);
            JsonNode entry = new ObjectMapper().readTree(header).get(tensor);
            DType dtype = DType.fromSafetensors(entry.get("dtype").asText());
            long at = 8 + headerLength + entry.get("data_offsets").get(0).asLong() + flatIndex * dtype.bytes();
            ByteBuffer bytes = ByteBuffer.allocate(dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            switch (dtype) {
                case F32 -> bytes.putFloat(value);
                case F16 -> bytes.putShort(DType.floatToHalf(value));
                case BF16 -> bytes.putShort((short) (Float.floatToRawIntBits(value) >>> 16));
                default -> throw new IllegalArgumentException(tensor + " is " + dtype);
            }
            f.seek(at);
            f.write(bytes.array());
        }
    }
}
