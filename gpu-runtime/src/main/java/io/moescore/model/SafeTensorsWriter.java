package io.moescore.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Writes a safetensors file (F32, BF16, I32 or U8 tensors) from arrays: for the sparsify tool and benchmarks. */
public final class SafeTensorsWriter {
    private record Pending(String name, DType dtype, long[] shape, Object data) {
    }

    private final List<Pending> tensors = new ArrayList<>();
    private final Map<String, String> metadata;

    public SafeTensorsWriter(Map<String, String> metadata) {
        this.metadata = metadata;
    }

    public SafeTensorsWriter add(String name, DType dtype, float[] values, long... shape) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalArgumentException("float data is written as F32 or BF16, not " + dtype);
        }
        tensors.add(new Pending(name, dtype, shape, values));
        return this;
    }

    public SafeTensorsWriter addInts(String name, int[] values, long... shape) {
        tensors.add(new Pending(name, DType.I32, shape, values));
        return this;
    }

    public SafeTensorsWriter addBytes(String name, byte[] values, long... shape) {
        tensors.add(new Pending(name, DType.U8, shape, values));
        return this;
    }

    private static long length(Pending p) {
        if (p.data() instanceof byte[] b) {
            return b.length;
        }
        return p.data() instanceof int[] i ? i.length : ((float[]) p.data()).length;
    }

    public void write(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Pending p : tensors) {
            ObjectNode entry = header.putObject(p.name());
            entry.put("dtype", p.dtype().safetensorsName());
            var shape = entry.putArray("shape");
            for (long d : p.shape()) {
                shape.add(d);
            }
            long bytes = length(p) * p.dtype().bytes();
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
            out.write(length.array());
            out.write(h);
            ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Pending p : tensors) {
                for (long i = 0; i < length(p); i++) {
                    if (chunk.remaining() < 4) {
                        out.write(chunk.array(), 0, chunk.position());
                        chunk.clear();
                    }
                    if (p.dtype() == DType.U8) {
                        chunk.put(((byte[]) p.data())[(int) i]);
                    } else if (p.dtype() == DType.I32) {
                        chunk.putInt(((int[]) p.data())[(int) i]);
                    } else if (p.dtype() == DType.F32) {
                        chunk.putFloat(((float[]) p.data())[(int) i]);
                    } else {
                        chunk.putShort(toBf16(((float[]) p.data())[(int) i]));
                    }
                }
            }
            out.write(chunk.array(), 0, chunk.position());
        }
    }

    /** Round to nearest even; NaN stays NaN. */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) 0x7fc0;
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }
}
