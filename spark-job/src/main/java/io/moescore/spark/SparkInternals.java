package io.moescore.spark;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;

/**
 * The two Spark-internal entry points we use, in one place: a DataFrame's rows as Spark holds them
 * ({@code InternalRow}, whose arrays copy out as primitive arrays with no per-element objects), and a DataFrame
 * made from such rows. Both are public in bytecode (Scala's {@code private[sql]}); pinned to Spark 4.1.1.
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
}
