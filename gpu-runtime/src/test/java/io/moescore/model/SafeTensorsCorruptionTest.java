package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Safetensors files built byte by byte: one valid file read back through {@link Checkpoint} and
 * {@link TensorRef#toFloats()}, then one corruption per test. Every corruption must surface as a
 * {@link ModelFormatException} naming the file (and the tensor where there is one), never as another
 * exception, an allocation of the declared size, or an arithmetic overflow.
 */
class SafeTensorsCorruptionTest {
    @TempDir
    Path dir;

    /** F32 [2, 2]: 1, -2.5, 3.25, 0. */
    static final float[] A_VALUES = {1f, -2.5f, 3.25f, 0f};
    /** F16 [3]: 1, -2, 0.5 (0x3C00, 0xC000, 0x3800). */
    static final short[] B_BITS = {(short) 0x3C00, (short) 0xC000, (short) 0x3800};
    static final float[] B_VALUES = {1f, -2f, 0.5f};
    /** BF16 [2]: 1.5, -3 (0x3FC0, 0xC040). */
    static final short[] C_BITS = {(short) 0x3FC0, (short) 0xC040};
    static final float[] C_VALUES = {1.5f, -3f};

    static final String A = "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}";
    static final String B = "\"b.f16\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]}";
    static final String C = "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]}";
    static final String VALID_HEADER = "{\"__metadata__\":{\"format\":\"pt\"}," + A + "," + B + "," + C + "}";

    /** The 26 data bytes that {@link #VALID_HEADER} describes. */
    static byte[] validData() {
        ByteBuffer data = ByteBuffer.allocate(26).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : A_VALUES) {
            data.putFloat(v);
        }
        for (short s : B_BITS) {
            data.putShort(s);
        }
        for (short s : C_BITS) {
            data.putShort(s);
        }
        return data.array();
    }

    /** 8-byte little-endian header length, the header, then the data. */
    static byte[] safetensors(long declaredHeaderLength, String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(declaredHeaderLength).put(h).put(data);
        return out.array();
    }

    static byte[] safetensors(String header, byte[] data) {
        return safetensors(header.getBytes(StandardCharsets.UTF_8).length, header, data);
    }

    Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    /** A file whose header lists the given entries (JSON members, no braces) over the valid 26 data bytes. */
    Path withEntries(String... members) throws IOException {
        return write("bad.safetensors", safetensors("{" + String.join(",", members) + "}", validData()));
    }

    static ModelFormatException assertFormatError(Executable open, Path file, String... mustContain) {
        ModelFormatException e = assertThrows(ModelFormatException.class, open);
        String m = e.getMessage();
        assertTrue(m != null && m.contains(file.toString()), () -> "message should name " + file + ": " + m);
        for (String s : mustContain) {
            assertTrue(m.contains(s), () -> "message should contain '" + s + "': " + m);
        }
        return e;
    }

    static ModelFormatException assertOpenFails(Path file, String... mustContain) {
        return assertFormatError(() -> SafeTensorsFile.open(file).close(), file, mustContain);
    }

    // ---------------------------------------------------------------------------------------------- valid

    @Test
    void validFileReadsBackF32F16AndBf16() throws IOException {
        write(Checkpoint.SINGLE_FILE, safetensors(VALID_HEADER, validData()));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            TensorRef a = ckpt.get("a.f32", 2, 2);
            assertEquals(DType.F32, a.dtype());
            assertArrayEquals(new long[] {2, 2}, a.shape());
            assertEquals(4, a.elementCount());
            assertArrayEquals(A_VALUES, a.toFloats());
            assertArrayEquals(new float[] {-2.5f, 3.25f}, a.toFloats(1, 2));

            TensorRef b = ckpt.get("b.f16", 3);
            assertEquals(DType.F16, b.dtype());
            assertArrayEquals(B_VALUES, b.toFloats());

            TensorRef c = ckpt.get("c.bf16", 2);
            assertEquals(DType.BF16, c.dtype());
            assertArrayEquals(C_VALUES, c.toFloats());

            assertEquals(dir.resolve(Checkpoint.SINGLE_FILE), a.file());
            assertTrue(!ckpt.has("__metadata__"), "__metadata__ is not a tensor");
            assertEquals(3, count(ckpt.tensorNames()));
        }
        try (SafeTensorsFile f = SafeTensorsFile.open(dir.resolve(Checkpoint.SINGLE_FILE))) {
            assertEquals(Arrays.asList("a.f32", "b.f16", "c.bf16"), f.entries().keySet().stream().toList());
            SafeTensorsFile.Entry c = f.entries().get("c.bf16");
            assertEquals(22, c.begin());
            assertEquals(26, c.end());
        }
    }

    @Test
    void checkpointShapeMismatchNamesTensorAndShapes() throws IOException {
        Path file = write(Checkpoint.SINGLE_FILE, safetensors(VALID_HEADER, validData()));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertFormatError(() -> ckpt.get("a.f32", 4), file, "a.f32", "[2, 2]", "[4]");
            assertFormatError(() -> ckpt.get("missing.weight"), dir, "missing.weight");
        }
    }

    private static int count(Iterable<String> names) {
        int n = 0;
        for (String ignored : names) {
            n++;
        }
        return n;
    }

    // ------------------------------------------------------------------------------- framing corruptions

    @Test
    void fileShorterThanEightBytes() throws IOException {
        Path file = write("short.safetensors", new byte[] {1, 2, 3, 4, 5});
        assertOpenFails(file, "5 bytes");
    }

    @Test
    void emptyFile() throws IOException {
        Path file = write("empty.safetensors", new byte[0]);
        assertOpenFails(file);
    }

    @Test
    void truncatedDataOffsetsRunPastTheEnd() throws IOException {
        byte[] full = safetensors(VALID_HEADER, validData());
        Path file = write("truncated.safetensors", Arrays.copyOf(full, full.length - 3));
        // c.bf16 ends at data byte 26 but only 23 data bytes remain.
        assertOpenFails(file, "c.bf16", "26");
    }

    @Test
    void truncatedInsideHeader() throws IOException {
        byte[] full = safetensors(VALID_HEADER, validData());
        Path file = write("truncated-header.safetensors", Arrays.copyOf(full, 20));
        assertOpenFails(file);
    }

    @Test
    void headerLengthPastEndOfFile() throws IOException {
        byte[] h = VALID_HEADER.getBytes(StandardCharsets.UTF_8);
        long tooLong = h.length + validData().length + 1;
        Path file = write("long-header.safetensors", safetensors(tooLong, VALID_HEADER, validData()));
        // the length field is the file's first 8 bytes: content, never printed (looked for outside the file's
        // path: a random temp folder name may hold the digits, as junit-14666538032399340186 held 239)
        String m = assertOpenFails(file, "header length").getMessage();
        assertTrue(!m.replace(file.toString(), "FILE").contains(Long.toString(tooLong)), m);
    }

    @Test
    void headerLengthAbsurdlyHugeDoesNotAllocate() throws IOException {
        long huge = 1L << 62;
        Path file = write("huge-header.safetensors", safetensors(huge, VALID_HEADER, validData()));
        String m = assertOpenFails(file, "header length").getMessage();
        assertTrue(!m.contains(Long.toString(huge)), m);
    }

    @Test
    void headerLengthNegative() throws IOException {
        // 0xFFFFFFFFFFFFFFFF: an unsigned reader sees 2^64 - 1, a signed one -1; neither may be allocated.
        Path file = write("negative-header.safetensors", safetensors(-1L, VALID_HEADER, validData()));
        assertOpenFails(file);
    }

    @Test
    void headerLengthJustOverIntMax() throws IOException {
        long n = (long) Integer.MAX_VALUE + 2; // would wrap negative if cast to int before checking
        Path file = write("int-header.safetensors", safetensors(n, VALID_HEADER, validData()));
        assertOpenFails(file);
    }

    @Test
    void headerNotJson() throws IOException {
        Path file = write("notjson.safetensors", safetensors("{\"a.f32\": {dtype: F32", validData()));
        assertOpenFails(file, "JSON");
    }

    @Test
    void headerIsJsonArray() throws IOException {
        Path file = write("array.safetensors", safetensors("[" + "{" + A + "}" + "]", validData()));
        assertOpenFails(file, "not a JSON object");
    }

    @Test
    void headerEntryNotAnObject() throws IOException {
        Path file = withEntries("\"a.f32\":[0,16]");
        assertOpenFails(file, "a.f32");
    }

    // ------------------------------------------------------------------------------- offset corruptions

    @Test
    void overlappingOffsets() throws IOException {
        // b.f16 moved to [8, 14): inside a.f32's [0, 16).
        Path file = withEntries(A, "\"b.f16\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[8,14]}", C);
        assertOpenFails(file, "a.f32", "b.f16", "overlap");
    }

    @Test
    void identicalOffsetsOverlap() throws IOException {
        Path file = withEntries(C, "\"d.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22,26]}");
        assertOpenFails(file, "c.bf16", "d.bf16", "overlap");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        Path file = withEntries(A, B, "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[1000,1004]}");
        assertOpenFails(file, "c.bf16", "1004");
    }

    @Test
    void offsetsNegative() throws IOException {
        Path file = withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[-4,0]}");
        assertOpenFails(file, "c.bf16");
    }

    @Test
    void offsetsHugeDoNotOverflow() throws IOException {
        long max = Long.MAX_VALUE;
        Path file = withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[" + (max - 1) + ","
                + max + "]}");
        assertOpenFails(file, "c.bf16");
    }

    @Test
    void offsetsBeyondLong() throws IOException {
        Path file = withEntries(
                "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,18446744073709551620]}");
        assertOpenFails(file, "c.bf16");
    }

    @Test
    void endBeforeBegin() throws IOException {
        Path file = withEntries(A, B, "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[26,22]}");
        assertOpenFails(file, "c.bf16");
    }

    @Test
    void offsetsNotAPairOfIntegers() throws IOException {
        assertOpenFails(withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22]}"),
                "c.bf16", "data_offsets");
        assertOpenFails(withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[22.0,26]}"),
                "c.bf16", "data_offsets");
        assertOpenFails(withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":\"22-26\"}"),
                "c.bf16", "data_offsets");
        assertOpenFails(withEntries("\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2]}"), "c.bf16", "data_offsets");
    }

    @Test
    void byteSpanNotMatchingShapeTimesDtype() throws IOException {
        // BF16 [3] needs 6 bytes; [22, 26) holds 4.
        Path file = withEntries(A, B, "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[22,26]}");
        assertOpenFails(file, "c.bf16", "4 bytes", "6");
    }

    @Test
    void byteSpanMatchingElementCountButNotDtype() throws IOException {
        // 4 F32 elements over 8 bytes: right count for BF16, wrong for F32.
        Path file = withEntries("\"a.f32\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}");
        assertOpenFails(file, "a.f32", "8 bytes", "16");
    }

    // -------------------------------------------------------------------------------- shape corruptions

    @Test
    void negativeShapeDimension() throws IOException {
        Path file = withEntries("\"a.f32\":{\"dtype\":\"F32\",\"shape\":[-2,-2],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void nonIntegerShapeDimension() throws IOException {
        Path file = withEntries("\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2.5,2],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void stringShapeDimension() throws IOException {
        Path file = withEntries("\"a.f32\":{\"dtype\":\"F32\",\"shape\":[\"2\",2],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void shapeMissingOrNotAList() throws IOException {
        assertOpenFails(withEntries("\"a.f32\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}"), "a.f32", "shape");
        assertOpenFails(withEntries("\"a.f32\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}"),
                "a.f32", "shape");
    }

    @Test
    void hugeShapeProductOverflowsLong() throws IOException {
        // 2^32 * 2^32 * 4 = 2^66 elements: a naive long product wraps to 0, which would "match" an empty span.
        Path file = withEntries(
                "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void hugeShapeProductWrappingToMatchTheSpan() throws IOException {
        // 4 * (2^62 + 1) = 2^64 + 4 wraps to 4 elements in a naive long product: 16 F32 bytes, exactly the span.
        // The first dimension is small, so only the overflow check (not the "more elements than bytes" bound on
        // a single dimension) can catch it.
        Path file = withEntries(
                "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[4,4611686018427387905],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void hugeShapeProductWrappingNegative() throws IOException {
        // 2 * (2^63 - 1) wraps to -2 in a naive long product.
        Path file = withEntries(
                "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void shapeDimensionBeyondLong() throws IOException {
        Path file = withEntries(
                "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    @Test
    void shapeDimensionLongMax() throws IOException {
        Path file = withEntries(
                "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "shape");
    }

    // -------------------------------------------------------------------------------- dtype corruptions

    @Test
    void unknownDtype() throws IOException {
        Path file = withEntries("\"a.f32\":{\"dtype\":\"Q7\",\"shape\":[2,2],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.f32", "Q7");
    }

    @Test
    void knownButUnsupportedDtype() throws IOException {
        Path file = withEntries("\"a.i8\":{\"dtype\":\"I8\",\"shape\":[16],\"data_offsets\":[0,16]}");
        assertOpenFails(file, "a.i8", "I8");
    }

    @Test
    void missingOrNonTextDtype() throws IOException {
        assertOpenFails(withEntries("\"a.f32\":{\"shape\":[2,2],\"data_offsets\":[0,16]}"), "a.f32", "dtype");
        assertOpenFails(withEntries("\"a.f32\":{\"dtype\":4,\"shape\":[2,2],\"data_offsets\":[0,16]}"),
                "a.f32", "dtype");
    }

    // ---------------------------------------------------------------------------------- sharded indexes

    Path writeIndex(String weightMapMembers) throws IOException {
        Path index = dir.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(index, "{\"metadata\":{\"total_size\":26},\"weight_map\":{" + weightMapMembers + "}}");
        return index;
    }

    /** shard-1 holds a.f32 and b.f16; shard-2 holds c.bf16. */
    void writeTwoShards() throws IOException {
        byte[] data = validData();
        write("shard-1.safetensors", safetensors("{" + A + "," + B + "}", Arrays.copyOf(data, 22)));
        write("shard-2.safetensors", safetensors(
                "{\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
                Arrays.copyOfRange(data, 22, 26)));
    }

    @Test
    void validShardedIndexReadsBack() throws IOException {
        writeTwoShards();
        writeIndex("\"a.f32\":\"shard-1.safetensors\",\"b.f16\":\"shard-1.safetensors\","
                + "\"c.bf16\":\"shard-2.safetensors\"");
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertArrayEquals(A_VALUES, ckpt.get("a.f32").toFloats());
            assertArrayEquals(B_VALUES, ckpt.get("b.f16").toFloats());
            assertArrayEquals(C_VALUES, ckpt.get("c.bf16").toFloats());
            assertEquals(dir.resolve("shard-2.safetensors"), ckpt.get("c.bf16").file());
        }
    }

    @Test
    void indexNamesTensorInShardThatLacksIt() throws IOException {
        writeTwoShards();
        Path index = writeIndex("\"a.f32\":\"shard-1.safetensors\",\"b.f16\":\"shard-1.safetensors\","
                + "\"c.bf16\":\"shard-1.safetensors\"");
        ModelFormatException e = assertFormatError(() -> Checkpoint.open(dir).close(), index, "c.bf16");
        assertTrue(e.getMessage().contains(dir.resolve("shard-1.safetensors").toString()), e.getMessage());
    }

    @Test
    void indexNamesMissingShardFile() throws IOException {
        writeTwoShards();
        writeIndex("\"a.f32\":\"shard-1.safetensors\",\"c.bf16\":\"shard-9.safetensors\"");
        assertFormatError(() -> Checkpoint.open(dir).close(), dir.resolve("shard-9.safetensors"));
    }

    @Test
    void indexShardPathEscapesDirectory() throws IOException {
        writeTwoShards();
        // A perfectly valid file sits just outside: only the path check can refuse it.
        Files.write(dir.resolve("x.safetensors"), safetensors("{" + A + "}", Arrays.copyOf(validData(), 16)));
        Path model = Files.createDirectory(dir.resolve("model"));
        Files.copy(dir.resolve("shard-1.safetensors"), model.resolve("shard-1.safetensors"));
        Path index = model.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(index, "{\"weight_map\":{\"a.f32\":\"../x.safetensors\","
                + "\"b.f16\":\"shard-1.safetensors\"}}");
        assertFormatError(() -> Checkpoint.open(model).close(), index, "../x.safetensors", "outside");
    }

    @Test
    void indexShardPathAbsolute() throws IOException {
        Files.write(dir.resolve("x.safetensors"), safetensors("{" + A + "}", Arrays.copyOf(validData(), 16)));
        Path model = Files.createDirectory(dir.resolve("model"));
        Path index = model.resolve(Checkpoint.INDEX_FILE);
        String abs = dir.resolve("x.safetensors").toAbsolutePath().toString().replace("\\", "\\\\");
        Files.writeString(index, "{\"weight_map\":{\"a.f32\":\"" + abs + "\"}}");
        assertFormatError(() -> Checkpoint.open(model).close(), index, "outside");
    }

    @Test
    void indexWithoutWeightMap() throws IOException {
        writeTwoShards();
        Path index = dir.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(index, "{\"metadata\":{}}");
        assertFormatError(() -> Checkpoint.open(dir).close(), index, "weight_map");
    }

    @Test
    void indexNotJson() throws IOException {
        writeTwoShards();
        Path index = dir.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(index, "{\"weight_map\": {");
        assertFormatError(() -> Checkpoint.open(dir).close(), index);
    }

    @Test
    void indexMapsTensorToNonString() throws IOException {
        writeTwoShards();
        Path index = writeIndex("\"a.f32\":1");
        assertFormatError(() -> Checkpoint.open(dir).close(), index, "a.f32");
    }

    @Test
    void directoryWithoutWeights() {
        assertFormatError(() -> Checkpoint.open(dir).close(), dir, Checkpoint.SINGLE_FILE);
    }

    @Test
    void corruptShardIsNamed() throws IOException {
        writeTwoShards();
        Path bad = write("shard-2.safetensors", new byte[] {1, 2, 3});
        writeIndex("\"a.f32\":\"shard-1.safetensors\",\"c.bf16\":\"shard-2.safetensors\"");
        assertFormatError(() -> Checkpoint.open(dir).close(), bad);
    }
}
