package io.moescore.spark;

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
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.hadoop.api.WriteSupport;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.io.api.RecordConsumer;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.Type;
import org.apache.spark.sql.execution.datasources.parquet.ParquetWriteSupport;

/**
 * Parquet records straight from the job's output vectors ({@link OutputVectors}): a record is a row number of the
 * root, its values read from the Arrow vectors and handed to parquet-mr's record consumer in the order and shape
 * Spark's own {@link ParquetWriteSupport} gives them (null fields skipped; lists as the schema's LIST groups, three-
 * level or legacy two-level). The file's schema and key-value metadata are Spark's: {@link #init} is Spark's (it
 * reads the schema {@code ParquetFileFormat.prepareWrite} put into the conf), so Spark reads the file back with the
 * same column types and nullability as one its writer made.
 */
final class ParquetVectorWriteSupport extends WriteSupport<Integer> {
    private final VectorSchemaRoot root;
    private RecordConsumer consumer;
    private MessageType schema;
    private ValueWriter[] writers;

    /** Hands value {@code i} of the vector it was made for to the record consumer (made once per column). */
    private interface ValueWriter {
        void write(int i);
    }

    ParquetVectorWriteSupport(VectorSchemaRoot root) {
        this.root = root;
    }

    @Override
    public WriteContext init(Configuration conf) {
        WriteContext spark = new ParquetWriteSupport().init(conf);
        schema = spark.getSchema();
        List<FieldVector> vectors = root.getFieldVectors();
        if (schema.getFieldCount() != vectors.size()) {
            throw new IllegalStateException("the Parquet schema " + schema + " does not match the output vectors "
                    + root.getSchema());
        }
        writers = new ValueWriter[vectors.size()];
        for (int c = 0; c < writers.length; c++) {
            writers[c] = writer(vectors.get(c), schema.getType(c));
        }
        return spark;
    }

    @Override
    public void prepareForWrite(RecordConsumer recordConsumer) {
        this.consumer = recordConsumer;
    }

    /** Writes row {@code row} of the root. */
    @Override
    public void write(Integer row) {
        int r = row;
        List<FieldVector> vectors = root.getFieldVectors();
        consumer.startMessage();
        for (int c = 0; c < writers.length; c++) {
            if (!vectors.get(c).isNull(r)) {
                String name = schema.getFieldName(c);
                consumer.startField(name, c);
                writers[c].write(r);
                consumer.endField(name, c);
            }
        }
        consumer.endMessage();
    }

    /** The writer of {@code v}'s values (the vectors stay the root's: filling them again keeps them). */
    private ValueWriter writer(FieldVector v, Type field) {
        if (v instanceof BigIntVector b) {
            return i -> consumer.addLong(b.get(i));
        } else if (v instanceof IntVector n) {
            return i -> consumer.addInteger(n.get(i));
        } else if (v instanceof SmallIntVector n) {
            return i -> consumer.addInteger(n.get(i));
        } else if (v instanceof TinyIntVector n) {
            return i -> consumer.addInteger(n.get(i));
        } else if (v instanceof Float8Vector d) {
            return i -> consumer.addDouble(d.get(i));
        } else if (v instanceof Float4Vector f) {
            return i -> consumer.addFloat(f.get(i));
        } else if (v instanceof BitVector b) {
            return i -> consumer.addBoolean(b.get(i) != 0);
        } else if (v instanceof VarCharVector s) {
            return i -> consumer.addBinary(Binary.fromConstantByteArray(s.get(i)));
        } else if (v instanceof ListVector list) {
            return listWriter(list, field.asGroupType());
        }
        throw new IllegalStateException("column " + v.getName() + ": no Parquet writer for " + v.getField());
    }

    /** A list as Spark writes it: {@code <group> {repeated group list {element}}}, or two-level legacy. */
    private ValueWriter listWriter(ListVector list, GroupType group) {
        FieldVector data = list.getDataVector();
        Type repeated = group.getType(0);
        String repeatedName = repeated.getName();
        ValueWriter each;
        if (repeated.isPrimitive()) {  // legacy two-level list of non-null elements
            each = writer(data, repeated);
        } else {
            Type elementType = repeated.asGroupType().getType(0);
            String elementName = elementType.getName();
            ValueWriter element = writer(data, elementType);
            boolean required = elementType.isRepetition(Type.Repetition.REQUIRED);  // never null: no check
            each = j -> {
                consumer.startGroup();
                if (required || !data.isNull(j)) {
                    consumer.startField(elementName, 0);
                    element.write(j);
                    consumer.endField(elementName, 0);
                }
                consumer.endGroup();
            };
        }
        return i -> {
            int start = list.getElementStartIndex(i);
            int end = list.getElementEndIndex(i);
            consumer.startGroup();
            if (end > start) {
                consumer.startField(repeatedName, 0);
                for (int j = start; j < end; j++) {
                    each.write(j);
                }
                consumer.endField(repeatedName, 0);
            }
            consumer.endGroup();
        };
    }
}
