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

    /** Replaces the vectors' contents with {@code scored}'s rows. */
    VectorSchemaRoot fill(PartitionScorer.Scored scored) {
        ScoreVectors.fillRows(root, scored.scores);  // allocates every vector, the id's too
        FieldVector id = root.getVector(0);
        int n = scored.numRows();
        ColumnVector v = scored.batch == null ? null : scored.batch.column(idOrdinal);
        for (int i = 0; i < n; i++) {
            if (v != null) {
                if (v.isNullAt(i)) {
                    id.setNull(i);
                } else if (id instanceof BigIntVector longs) {
                    longs.setSafe(i, longId(v, i));
                } else {
                    ((VarCharVector) id).setSafe(i, v.getUTF8String(i).getBytes());
                }
            } else {
                InternalRow row = scored.rows.get(i);
                if (row.isNullAt(idOrdinal)) {
                    id.setNull(i);
                } else if (id instanceof BigIntVector longs) {
                    longs.setSafe(i, longId(row));
                } else {
                    ((VarCharVector) id).setSafe(i, row.getUTF8String(idOrdinal).getBytes());
                }
            }
        }
        id.setValueCount(n);
        return root;
    }

    private long longId(ColumnVector v, int i) {
        return idType.equals(DataTypes.LongType) ? v.getLong(i) : idType.equals(DataTypes.IntegerType) ? v.getInt(i)
                : idType.equals(DataTypes.ShortType) ? v.getShort(i) : v.getByte(i);
    }

    private long longId(InternalRow row) {
        return idType.equals(DataTypes.LongType) ? row.getLong(idOrdinal)
                : idType.equals(DataTypes.IntegerType) ? row.getInt(idOrdinal)
                : idType.equals(DataTypes.ShortType) ? row.getShort(idOrdinal) : row.getByte(idOrdinal);
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
