package io.moescore.arrow;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.arrow.compression.CommonsCompressionFactory;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BaseVariableWidthViewVector;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.LargeVarCharVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.compression.CompressionCodec;
import org.apache.arrow.vector.compression.CompressionUtil;
import org.apache.arrow.vector.compression.NoCompressionCodec;
import org.apache.arrow.vector.dictionary.Dictionary;
import org.apache.arrow.vector.dictionary.DictionaryProvider;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.ArrowStreamWriter;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.apache.arrow.vector.ipc.message.IpcOption;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.DictionaryEncoding;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Writes one table of token rows in the Arrow layouts other tools write (Polars' large lists and large strings,
 * fixed-size lists, string views, dictionaries, int32 ids, small record batches, compressed buffers), with Arrow
 * Java, so tests can hold every layout to the scores of plain {@code list<int32>}. Shared with spark-job's tests
 * (arrow-io's test jar).
 */
public final class ArrowLayouts {
    /** The tokens column's list kind and id width. */
    public enum Tokens { LIST_INT32, LIST_INT64, LARGE_LIST_INT32, LARGE_LIST_INT64, FIXED_SIZE_LIST_INT32 }

    /** A string or integer column's layout (ids, text). */
    public enum Strings { INT32, INT64, UTF8, LARGE_UTF8, STRING_VIEW, DICTIONARY_UTF8 }

    /** One row: its id (written as a number, or as "row-ID" for string layouts), tokens and text (null allowed). */
    public record Row(long id, int[] tokens, String text) {
    }

    /**
     * How to write the table.
     *
     * @param text      the text column's layout, or null for no text column
     * @param batchRows rows per record batch (the last one may hold fewer)
     * @param codec     NO_COMPRESSION, LZ4_FRAME or ZSTD
     * @param stream    the IPC stream format instead of the file format
     */
    public record Layout(Tokens tokens, Strings ids, Strings text, int batchRows,
                         CompressionUtil.CodecType codec, boolean stream) {
        public static Layout plain() {
            return new Layout(Tokens.LIST_INT32, Strings.INT64, null, Integer.MAX_VALUE,
                    CompressionUtil.CodecType.NO_COMPRESSION, false);
        }

        public Layout tokens(Tokens t) {
            return new Layout(t, ids, text, batchRows, codec, stream);
        }

        public Layout ids(Strings s) {
            return new Layout(tokens, s, text, batchRows, codec, stream);
        }

        public Layout text(Strings s) {
            return new Layout(tokens, ids, s, batchRows, codec, stream);
        }

        public Layout batchRows(int n) {
            return new Layout(tokens, ids, text, n, codec, stream);
        }

        public Layout codec(CompressionUtil.CodecType c) {
            return new Layout(tokens, ids, text, batchRows, c, stream);
        }

        public Layout stream(boolean s) {
            return new Layout(tokens, ids, text, batchRows, codec, s);
        }
    }

    private static final long DICTIONARY_ID = 1;

    private ArrowLayouts() {
    }

    /** Writes {@code rows} to {@code file} in {@code layout}. */
    public static void write(Path file, List<Row> rows, Layout layout) throws IOException {
        try (BufferAllocator allocator = new RootAllocator();
             Writing w = new Writing(allocator, rows, layout)) {
            w.write(file);
        }
    }

    /** The string a row's id or text takes in a string layout. */
    public static String idString(long id) {
        return "row-" + id;
    }

    private static final class Writing implements AutoCloseable {
        private final List<Row> rows;
        private final Layout layout;
        private final VectorSchemaRoot root;
        private final DictionaryProvider.MapDictionaryProvider dictionaries =
                new DictionaryProvider.MapDictionaryProvider();
        private final List<String> dictionaryValues = new ArrayList<>();
        private final int fixedSize;

        Writing(BufferAllocator allocator, List<Row> rows, Layout layout) {
            this.rows = rows;
            this.layout = layout;
            int size = -1;
            if (layout.tokens() == Tokens.FIXED_SIZE_LIST_INT32) {
                for (Row r : rows) {
                    if (r.tokens() != null) {
                        if (size >= 0 && size != r.tokens().length) {
                            throw new IllegalArgumentException("fixed_size_list needs rows of one length");
                        }
                        size = r.tokens().length;
                    }
                }
            }
            this.fixedSize = Math.max(size, 0);
            List<Field> fields = new ArrayList<>();
            fields.add(stringField(Columns.ID, layout.ids(), allocator));
            fields.add(tokensField());
            if (layout.text() != null) {
                fields.add(stringField(Columns.TEXT, layout.text(), allocator));
            }
            for (Row r : rows) {
                addDictionaryValue(idString(r.id()));
                if (r.text() != null) {
                    addDictionaryValue(r.text());
                }
            }
            fillDictionary();
            this.root = VectorSchemaRoot.create(new Schema(fields), allocator);
        }

        private void addDictionaryValue(String s) {
            if (!dictionaryValues.contains(s)) {
                dictionaryValues.add(s);
            }
        }

        private void fillDictionary() {
            Dictionary d = dictionaries.lookup(DICTIONARY_ID);
            if (d == null) {
                return;
            }
            VarCharVector values = (VarCharVector) d.getVector();
            values.allocateNew();
            for (int i = 0; i < dictionaryValues.size(); i++) {
                values.setSafe(i, dictionaryValues.get(i).getBytes(StandardCharsets.UTF_8));
            }
            values.setValueCount(dictionaryValues.size());
        }

        private Field stringField(String name, Strings s, BufferAllocator allocator) {
            ArrowType type = switch (s) {
                case INT32 -> new ArrowType.Int(32, true);
                case INT64 -> new ArrowType.Int(64, true);
                case UTF8 -> ArrowType.Utf8.INSTANCE;
                case LARGE_UTF8 -> ArrowType.LargeUtf8.INSTANCE;
                case STRING_VIEW -> ArrowType.Utf8View.INSTANCE;
                case DICTIONARY_UTF8 -> new ArrowType.Int(32, true);
            };
            DictionaryEncoding encoding = null;
            if (s == Strings.DICTIONARY_UTF8) {
                encoding = new DictionaryEncoding(DICTIONARY_ID, false, new ArrowType.Int(32, true));
                if (dictionaries.lookup(DICTIONARY_ID) == null) {
                    VarCharVector values = new VarCharVector("dictionary", allocator);
                    dictionaries.put(new Dictionary(values, encoding));
                }
            }
            return new Field(name, new FieldType(true, type, encoding), null);
        }

        private Field tokensField() {
            boolean wide = layout.tokens() == Tokens.LIST_INT64 || layout.tokens() == Tokens.LARGE_LIST_INT64;
            Field item = new Field("item", FieldType.nullable(new ArrowType.Int(wide ? 64 : 32, true)), null);
            ArrowType list = switch (layout.tokens()) {
                case LIST_INT32, LIST_INT64 -> ArrowType.List.INSTANCE;
                case LARGE_LIST_INT32, LARGE_LIST_INT64 -> ArrowType.LargeList.INSTANCE;
                case FIXED_SIZE_LIST_INT32 -> new ArrowType.FixedSizeList(fixedSize);
            };
            return new Field(Columns.TOKENS, FieldType.nullable(list), List.of(item));
        }

        void write(Path file) throws IOException {
            FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
            CompressionCodec.Factory codecs = layout.codec() == CompressionUtil.CodecType.NO_COMPRESSION
                    ? NoCompressionCodec.Factory.INSTANCE : CommonsCompressionFactory.INSTANCE;
            try (ArrowWriter writer = layout.stream()
                    ? new ArrowStreamWriter(root, dictionaries, out, IpcOption.DEFAULT,
                            codecs, layout.codec(), Optional.empty())
                    : new ArrowFileWriter(root, dictionaries, out, null, IpcOption.DEFAULT, codecs, layout.codec(),
                            Optional.empty())) {
                writer.start();
                for (int from = 0; from < rows.size() || from == 0; from += layout.batchRows()) {
                    fill(rows.subList(from, (int) Math.min(rows.size(), (long) from + layout.batchRows())));
                    writer.writeBatch();
                    if (rows.isEmpty()) {
                        break;
                    }
                }
                writer.end();
            }
        }

        private void fill(List<Row> batch) {
            root.allocateNew();
            for (int i = 0; i < batch.size(); i++) {
                Row r = batch.get(i);
                setString(root.getVector(Columns.ID), layout.ids(), i, r.id(), idString(r.id()));
                setTokens(root.getVector(Columns.TOKENS), i, r.tokens());
                if (layout.text() != null) {
                    setString(root.getVector(Columns.TEXT), layout.text(), i, r.id(), r.text());
                }
            }
            for (FieldVector v : root.getFieldVectors()) {
                v.setValueCount(batch.size());
            }
            root.setRowCount(batch.size());
        }

        private void setString(FieldVector v, Strings s, int i, long number, String value) {
            if (value == null) {
                v.setNull(i);
                return;
            }
            byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
            switch (s) {
                case INT32 -> ((IntVector) v).setSafe(i, Math.toIntExact(number));
                case INT64 -> ((BigIntVector) v).setSafe(i, number);
                case UTF8 -> ((VarCharVector) v).setSafe(i, bytes);
                case LARGE_UTF8 -> ((LargeVarCharVector) v).setSafe(i, bytes);
                case STRING_VIEW -> ((BaseVariableWidthViewVector) v).setSafe(i, bytes);
                case DICTIONARY_UTF8 -> ((BaseIntVector) v).setWithPossibleTruncate(i,
                        dictionaryValues.indexOf(value));
            }
        }

        private void setTokens(FieldVector v, int i, int[] tokens) {
            if (tokens == null) {
                v.setNull(i);
                return;
            }
            switch (layout.tokens()) {
                case LIST_INT32, LIST_INT64 -> {
                    ListVector list = (ListVector) v;
                    int start = list.startNewValue(i);
                    setIds(list.getDataVector(), start, tokens);
                    list.endValue(i, tokens.length);
                }
                case LARGE_LIST_INT32, LARGE_LIST_INT64 -> {
                    LargeListVector list = (LargeListVector) v;
                    long start = list.startNewValue(i);
                    setIds(list.getDataVector(), Math.toIntExact(start), tokens);
                    list.endValue(i, tokens.length);
                }
                case FIXED_SIZE_LIST_INT32 -> {
                    FixedSizeListVector list = (FixedSizeListVector) v;
                    int start = list.startNewValue(i);
                    setIds(list.getDataVector(), start, tokens);
                }
            }
        }

        private static void setIds(FieldVector data, int start, int[] tokens) {
            for (int j = 0; j < tokens.length; j++) {
                if (data instanceof BigIntVector wide) {
                    wide.setSafe(start + j, tokens[j]);
                } else {
                    ((IntVector) data).setSafe(start + j, tokens[j]);
                }
            }
            if (data.getValueCount() < start + tokens.length) {
                data.setValueCount(start + tokens.length);
            }
        }

        @Override
        public void close() {
            root.close();
            Dictionary d = dictionaries.lookup(DICTIONARY_ID);
            if (d != null) {
                d.getVector().close();
            }
        }
    }
}
