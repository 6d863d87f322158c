package io.moescore.spark;

import java.util.List;
import org.apache.spark.Partition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.execution.datasources.v2.DataSourceRDDPartition;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The Spark-internal entry points we use, in one place: a DataFrame's rows as Spark holds them ({@code InternalRow},
 * whose arrays copy out as primitive arrays with no per-element objects), a DataFrame made from such rows, and what
 * a DataSource V2 scan partition reads. All are public in bytecode (Scala's {@code private[sql]}); compiled against
 * Spark 4.2.0, and each also runs on 4.1 (where one differs, it says how).
 */
final class SparkInternals {
    private SparkInternals() {
    }

    static JavaRDD<InternalRow> internalRows(Dataset<Row> df) {
        return ((org.apache.spark.sql.classic.Dataset<Row>) df).queryExecution().toRdd().toJavaRDD();
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
