package io.moescore.spark;

import io.moescore.arrow.ScoreVectors;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ColumnVector;

/**
 * The job's output rows as Arrow vectors, a batch at a time: {@code id} (the input's; int, smallint and tinyint ids
 * widened to bigint, as the row writer casts them) and the score columns, in the Arrow schema Spark gives the
 * output's columns ({@code ArrowUtils.toArrowSchema}: the schema the row writer's Arrow files have). Each batch is
 * filled once from a {@link PartitionScorer.Scored}: the scores by {@link ScoreVectors#fillRows}, the ids copied from
 * the input batch's column (or rows); every direct writer reads these vectors. Owns its allocator (a child of Spark's
 * Arrow allocator) and root.
 */
final class OutputVectors implements AutoCloseable {
    private final BufferAllocator allocator;
    private final VectorSchemaRoot root;
    private final int idOrdinal;
    private final DataType idType;

    /**
     * @param output    the output's columns: the id (bigint or string), then the score columns
     * @param idOrdinal the id's column in the scored input
     * @param idType    the id's type in the input (bigint, int, smallint, tinyint or string)
     */
    OutputVectors(StructType output, int idOrdinal, DataType idType, String timeZone) {
        TaskContext task = TaskContext.get();
        this.allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore output"
                + (task == null ? "" : " task " + task.taskAttemptId()), 0, Long.MAX_VALUE);
        try {
            this.root = VectorSchemaRoot.create(ArrowUtils.toArrowSchema(output, timeZone, true, false), allocator);
        } catch (RuntimeException e) {
            allocator.close();
            throw e;
        }
        this.idOrdinal = idOrdinal;
        this.idType = idType;
    }

    /** The vectors the writers read; what {@link #fill} put there last. */
    VectorSchemaRoot root() {
        return root;
    }

    /** Replaces the vectors' contents with {@code scored}'s rows {@code from .. to-1} (a file's share of a batch). */
    VectorSchemaRoot fill(PartitionScorer.Scored scored, int from, int to) {
        ScoreVectors.fillRows(root, scored.scores.subList(from, to));  // allocates every vector, the id's too
        FieldVector id = root.getVector(0);
        ColumnVector v = scored.batch == null ? null : scored.batch.column(idOrdinal);
        for (int i = from; i < to; i++) {
            int at = i - from;
            if (v != null) {
                if (v.isNullAt(i)) {
                    id.setNull(at);
                } else if (id instanceof BigIntVector longs) {
                    longs.setSafe(at, longId(v, i, idType));
                } else {
                    ((VarCharVector) id).setSafe(at, v.getUTF8String(i).getBytes());
                }
            } else {
                InternalRow row = scored.rows.get(i);
                if (row.isNullAt(idOrdinal)) {
                    id.setNull(at);
                } else if (id instanceof BigIntVector longs) {
                    longs.setSafe(at, longId(row, idOrdinal, idType));
                } else {
                    ((VarCharVector) id).setSafe(at, row.getUTF8String(idOrdinal).getBytes());
                }
            }
        }
        id.setValueCount(to - from);
        return root;
    }

    /** Row {@code i}'s id of a bigint, int, smallint or tinyint column {@code v} of {@code type}, widened. */
    static long longId(ColumnVector v, int i, DataType type) {
        return type.equals(DataTypes.LongType) ? v.getLong(i) : type.equals(DataTypes.IntegerType) ? v.getInt(i)
                : type.equals(DataTypes.ShortType) ? v.getShort(i) : v.getByte(i);
    }

    /** {@code row}'s id at {@code ordinal}, of a bigint, int, smallint or tinyint {@code type}, widened. */
    static long longId(InternalRow row, int ordinal, DataType type) {
        return type.equals(DataTypes.LongType) ? row.getLong(ordinal) : type.equals(DataTypes.IntegerType)
                ? row.getInt(ordinal) : type.equals(DataTypes.ShortType) ? row.getShort(ordinal) : row.getByte(ordinal);
    }

    /** Row {@code i}'s id of column {@code v} as the token trace records it: a Long, a String, or null. */
    static Object id(ColumnVector v, int i, DataType type) {
        return v.isNullAt(i) ? null : type.equals(DataTypes.StringType) ? v.getUTF8String(i).toString()
                : (Object) longId(v, i, type);
    }

    /** {@code row}'s id at {@code ordinal} as the token trace records it: a Long, a String, or null. */
    static Object id(InternalRow row, int ordinal, DataType type) {
        return row.isNullAt(ordinal) ? null : type.equals(DataTypes.StringType)
                ? row.getUTF8String(ordinal).toString() : (Object) longId(row, ordinal, type);
    }

    @Override
    public void close() {
        try {
            root.close();
        } catch (RuntimeException e) {
            try {
                allocator.close();
            } catch (RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
        allocator.close();
    }
}
