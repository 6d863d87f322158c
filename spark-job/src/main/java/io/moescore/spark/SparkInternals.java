package io.moescore.spark;

import java.util.List;
import org.apache.spark.Partition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Alias;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.execution.ColumnarToRowExec;
import org.apache.spark.sql.execution.ProjectExec;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.WholeStageCodegenExec;
import org.apache.spark.sql.execution.datasources.v2.DataSourceRDDPartition;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The Spark-internal entry points we use, in one place: a DataFrame's rows as Spark holds them
 * ({@code InternalRow}, whose arrays copy out as primitive arrays with no per-element objects), its column batches
 * where its plan is a columnar scan, the array layout of Spark's own column vectors (Parquet's vectorized reader),
 * a DataFrame made from rows, and what a DataSource V2 scan partition reads. All are public in bytecode (some Scala
 * {@code private[sql]}); compiled against Spark 4.2.0, and each also runs on 4.1 (where one differs, it says how).
 */
final class SparkInternals {
    private SparkInternals() {
    }

    static JavaRDD<InternalRow> internalRows(Dataset<Row> df) {
        return ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution().toRdd().toJavaRDD();
    }

    /**
     * The DataFrame's column batches, when its physical plan is a columnar scan read into rows and nothing else
     * (Parquet's vectorized reader, the arrow data source; projections that only drop columns are pruned into the
     * scan), with the DataFrame's columns in its order; else null. A batch is valid until the iterator moves on.
     */
    static JavaRDD<ColumnarBatch> columnarBatches(Dataset<Row> df) {
        SparkPlan plan = ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution().executedPlan();
        if (plan instanceof WholeStageCodegenExec codegen) {
            plan = codegen.child();
        }
        List<NamedExpression> projection = null;
        if (plan instanceof ProjectExec project) {  // columns reordered (or renamed): map them, if only that
            projection = CollectionConverters.asJava(project.projectList());
            plan = project.child();
        }
        if (!(plan instanceof ColumnarToRowExec toRows) || !toRows.child().supportsColumnar()) {
            return null;
        }
        SparkPlan scan = toRows.child();
        List<Attribute> scanned = CollectionConverters.asJava(scan.output());
        int[] columns = new int[df.schema().size()];
        for (int c = 0; c < columns.length; c++) {
            columns[c] = projection == null ? (c < scanned.size() ? c : -1) : scannedIndex(projection.get(c), scanned);
            if (columns[c] < 0 || projection == null && scanned.size() != columns.length) {
                return null;
            }
        }
        JavaRDD<ColumnarBatch> batches = scan.executeColumnar().toJavaRDD();
        boolean inOrder = java.util.stream.IntStream.range(0, columns.length).allMatch(c -> columns[c] == c)
                && columns.length == scanned.size();
        return inOrder ? batches : batches.map(b -> {
            ColumnVector[] picked = new ColumnVector[columns.length];
            for (int c = 0; c < columns.length; c++) {
                picked[c] = b.column(columns[c]);
            }
            return new ColumnarBatch(picked, b.numRows());
        });
    }

    /** The scan column a projected column is (an attribute of the scan, maybe renamed), or -1. */
    private static int scannedIndex(NamedExpression e, List<Attribute> scanned) {
        Object inner = e instanceof Alias alias ? alias.child() : e;
        if (!(inner instanceof AttributeReference a)) {
            return -1;
        }
        for (int i = 0; i < scanned.size(); i++) {
            if (scanned.get(i).exprId().equals(a.exprId())) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Spark's own array column (Parquet's vectorized reader): element offset and count of {@code row} in
     * {@link ColumnVector#getChild getChild(0)}; null when {@code v} is another kind of vector.
     */
    static ArrayLayout arrayLayout(ColumnVector v) {
        return v instanceof WritableColumnVector w ? new ArrayLayout() {
            @Override
            public int offset(int row) {
                return w.getArrayOffset(row);
            }

            @Override
            public int length(int row) {
                return w.getArrayLength(row);
            }
        } : null;
    }

    /** Where an array column's rows lie in its element vector. */
    interface ArrayLayout {
        int offset(int row);

        int length(int row);
    }

    static Dataset<Row> dataFrame(SparkSession spark, JavaRDD<InternalRow> rows,
                                  org.apache.spark.sql.types.StructType schema) {
        return ((org.apache.spark.sql.classic.SparkSession) spark).internalCreateDataFrame(rows.rdd(), schema, false);
    }

    /**
     * The source partitions one partition of a {@code DataSourceRDD} reads. Spark 4.2 holds at most one
     * ({@code inputPartition: Option}); 4.1 held a list ({@code inputPartitions: Seq}), read by reflection there.
     */
    static List<InputPartition> inputPartitions(Partition p) {
        DataSourceRDDPartition partition = (DataSourceRDDPartition) p;
        try {
            return CollectionConverters.asJava(partition.inputPartition().toList());
        } catch (NoSuchMethodError spark41) {
            try {
                Object seq = DataSourceRDDPartition.class.getMethod("inputPartitions").invoke(partition);
                @SuppressWarnings("unchecked")
                List<InputPartition> list = CollectionConverters.asJava((scala.collection.Seq<InputPartition>) seq);
                return list;
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("this Spark's DataSourceRDDPartition has neither inputPartition "
                        + "(Spark 4.2) nor inputPartitions (4.1): " + e, e);
            }
        }
    }
}
