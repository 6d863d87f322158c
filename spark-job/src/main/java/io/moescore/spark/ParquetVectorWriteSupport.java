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

    ParquetVectorWriteSupport(VectorSchemaRoot root) {
        this.root = root;
    }

    @Override
    public WriteContext init(Configuration conf) {
        WriteContext spark = new ParquetWriteSupport().init(conf);
        schema = spark.getSchema();
        if (schema.getFieldCount() != root.getFieldVectors().size()) {
            throw new IllegalStateException("the Parquet schema " + schema + " does not match the output vectors "
                    + root.getSchema());
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
        for (int c = 0; c < vectors.size(); c++) {
            FieldVector v = vectors.get(c);
            if (!v.isNull(r)) {
                Type field = schema.getType(c);
                consumer.startField(field.getName(), c);
                value(v, r, field);
                consumer.endField(field.getName(), c);
            }
        }
        consumer.endMessage();
    }

    private void value(FieldVector v, int i, Type field) {
        if (v instanceof BigIntVector b) {
            consumer.addLong(b.get(i));
        } else if (v instanceof IntVector n) {
            consumer.addInteger(n.get(i));
        } else if (v instanceof SmallIntVector n) {
            consumer.addInteger(n.get(i));
        } else if (v instanceof TinyIntVector n) {
            consumer.addInteger(n.get(i));
        } else if (v instanceof Float8Vector d) {
            consumer.addDouble(d.get(i));
        } else if (v instanceof Float4Vector f) {
            consumer.addFloat(f.get(i));
        } else if (v instanceof BitVector b) {
            consumer.addBoolean(b.get(i) != 0);
        } else if (v instanceof VarCharVector s) {
            consumer.addBinary(Binary.fromConstantByteArray(s.get(i)));
        } else if (v instanceof ListVector list) {
            list(list, i, field.asGroupType());
        } else {
            throw new IllegalStateException("column " + v.getName() + ": no Parquet writer for " + v.getField());
        }
    }

    /** A list as Spark writes it: {@code <group> {repeated group list {element}}}, or two-level legacy. */
    private void list(ListVector list, int i, GroupType group) {
        FieldVector data = list.getDataVector();
        int start = list.getElementStartIndex(i);
        int end = list.getElementEndIndex(i);
        Type repeated = group.getType(0);
        consumer.startGroup();
        if (end > start) {
            consumer.startField(repeated.getName(), 0);
            for (int j = start; j < end; j++) {
                if (repeated.isPrimitive()) {  // legacy two-level list of non-null elements
                    value(data, j, repeated);
                    continue;
                }
                Type element = repeated.asGroupType().getType(0);
                consumer.startGroup();
                if (!data.isNull(j)) {
                    consumer.startField(element.getName(), 0);
                    value(data, j, element);
                    consumer.endField(element.getName(), 0);
                }
                consumer.endGroup();
            }
            consumer.endField(repeated.getName(), 0);
        }
        consumer.endGroup();
    }
}
