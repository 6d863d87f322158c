package io.moescore.arrow;

import java.util.ArrayList;
import java.util.List;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BaseVariableWidthVector;
import org.apache.arrow.vector.BaseVariableWidthViewVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.ViewVarBinaryVector;
import org.apache.arrow.vector.ViewVarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.LargeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.dictionary.Dictionary;
import org.apache.arrow.vector.dictionary.DictionaryEncoder;
import org.apache.arrow.vector.dictionary.DictionaryProvider;
import org.apache.arrow.vector.ipc.message.ArrowFieldNode;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * The record batches of a file in the plain Arrow types that Spark and moescore's zero-copy views read, whatever
 * layout the writer chose. Polars, pyarrow and other tools write the same values in several layouts; each column
 * is rewritten once per batch as follows, and any other column is handed over as it is:
 *
 * <table>
 *   <caption>layouts and what they become</caption>
 *   <tr><th>written</th><th>read as</th><th>cost</th></tr>
 *   <tr><td>{@code large_list<T>}</td><td>{@code list<T>}</td><td>offsets narrowed (4 bytes a row); values moved,
 *       not copied</td></tr>
 *   <tr><td>{@code fixed_size_list<T>[n]}</td><td>{@code list<T>}</td><td>offsets written; values moved</td></tr>
 *   <tr><td>{@code string_view}, {@code binary_view}</td><td>{@code utf8}, {@code binary}</td><td>one copy</td></tr>
 *   <tr><td>{@code dictionary<V>} (any index type)</td><td>{@code V}, rewritten as above</td><td>one copy</td></tr>
 * </table>
 * Lists of lists are not rewritten: a list-like column whose values need rewriting is refused naming it. Every
 * other column (list&lt;int32&gt; tokens included) moves over without a copy. Owns its root; not the allocator.
 */
public final class NormalizedRoot implements AutoCloseable {
    private enum Kind { AS_IS, LARGE_LIST, FIXED_SIZE_LIST, VIEW, DICTIONARY }

    private final String source;
    private final BufferAllocator allocator;
    private final VectorSchemaRoot root;
    private final Kind[] kinds;
    private final Field[] rawFields;

    private NormalizedRoot(String source, BufferAllocator allocator, VectorSchemaRoot root, Kind[] kinds,
                           Field[] rawFields) {
        this.source = source;
        this.allocator = allocator;
        this.root = root;
        this.kinds = kinds;
        this.rawFields = rawFields;
    }

    /**
     * A root for batches of {@code raw}, whose dictionaries are in {@code dictionaries}.
     *
     * @throws ArrowSchemaException naming the source, column and type, for a column no layout above fits
     */
    public static NormalizedRoot create(Schema raw, DictionaryProvider dictionaries, BufferAllocator allocator,
                                        String source) {
        List<Field> fields = new ArrayList<>();
        Kind[] kinds = new Kind[raw.getFields().size()];
        for (int i = 0; i < kinds.length; i++) {
            Field f = raw.getFields().get(i);
            kinds[i] = kind(f);
            fields.add(normalized(f, dictionaries, source));
        }
        VectorSchemaRoot root = VectorSchemaRoot.create(new Schema(fields, raw.getCustomMetadata()), allocator);
        return new NormalizedRoot(source, allocator, root, kinds, raw.getFields().toArray(Field[]::new));
    }

    /** The schema of {@link #root()}: the plain types. */
    public Schema schema() {
        return root.getSchema();
    }

    /** The batch last loaded, in the plain types; replaced by the next {@link #load}. */
    public VectorSchemaRoot root() {
        return root;
    }

    /** Whether any column is rewritten (false: every batch moves over as it is). */
    public boolean rewrites() {
        for (Kind k : kinds) {
            if (k != Kind.AS_IS) {
                return true;
            }
        }
        return false;
    }

    /**
     * Moves the batch in {@code raw} (the reader's root, read in the raw schema) into {@link #root()}, rewriting
     * the columns that need it. {@code raw} is left empty; the reader refills it with its next batch.
     */
    public void load(VectorSchemaRoot raw, DictionaryProvider dictionaries) {
        int rows = raw.getRowCount();
        for (int i = 0; i < kinds.length; i++) {
            FieldVector from = raw.getVector(i);
            FieldVector to = root.getVector(i);
            try {
                move(kinds[i], from, to, dictionaries);
            } catch (RuntimeException e) {
                throw new IllegalStateException(source + ": column " + rawFields[i].getName() + " ("
                        + ArrowSchemas.typeName(rawFields[i]) + "): " + e.getMessage(), e);
            }
        }
        root.setRowCount(rows);
    }

    private void move(Kind kind, FieldVector from, FieldVector to, DictionaryProvider dictionaries) {
        switch (kind) {
            case AS_IS -> from.makeTransferPair(to).transfer();
            case LARGE_LIST -> fromLargeList((LargeListVector) from, (ListVector) to);
            case FIXED_SIZE_LIST -> fromFixedSizeList((FixedSizeListVector) from, (ListVector) to);
            case VIEW -> fromView((BaseVariableWidthViewVector) from, to);
            case DICTIONARY -> {
                Dictionary dictionary = dictionaries.lookup(from.getField().getDictionary().getId());
                try (ValueVector decoded = DictionaryEncoder.decode(from, dictionary, allocator)) {
                    move(kind(dictionary.getVector().getField()), (FieldVector) decoded, to, dictionaries);
                }
                from.clear();
            }
        }
    }

