package io.moescore.spark;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.engine.ScoreOptions;
import io.moescore.score.ScoreSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * The scoring job's data path with no model: the input read as the job reads it, its columns chosen and checked,
 * every partition through the same scorer ({@link PartitionScorer}: the same windows and batches), but each batch
 * "scored" by a stand-in that copies its tokens once, as the engine packs its batch, and gives every row a score of
 * zero; then written as the job writes. What the data path costs on its own (the data-path benchmark in the bench
 * module); never used to score.
 */
public final class ZeroScoreJob {
    private ZeroScoreJob() {
    }

    /** Every batch scored 0 after one copy of its tokens (the engine's own packing copy). */
    static final PartitionScorer.EngineSource ZEROS = (spec, device) -> new PartitionScorer.Scoring(
            ZeroScoreJob::zeros, 1, 1, "none (data path only)", () -> {
                throw new IllegalStateException("the data-path benchmark has no tokenizer: give tokens, not text");
            }, Integer.MAX_VALUE);

    static ScoreBatch zeros(TokenBatch batch, ScoreOptions options) {
        int n = batch.numSequences();
        int[] packed = new int[(int) batch.totalTokens()];
        List<SequenceScore> scores = new ArrayList<>(n);
        int at = 0;
        for (int s = 0; s < n; s++) {
            int length = batch.length(s);
            batch.copySequence(s, packed, at);
            at += length;
            int argmaxFrom = options.argmaxFrom(s);
            scores.add(length == 0 ? SequenceScore.failed(0, "empty sequence")
                    : new SequenceScore(length, 0.0, options.tokenLogProbs() ? new float[length - 1] : null,
                            options.topK() > 0 ? new int[options.topK()] : null, null,
                            argmaxFrom >= 0 ? new int[length - 1 - argmaxFrom] : null));
        }
        return new ScoreBatch(scores, new ExpertLoad(1, 1), 0);
    }

    /**
     * The job's output rows ({@code id} and the score columns) for {@code inputs} read as {@code format}, with
     * scores of zero (lazy: write or count it to run it).
     */
    public static Dataset<Row> scores(SparkSession spark, List<String> inputs, String format, ScoreSettings settings) {
        Dataset<Row> input = input(spark, inputs, format);
        Dataset<Row> scored = DatasetScorer.score(input, spec(settings), null, null, null, ZEROS);
        List<Column> output = new ArrayList<>();
        output.add(MoeScoreJob.column("id"));
        scoreColumns(input, settings).forEach(name -> output.add(MoeScoreJob.column(name)));
        return scored.select(output.toArray(Column[]::new));
    }

    /**
     * Scores {@code inputs} with zeros and writes the job's output into {@code output} (replacing it) as
     * {@code outputFormat} with {@code writer}: the direct writers ({@link VectorOutput}) or Spark's row writer over
     * {@link #scores}.
     */
    public static void write(SparkSession spark, List<String> inputs, String format, ScoreSettings settings,
                             String output, String outputFormat, ScoreJobOptions.OutputWriter writer) {
        if (writer == ScoreJobOptions.OutputWriter.ROWS) {
            JobOutput.writer(scores(spark, inputs, format, settings), outputFormat).mode("overwrite").save(output);
            return;
        }
        Dataset<Row> input = input(spark, inputs, format);
        VectorOutput.write(spark, DatasetScorer.plan(input, spec(settings), null, null, null, ZEROS), "id",
                scoreColumns(input, settings), outputFormat, output, "overwrite", Map.of());
    }

    private static Dataset<Row> input(SparkSession spark, List<String> inputs, String format) {
        ScoreJobOptions options = new ScoreJobOptions(inputs, format, "unused", "parquet", "none",
                ScoreSettings.DEFAULTS, "error", "id", "tokens", "text", 0, null);
        return MoeScoreJob.jobColumns(MoeScoreJob.read(spark, options), options);
    }

    private static ScoringSpec spec(ScoreSettings settings) {
        return new ScoringSpec("none", settings, "tokens", "text", Map.of());
    }

    private static List<String> scoreColumns(Dataset<Row> input, ScoreSettings settings) {
        return DatasetScorer.scoreLayout(settings, DatasetScorer.layout(input.schema(), spec(settings))).names();
    }

    /** Whether the job reads {@code inputs} as column batches (a columnar scan) rather than row by row. */
    public static boolean columnar(SparkSession spark, List<String> inputs, String format) {
        return SparkInternals.columnarBatches(input(spark, inputs, format)) != null;
    }
}
