package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Unreadable files and wrong schemas fail with the file's (and column's) name, and leak nothing. */
class BadInputTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();  // a failure path that leaks fails the test
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    @Test
    void truncatedFile() throws IOException {
        byte[] whole = Files.readAllBytes(PyarrowFixturesTest.fixture("tokens_int64_ids.arrow"));
        for (int cut : new int[] {whole.length - 1, whole.length / 2, 12, 3}) {
            Path file = write("truncated-" + cut + ".arrow", Arrays.copyOf(whole, cut));
            String message = readFails(file).getMessage();
            assertTrue(message.startsWith(file.toString() + ": "), message);
        }
    }

    @Test
    void truncatedStreamFailsOnOpenOrOnTheBatchItLost() throws IOException {
        byte[] whole = Files.readAllBytes(PyarrowFixturesTest.fixture("tokens_utf8_ids.arrows"));
        for (int cut = 8; cut < whole.length - 8; cut += 40) {
            Path file = write("truncated-" + cut + ".arrows", Arrays.copyOf(whole, cut));
            String message = readFails(file).getMessage();
            assertTrue(message.startsWith(file.toString() + ": "), message);
        }
    }

    @Test
    void garbageIsNotArrow() throws IOException {
        Path file = write("garbage.arrow", "this is not arrow at all".getBytes());
        assertEquals(file + ": not an Arrow IPC file or stream (24 bytes, starting 74 68 69 73 20 69 73 20)",
                readFails(file).getMessage());

        Path parquet = PyarrowFixturesTest.fixture("tokens_int64_ids.parquet");
        assertTrue(readFails(parquet).getMessage().contains("not an Arrow IPC file or stream"));

        Path empty = write("empty.arrows", new byte[0]);
        assertEquals(empty + ": empty, not an Arrow IPC file or stream", readFails(empty).getMessage());
    }

    @Test
    void garbageAfterAStreamMarkerIsCaughtBeforeAllocating() throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(-1).putInt(0x7fff0000);
        Path file = write("huge.arrows", bytes.array());
        String message = readFails(file).getMessage();
        assertEquals(file + ": truncated or corrupt: the message claims 2147418112 bytes of metadata, 8 follow"
                + " (at byte 0 of 16)", message);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tokens_int64_ids.arrow", "tokens_utf8_ids.arrows"})
    void corruptBytesAnywhere(String fixture) throws IOException {
        byte[] whole = Files.readAllBytes(PyarrowFixturesTest.fixture(fixture));
        for (int at = 0; at < whole.length - 4; at += 4) {
            byte[] bad = whole.clone();
            for (int i = at; i < at + 4; i++) {
                bad[i] = (byte) 0xA5;
            }
            Path file = write("corrupt-" + at + "-" + fixture, bad);
            // Some bytes are only data (a token id changes), so a read may succeed; it must fail no other way.
            try (ArrowTokenReader in = ArrowTokenReader.open(file, allocator)) {
                while (in.loadNextBatch()) {
                    in.tokenBatch();
                }
            } catch (ArrowFileException | IllegalArgumentException e) {
                // IllegalArgumentException: a wrong schema (ArrowSchemaException), or offsets corrupt in the body
                assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
            }
            assertEquals(0, allocator.getAllocatedMemory(), "leaked after corrupting bytes " + at);
        }
    }

    @Test
    void missingTokensColumn() throws IOException {
        Path file = dir.resolve("no-tokens.arrow");
        writeSchemaOnly(file, new Schema(List.of(Field.nullable("id", new ArrowType.Int(64, true)),
                Field.nullable("toks", ArrowType.Utf8.INSTANCE))));
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class, () -> ArrowTokenReader.open(file, allocator));
        assertEquals(file + ": no column tokens (columns: id, toks)", e.getMessage());
    }

    @Test
    void wrongTokenType() throws IOException {
        Path file = dir.resolve("float-tokens.arrows");
        writeSchemaOnly(file, new Schema(List.of(Field.nullable("id", ArrowType.Utf8.INSTANCE),
                new Field("tokens", FieldType.nullable(ArrowType.List.INSTANCE),
                        List.of(Field.nullable("item", new ArrowType.FloatingPoint(
                                org.apache.arrow.vector.types.FloatingPointPrecision.SINGLE)))))));
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class, () -> ArrowTokenReader.open(file, allocator));
        assertEquals(file + ": column tokens has type list<float32>, expected list<int32> or list<int64> (or a "
                + "large_list or fixed_size_list of them)", e.getMessage());
    }

    @Test
    void missingFile() {
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> ArrowTokenReader.open(dir.resolve("absent.arrow"), allocator));
    }

    /**
     * A buffer length near Long.MAX_VALUE: offset + length wraps negative, which a plain sum check let through to
     * Arrow's slice, failing after it had read the body (512 bytes leaked; found by ArrowFuzzTest, cases of both
     * formats). Both fixtures, byte offsets the fuzz test hit.
     */
    @ParameterizedTest
    @ValueSource(strings = {"tokens_int64_ids.arrow@416", "tokens_utf8_ids.arrows@392"})
    void bufferLengthThatWrapsPastLongMaxFailsAtOpenAndLeaksNothing(String fixtureAt) throws IOException {
        String[] parts = fixtureAt.split("@");
        byte[] bytes = Files.readAllBytes(PyarrowFixturesTest.fixture(parts[0]));
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(Integer.parseInt(parts[1]), Long.MAX_VALUE);
        String message = readFails(write("wrapping-" + parts[0], bytes)).getMessage();
        assertTrue(message.contains("outside the") && message.contains("-byte body"), message);
    }

    private ArrowFileException readFails(Path file) {
        ArrowFileException e = assertThrows(ArrowFileException.class, () -> {
            try (ArrowTokenReader in = ArrowTokenReader.open(file, allocator)) {
                while (in.loadNextBatch()) {
                    in.tokenBatch();
                }
            }
        });
        assertEquals(0, allocator.getAllocatedMemory(), "leaked after failing on " + file);
        return e;
    }

    private Path write(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    private void writeSchemaOnly(Path file, Schema schema) throws IOException {
        try (VectorSchemaRoot root = VectorSchemaRoot.create(schema, allocator);
             ArrowWriter writer = IpcFormat.forFileName(file.toString()).newWriter(root,
                     FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE))) {
            writer.start();
            writer.end();
        }
    }
}
