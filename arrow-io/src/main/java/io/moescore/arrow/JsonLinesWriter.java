package io.moescore.arrow;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.SmallIntVector;
import org.apache.arrow.vector.TinyIntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

/**
 * Writes the rows of a {@link VectorSchemaRoot} as JSON lines, straight from its vectors (one pass, no object per
 * row): one object per row, its fields in the root's column order, null values written as {@code null}, lists as
 * arrays, each line ended by {@code \n}. Numbers and strings go through Jackson's generator as Spark's JSON writer
 * sends them (a double as {@code Double.toString}, a value that is not finite as a quoted string, strings escaped
 * by Jackson), so a Spark DataFrame of the same values written with {@code ignoreNullFields=false} has the same
 * bytes. Columns: int8/16/32/64, float32/64, bool, utf8 and lists of those. Owns the writer it is given.
 */
public final class JsonLinesWriter implements AutoCloseable {
    private static final JsonFactory FACTORY = new JsonFactory();

    private final JsonGenerator gen;

    /** Writes into {@code out} (closed by {@link #close()}). */
    public JsonLinesWriter(Writer out) throws IOException {
        this.gen = FACTORY.createGenerator(out);
        gen.setRootValueSeparator(null);
    }

    /** Writes every row the root holds. Throws naming the column whose type is not one of those listed above. */
    public void write(VectorSchemaRoot root) throws IOException {
        List<FieldVector> vectors = root.getFieldVectors();
        String[] names = new String[vectors.size()];
        ValueWriter[] writers = new ValueWriter[vectors.size()];
        for (int c = 0; c < names.length; c++) {
            names[c] = vectors.get(c).getName();
            writers[c] = writer(vectors.get(c), names[c]);
        }
        int rows = root.getRowCount();
        for (int r = 0; r < rows; r++) {
            gen.writeStartObject();
            for (int c = 0; c < names.length; c++) {
                gen.writeFieldName(names[c]);
                writers[c].write(r);
            }
            gen.writeEndObject();
            gen.writeRaw('\n');
        }
    }

    /** Writes value {@code i} of the vector it was made for (null as {@code null}). */
    private interface ValueWriter {
        void write(int i) throws IOException;
    }

    private ValueWriter writer(FieldVector v, String column) {
        ValueWriter value = valueWriter(v, column);
        return i -> {
            if (v.isNull(i)) {
                gen.writeNull();
            } else {
                value.write(i);
            }
        };
    }

    private ValueWriter valueWriter(FieldVector v, String column) {
        if (v instanceof BigIntVector b) {
            return i -> gen.writeNumber(b.get(i));
        } else if (v instanceof IntVector n) {
            return i -> gen.writeNumber(n.get(i));
        } else if (v instanceof SmallIntVector n) {
            return i -> gen.writeNumber(n.get(i));
        } else if (v instanceof TinyIntVector n) {
            return i -> gen.writeNumber(n.get(i));
        } else if (v instanceof Float8Vector d) {
            return i -> gen.writeNumber(d.get(i));
        } else if (v instanceof Float4Vector f) {
            return i -> gen.writeNumber(f.get(i));
        } else if (v instanceof BitVector b) {
            return i -> gen.writeBoolean(b.get(i) != 0);
        } else if (v instanceof VarCharVector s) {
            return i -> gen.writeString(new String(s.get(i), StandardCharsets.UTF_8));
        } else if (v instanceof ListVector list) {
            ValueWriter element = writer(list.getDataVector(), column);
            return i -> {
                int end = list.getElementEndIndex(i);
                gen.writeStartArray();
                for (int j = list.getElementStartIndex(i); j < end; j++) {
                    element.write(j);
                }
                gen.writeEndArray();
            };
        }
        throw new ArrowSchemaException("JSON lines: column " + column + " has type "
                + ArrowSchemas.typeName(v.getField()) + ", which this writer does not write");
    }

    /** Flushes and closes the output. */
    @Override
    public void close() throws IOException {
        gen.close();
    }
}
