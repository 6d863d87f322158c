package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.compression.CompressionUtil;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.moescore.arrow.ArrowLayouts.Layout;
import io.moescore.arrow.ArrowLayouts.Row;
import io.moescore.arrow.ArrowLayouts.Strings;
import io.moescore.arrow.ArrowLayouts.Tokens;
import io.moescore.batch.TokenBatch;

/** Every layout of ArrowLayouts reads back as the same plain list&lt;int32&gt; tokens, ids and text, leak-free. */
class NormalizedRootTest {
    @TempDir
    Path dir;
    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    static List<Row> rows(long seed, int n, boolean fixedLength) {
        Random random = new Random(seed);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] tokens = new int[fixedLength ? 5 : random.nextInt(12)];
            for (int j = 0; j < tokens.length; j++) {
                tokens[j] = random.nextInt(4096);
            }
            rows.add(new Row(100 + i, i % 7 == 3 ? null : tokens, i % 5 == 2 ? null : "text " + i));
        }
        return rows;
    }

    @Test
    void everyLayoutReadsAsThePlainOne() throws IOException {
        long seed = System.nanoTime();
        System.out.println("NormalizedRootTest seed " + seed);
        List<Layout> layouts = new ArrayList<>();
        for (Tokens t : Tokens.values()) {
            layouts.add(Layout.plain().tokens(t));
        }
        for (Strings s : Strings.values()) {
            layouts.add(Layout.plain().ids(s).text(s == Strings.INT32 || s == Strings.INT64 ? Strings.UTF8 : s));
        }
        for (CompressionUtil.CodecType c : List.of(CompressionUtil.CodecType.LZ4_FRAME,
                CompressionUtil.CodecType.ZSTD)) {
            layouts.add(Layout.plain().codec(c).text(Strings.LARGE_UTF8));
            layouts.add(Layout.plain().codec(c).stream(true).tokens(Tokens.LARGE_LIST_INT64));
        }
        layouts.add(Layout.plain().batchRows(1).stream(true).ids(Strings.DICTIONARY_UTF8));
        layouts.add(Layout.plain().batchRows(3).tokens(Tokens.LARGE_LIST_INT32).text(Strings.STRING_VIEW));
        for (Layout layout : layouts) {
            boolean fixed = layout.tokens() == Tokens.FIXED_SIZE_LIST_INT32;
            List<Row> rows = rows(seed, 23, fixed);
            Path file = dir.resolve("t" + layouts.indexOf(layout) + (layout.stream() ? ".arrows" : ".arrow"));
            ArrowLayouts.write(file, rows, layout);
            List<Row> read = readAll(file);
            assertEquals(rows.size(), read.size(), layout.toString());
            for (int i = 0; i < rows.size(); i++) {
                Row want = rows.get(i);
                Row got = read.get(i);
                assertEquals(want.id(), got.id(), layout + " row " + i);
                assertArrayEquals(want.tokens() == null ? new int[0] : want.tokens(), got.tokens(),
                        layout + " row " + i);
                if (layout.text() != null) {
                    assertEquals(want.text(), got.text(), layout + " row " + i);
                }
            }
        }
    }

    /** Reads ids (numbers, or "row-N" strings), tokens (null lists empty) and text through ArrowIpcReader. */
    private List<Row> readAll(Path file) throws IOException {
        List<Row> rows = new ArrayList<>();
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            for (Field f : in.schema().getFields()) {
                assertTrue(!(f.getType() instanceof ArrowType.LargeList) && f.getDictionary() == null
                        && !(f.getType() instanceof ArrowType.Utf8View), f.toString());
            }
            while (in.loadNextBatch()) {
                VectorSchemaRoot root = in.root();
                ListVector tokens = assertInstanceOf(ListVector.class, root.getVector(Columns.TOKENS));
                TokenBatch batch = ArrowTokenBatches.view(tokens);
                FieldVector ids = root.getVector(Columns.ID);
                FieldVector text = root.getVector(Columns.TEXT);
                for (int i = 0; i < root.getRowCount(); i++) {
                    Object id = ids.getObject(i);
                    long number = id instanceof Number n ? n.longValue()
                            : Long.parseLong(id.toString().substring("row-".length()));
                    int[] t = new int[batch.length(i)];
                    batch.copySequence(i, t, 0);
                    Object s = text == null ? null : text.getObject(i);
                    rows.add(new Row(number, t, s == null ? null : s.toString()));
                }
            }
        }
        return rows;
    }

    @Test
    void int32TokensAreReadInPlace() throws IOException {
        Path file = dir.resolve("plain.arrow");
        ArrowLayouts.write(file, rows(1, 9, false), Layout.plain());
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            assertTrue(in.loadNextBatch());
            ListVector tokens = (ListVector) in.root().getVector(Columns.TOKENS);
            TokenBatch batch = ArrowTokenBatches.view(tokens);
            IntVector data = (IntVector) tokens.getDataVector();
            int s = 1;
            data.set(tokens.getElementStartIndex(s), 777);
            assertEquals(777, batch.token(s, 0), "the batch reads the vector's own buffer");
        }
    }

    @Test
    void nestedLayoutsAreRefusedNamingTheColumn() throws IOException {
        Field inner = new Field("item", FieldType.nullable(ArrowType.LargeList.INSTANCE),
                List.of(Field.nullable("item", new ArrowType.Int(32, true))));
        Schema schema = new Schema(List.of(Field.nullable(Columns.ID, new ArrowType.Int(64, true)),
                new Field(Columns.TOKENS, FieldType.nullable(ArrowType.List.INSTANCE), List.of(inner))));
        Path file = dir.resolve("nested.arrow");
        try (VectorSchemaRoot root = VectorSchemaRoot.create(schema, allocator);
             ArrowFileWriter w = new ArrowFileWriter(root, null, FileChannel.open(file, StandardOpenOption.CREATE,
                     StandardOpenOption.WRITE))) {
            w.start();
            w.end();
        }
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class, () -> ArrowIpcReader.open(file, allocator));
        assertTrue(e.getMessage().contains("column tokens has type list<large_list<int32>>"), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void int64TokensOutsideInt32AreRefusedNamingTheRow() throws IOException {
        Path file = dir.resolve("wide.arrow");
        ArrowLayouts.write(file, List.of(new Row(1, new int[] {1, 2}, null)), Layout.plain()
                .tokens(Tokens.LIST_INT64));
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            assertTrue(in.loadNextBatch());
            ListVector tokens = (ListVector) in.root().getVector(Columns.TOKENS);
            ((org.apache.arrow.vector.BigIntVector) tokens.getDataVector()).set(1, 1L << 40);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ArrowTokenBatches.view(tokens));
            assertTrue(e.getMessage().contains("row 0: token id 1099511627776 at position 1"), e.getMessage());
        }
    }
}
