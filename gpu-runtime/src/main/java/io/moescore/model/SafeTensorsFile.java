package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the data. The header is validated completely on open (every range inside the
 * file, no overlaps, sizes matching shapes), so a bad file fails here with its name, never later in a kernel.
 * Tensor data is memory-mapped on demand.
 */
public final class SafeTensorsFile implements AutoCloseable {
    /** Headers larger than this are refused rather than read into memory (real ones are well under 10 MB). */
    static final long MAX_HEADER_BYTES = 100L << 20;

    /** A tensor's entry in the header. {@code begin} and {@code end} are offsets in the data section. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;

    private SafeTensorsFile(Path path, FileChannel channel, long dataStart, Map<String, Entry> entries) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.entries = entries;
    }

    public static SafeTensorsFile open(Path path) {
        ModelDirectory.requireRegularFile(path);
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new ModelFormatException("cannot open weight file " + path + ": " + e, e);
        }
        try {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw bad(path, "is " + fileSize + " bytes long, shorter than the 8-byte header length");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0);
            long headerLength = lengthBytes.getLong(0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || headerLength > fileSize - 8) {
                // the length field is the file's first 8 bytes: never printed (the file may be anything)
                throw bad(path, "does not start with a safetensors header length that fits the file's "
                        + fileSize + " bytes (at most " + MAX_HEADER_BYTES + " bytes of header): not a safetensors"
                        + " file, or a truncated one");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            readFully(channel, header, 8);
            long dataStart = 8 + headerLength;
            Map<String, Entry> entries = parseHeader(path, new String(header.array(), StandardCharsets.UTF_8),
                    fileSize - dataStart);
            return new SafeTensorsFile(path, channel, dataStart, entries);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new ModelFormatException("cannot read weight file " + path + ": " + e, e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    private static Map<String, Entry> parseHeader(Path path, String text, long dataLength) {
        JsonNode root = ModelJson.parse(text, "weight file " + path + " has a header that");
        if (root == null || !root.isObject()) {
            throw bad(path, "has a header that is not a JSON object");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String name = field.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            entries.put(name, parseEntry(path, name, field.getValue(), dataLength));
        }
        checkNoOverlap(path, entries.values());
        return Collections.unmodifiableMap(entries);
    }

    private static Entry parseEntry(Path path, String name, JsonNode node, long dataLength) {
        String where = "tensor " + name;
        if (!node.isObject()) {
            throw bad(path, where + ": header entry is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw bad(path, where + ": no dtype");
        }
        DType dtype = DType.fromSafetensors(dtypeNode.asText());
        if (dtype == null) {
            throw bad(path, where + ": dtype " + dtypeNode.asText() + " is not supported (F32, F16 and BF16 are)");
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray() || shapeNode.size() > 8) {
            throw bad(path, where + ": shape is missing or not a list of at most 8 dimensions");
        }
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw bad(path, where + ": shape " + shapeNode + " has a dimension that is not a non-negative integer");
            }
            shape[i] = d.asLong();
            elements = Math.multiplyHigh(elements, shape[i]) != 0 ? -1 : elements * shape[i];
            if (elements < 0 || elements > dataLength) {
                throw bad(path, where + ": shape " + shapeNode + " has more elements than the file holds bytes");
            }
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2
                || !offsets.get(0).isIntegralNumber() || !offsets.get(1).isIntegralNumber()
                || !offsets.get(0).canConvertToLong() || !offsets.get(1).canConvertToLong()) {
            throw bad(path, where + ": data_offsets is not a pair of integers");
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLength) {
            throw bad(path, where + ": data_offsets [" + begin + ", " + end + "] lie outside the data section of "
                    + dataLength + " bytes");
        }
        if (end - begin != elements * dtype.bytes()) {
            throw bad(path, where + ": data_offsets span " + (end - begin) + " bytes but shape " + shapeNode
                    + " of " + dtype.safetensorsName() + " needs " + elements * dtype.bytes());
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static void checkNoOverlap(Path path, Iterable<Entry> all) {
        List<Entry> sorted = new ArrayList<>();
        all.forEach(sorted::add);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry previous = sorted.get(i - 1);
            Entry current = sorted.get(i);
            if (current.begin() < previous.end()) {
                throw bad(path, "tensors " + previous.name() + " and " + current.name() + " overlap (bytes ["
                        + previous.begin() + ", " + previous.end() + ") and [" + current.begin() + ", "
                        + current.end() + "))");
            }
        }
    }

    public Path path() {
        return path;
    }

    public Map<String, Entry> entries() {
        return entries;
    }

    /**
     * Maps {@code length} bytes of a tensor's data starting {@code offset} bytes into it, little-endian.
     * A single mapping is limited to 2 GiB; callers slice larger tensors (e.g. fused experts, per expert).
     */
    public ByteBuffer map(Entry entry, long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > entry.end() - entry.begin()) {
            throw new IllegalArgumentException("range [" + offset + ", " + (offset + length) + ") outside tensor "
                    + entry.name() + " of " + (entry.end() - entry.begin()) + " bytes");
        }
        if (length > Integer.MAX_VALUE) {
            throw new ModelFormatException("tensor " + entry.name() + " in " + path + ": a slice of " + length
                    + " bytes exceeds the 2 GiB a single mapping allows");
        }
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + entry.begin() + offset, length)
                    .order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException("cannot map tensor " + entry.name() + " of " + path + ": " + e, e);
        }
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position + buffer.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a read-only channel loses nothing
        }
    }

    private static ModelFormatException bad(Path path, String what) {
        return new ModelFormatException("weight file " + path + " " + what);
    }
}
