package io.moescore.spark.examples;

import io.moescore.spark.MoeScorer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * Scoring inside your own Spark application, to copy and adapt: reads a Parquet table of documents (an {@code id}
 * column, a {@code tokens} array&lt;int&gt; column and any others), scores the tokens with {@link MoeScorer}, joins
 * the scores back to the documents by id and writes the result as Parquet.
 *
 * <p>Only {@code id} and {@code tokens} go through the scoring stage; the documents' other columns, however wide,
 * rejoin afterwards. (MoeScorer keeps every column it is given, so scoring the whole table works too.)
 *
 * <pre>spark-submit --class io.moescore.spark.examples.ScoreDataFrameExample --jars LIBS moescore-spark-job.jar \
 *     DOCUMENTS.parquet OUTPUT.parquet MODEL_DIR</pre>
 */
public final class ScoreDataFrameExample {
    private ScoreDataFrameExample() {
    }

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: ScoreDataFrameExample DOCUMENTS.parquet OUTPUT.parquet MODEL_DIR");
            System.exit(2);
        }
        SparkSession spark = SparkSession.builder().appName("moescore example: score a DataFrame").getOrCreate();
        try {
            run(spark, args[0], args[1], args[2]);
        } finally {
            spark.stop();
        }
    }

    public static void run(SparkSession spark, String documentsPath, String outputPath, String modelDir) {
        Dataset<Row> documents = spark.read().parquet(documentsPath);

        MoeScorer scorer = new MoeScorer()
                .setModelPath(modelDir)     // local path on every node, or hdfs://, s3a://, ...
                .setTokensCol("tokens")
                .setTopK(5);                 // also the 5 most likely next tokens
        Dataset<Row> scores = scorer.transform(documents.select("id", "tokens")).drop("tokens");

        documents.join(scores, "id")
                .write().mode(SaveMode.Overwrite).parquet(outputPath);
    }
}
