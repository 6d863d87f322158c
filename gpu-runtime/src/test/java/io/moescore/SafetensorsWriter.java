package io.moescore;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes F32 safetensors files for tests: name -> (shape, values). */
public final class SafetensorsWriter {
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Map<String, float[]> values = new LinkedHashMap<>();

    public SafetensorsWriter add(String name, float[] data, long... shape) {
        shapes.put(name, shape);
        values.put(name, data);
        return this;
    }

    public void write(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (String name : shapes.keySet()) {
            ObjectNode entry = header.putObject(name);
            entry.put("dtype", "F32");
            var shape = entry.putArray("shape");
            for (long d : shapes.get(name)) {
                shape.add(d);
            }
            long bytes = values.get(name).length * 4L;
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate((int) (8 + h.length + offset)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length).put(h);
        for (float[] v : values.values()) {
            for (float f : v) {
                out.putFloat(f);
            }
        }
        Files.write(file, out.array());
    }
}