    /** The same list with 32-bit offsets; its values move over. */
    private void fromLargeList(LargeListVector from, ListVector to) {
        int rows = from.getValueCount();
        ArrowBuf wide = from.getOffsetBuffer();
        long end = rows == 0 ? 0 : wide.getLong((long) rows * Long.BYTES);
        if (end > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a record batch of " + rows + " rows holds " + end
                    + " list values, more than 2^31-1: write smaller record batches");
        }
        try (ArrowBuf offsets = allocator.buffer((long) (rows + 1) * Integer.BYTES)) {
            for (int i = 0; i <= rows; i++) {
                offsets.setInt((long) i * Integer.BYTES, rows == 0 ? 0 : (int) wide.getLong((long) i * Long.BYTES));
            }
            loadList(to, rows, from.getNullCount(), from.getValidityBuffer(), offsets);
        }
        from.getDataVector().makeTransferPair(to.getDataVector()).transfer();
        from.clear();
    }

    /** The same list with offsets 0, n, 2n, ...; its values move over. */
    private void fromFixedSizeList(FixedSizeListVector from, ListVector to) {
        int rows = from.getValueCount();
        int size = from.getListSize();
        if ((long) rows * size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a record batch of " + rows + " rows of " + size
                    + " values holds more than 2^31-1: write smaller record batches");
        }
        try (ArrowBuf offsets = allocator.buffer((long) (rows + 1) * Integer.BYTES)) {
            for (int i = 0; i <= rows; i++) {
                offsets.setInt((long) i * Integer.BYTES, i * size);
            }
            loadList(to, rows, from.getNullCount(), from.getValidityBuffer(), offsets);
        }
        from.getDataVector().makeTransferPair(to.getDataVector()).transfer();
        from.clear();
    }

    private static void loadList(ListVector to, int rows, int nullCount, ArrowBuf validity, ArrowBuf offsets) {
        // loadFieldBuffers takes its own references (and makes an all-valid bitmap when nothing is null)
        to.loadFieldBuffers(new ArrowFieldNode(rows, nullCount), List.of(validity, offsets));
    }

    /** utf8 (or binary) with the values copied out of the view buffers. */
    private static void fromView(BaseVariableWidthViewVector from, FieldVector to) {
        int rows = from.getValueCount();
        BaseVariableWidthVector target = (BaseVariableWidthVector) to;
        target.clear();
        target.allocateNew(rows);
        for (int i = 0; i < rows; i++) {
            if (!from.isNull(i)) {
                target.setSafe(i, from instanceof ViewVarCharVector chars ? chars.get(i)
                        : ((ViewVarBinaryVector) from).get(i));
            }
        }
        target.setValueCount(rows);
        from.clear();
    }

    private static Kind kind(Field f) {
        if (f.getDictionary() != null) {
            return Kind.DICTIONARY;
        }
        return switch (f.getType().getTypeID()) {
            case LargeList -> Kind.LARGE_LIST;
            case FixedSizeList -> Kind.FIXED_SIZE_LIST;
            case Utf8View, BinaryView -> Kind.VIEW;
            default -> Kind.AS_IS;
        };
    }

    /** The plain field for {@code f}; throws naming the column where no rewrite fits. */
    static Field normalized(Field f, DictionaryProvider dictionaries, String source) {
        Kind kind = kind(f);
        if (kind == Kind.DICTIONARY) {
            Dictionary dictionary = dictionaries == null ? null : dictionaries.lookup(f.getDictionary().getId());
            if (dictionary == null) {
                throw new ArrowSchemaException(source + ": column " + f.getName() + " is dictionary-encoded but "
                        + "the file holds no dictionary " + f.getDictionary().getId());
            }
            Field values = dictionary.getVector().getField();
            if (values.getDictionary() != null || kind(values) == Kind.LARGE_LIST
                    || kind(values) == Kind.FIXED_SIZE_LIST || !values.getChildren().isEmpty()) {
                throw unsupported(source, f, "dictionary<" + ArrowSchemas.typeName(values) + ">");
            }
            return normalized(new Field(f.getName(), new FieldType(f.isNullable(), values.getType(), null,
                    f.getMetadata()), values.getChildren()), dictionaries, source);
        }
        for (Field child : f.getChildren()) {
            if (child.getDictionary() != null || kind(child) != Kind.AS_IS || hasRewrites(child)) {
                throw unsupported(source, f, ArrowSchemas.typeName(f));
            }
        }
        FieldType type = new FieldType(f.isNullable(), switch (kind) {
            case LARGE_LIST, FIXED_SIZE_LIST -> ArrowType.List.INSTANCE;
            case VIEW -> f.getType().getTypeID() == ArrowType.ArrowTypeID.Utf8View ? ArrowType.Utf8.INSTANCE
                    : ArrowType.Binary.INSTANCE;
            default -> f.getType();
        }, null, f.getMetadata());
        return new Field(f.getName(), type, f.getChildren());
    }

    private static boolean hasRewrites(Field f) {
        for (Field child : f.getChildren()) {
            if (child.getDictionary() != null || kind(child) != Kind.AS_IS || hasRewrites(child)) {
                return true;
            }
        }
        return false;
    }

    private static ArrowSchemaException unsupported(String source, Field f, String type) {
        return new ArrowSchemaException(source + ": column " + f.getName() + " has type " + type
                + ", which moescore does not read (nested large, fixed-size, view or dictionary types)");
    }

    @Override
    public void close() {
        root.close();
    }
}
