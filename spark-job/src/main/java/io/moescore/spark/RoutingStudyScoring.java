package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.routing.RoutingSpec;
import io.moescore.score.RoutingStudy;
import io.moescore.score.ScoreSettings;
import java.io.Serializable;
import java.math.BigDecimal;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;

/**
 * The Spark side of the routing study ({@link RoutingStudyJob}). The input is read and tokenized once
 * ({@link TokenRows}) into a cached DataFrame of (row number, tokens); each router variant then scores it with the
 * scoring job's transformer ({@link MoeScorer}, on the executors' shared weights: {@link ExecutorEngines} holds one
 * copy per executor and device for every variant), and its scores (a few numbers per row) are cached and reduced to
 * totals on the executors: no row is written. The baseline's stay cached until the end; each other variant's are
 * joined to them on the row number to count the rows whose top-1 token changed, then dropped.
 */
final class RoutingStudyScoring implements AutoCloseable {
    private static final String ROW = "__moescore_study_row";
    private static final String FIRST = "__moescore_study_first";
    private static final String TOP1 = "__moescore_study_top1";
    private static final String BASE_TOP1 = "__moescore_study_base_top1";

    private final String model;
    private final ScoreSettings settings;
    private final Dataset<Row> tokens;
    private final long unreadable;
    private final long rows;
    private final long inputTokens;
    private Dataset<Row> baseline;
    private RoutingStudy.Variant base;
    private JobSummary baseSummary;

    private RoutingStudyScoring(String model, ScoreSettings settings, Dataset<Row> tokens, long unreadable, long rows,
                                long inputTokens) {
        this.model = model;
        this.settings = settings;
        this.tokens = tokens;
        this.unreadable = unreadable;
        this.rows = rows;
        this.inputTokens = inputTokens;
    }

    /**
     * Reads and tokenizes the input once and caches it; every executor that holds a part of it loads the model's
     * weights on the way, so that no variant's time holds the load.
     *
     * @throws IllegalArgumentException the input cannot be read, has no usable column, or no row with tokens
     */
    static RoutingStudyScoring read(SparkSession spark, RoutingStudyJob.Options options) {
        ScoringSpec spec = new ScoringSpec(ModelFiles.forExecutors(options.model()), options.settings(),
                ScoreColumns.TOKENS, ScoreColumns.TEXT, ModelFiles.hadoopEntries(spark.sparkContext()));
        LongAccumulator skipped = spark.sparkContext().longAccumulator("moescore rows without tokens");
        JavaRDD<InternalRow> numbered = TokenRows.readNumbered(spark, options.inputs(), options.inputFormat(), spec,
                options.partitions(), skipped).mapPartitions(part -> {
                    ExecutorEngines.forTask(spec);  // the weights, before any variant is timed
                    return new Iterator<InternalRow>() {
                        private boolean first = true;

                        @Override
                        public boolean hasNext() {
                            return part.hasNext();
                        }

                        @Override
                        public InternalRow next() {
                            scala.Tuple2<Long, int[]> row = part.next();
                            InternalRow out = new GenericInternalRow(new Object[] {row._1(), first,
                                UnsafeArrayData.fromPrimitiveArray(row._2())});
                            first = false;
                            return out;
                        }
                    };
                });
        StructType schema = new StructType().add(ROW, DataTypes.LongType, false)
                .add(FIRST, DataTypes.BooleanType, false)
                .add(ScoreColumns.TOKENS, DataTypes.createArrayType(DataTypes.IntegerType, false), false);
        Dataset<Row> tokens = SparkInternals.dataFrame(spark, numbered, schema).persist(StorageLevel.MEMORY_AND_DISK());
        Row counts = tokens.agg(functions.count(functions.lit(1)),
                functions.coalesce(functions.sum(functions.size(MoeScoreJob.column(ScoreColumns.TOKENS))),
                        functions.lit(0L))).first();
        long scored = counts.getLong(0);
        if (scored == 0) {
            tokens.unpersist();
            throw new IllegalArgumentException("--input " + options.inputs() + " holds no row with tokens ("
                    + skipped.value() + " without)");
        }
        return new RoutingStudyScoring(options.model(), options.settings(), tokens, skipped.value(),
                scored + skipped.value(), counts.getLong(1));
    }

    /** Input rows, those without tokens included. */
    long rows() {
        return rows;
    }

    /** Tokens of the rows with tokens. */
    long tokens() {
        return inputTokens;
    }

    /** Rows that had no usable tokens (malformed, null, not tokenizable): an error in every variant. */
    long unreadable() {
        return unreadable;
    }

    /** The baseline's job summary (executors, devices), once it ran. */
    JobSummary baselineSummary() {
        return baseSummary;
    }

    /**
     * Scores one row of each cached partition with the model's router, untimed: the executors' first batch (kernels
     * and buffers made) before the baseline is timed.
     */
    void warmUp() {
        scores(RoutingSpec.MODEL, tokens.where(MoeScoreJob.column(FIRST)), null).count();
    }

    /**
     * Scores every row with {@code routing} (the first call: the baseline, the model's own router) and measures it.
     * Timed: the Spark job that scores, caches the scores and sums them, the same for every variant; untimed after
     * it: the join of the cached scores with the baseline's top-1 tokens.
     */
    RoutingStudy.Variant score(RoutingSpec routing) {
        if ((base == null) != routing.isModel()) {
            throw new IllegalStateException("the model's own router is scored first, and only once");
        }
        TaskReports reports = TaskReports.register(tokens.sparkSession().sparkContext());
        long start = System.nanoTime();
        Dataset<Row> scored = scores(routing, tokens, reports).persist(StorageLevel.MEMORY_AND_DISK());
        Totals totals = totals(scored);
        double seconds = (System.nanoTime() - start) / 1e9;
        JobSummary summary = JobSummary.of(reports.stats().value(), seconds);
        long[] top1 = base == null ? new long[] {totals.withTop1, 0} : top1Changes(scored);
        if (base == null) {
            baseline = scored;
            baseSummary = summary;
        } else {
            scored.unpersist();
        }
        long pairs = 0;
        for (long[] layer : summary.expertLoad()) {
            for (long c : layer) {
                pairs += c;
            }
        }
        RoutingStudy.Variant v = RoutingStudy.Variant.of(routing, totals.errors + unreadable, totals.predicted,
                -totals.logProbs.doubleValue(), pairs, seconds, inputTokens, top1[0], top1[1], base);
        if (base == null) {
            base = v;
        }
        return v;
    }

    /** Rows scored without error by both {@code scored} and the baseline, and those whose top-1 token differs. */
    private long[] top1Changes(Dataset<Row> scored) {
        Column ok = MoeScoreJob.column(ScoreColumns.ERROR).isNull().and(MoeScoreJob.column(TOP1).isNotNull());
        Dataset<Row> baseTop = baseline.where(ok).select(MoeScoreJob.column(ROW),
                MoeScoreJob.column(TOP1).as(BASE_TOP1));
        Row counts = scored.where(ok).join(baseTop, scala.jdk.javaapi.CollectionConverters.asScala(List.of(ROW))
                .toSeq()).agg(functions.count(functions.lit(1)), functions.coalesce(functions.sum(
                        functions.when(MoeScoreJob.column(TOP1).notEqual(MoeScoreJob.column(BASE_TOP1)), 1L)
                                .otherwise(0L)), functions.lit(0L))).first();
        return new long[] {counts.getLong(0), counts.getLong(1)};
    }

    /** The scores of {@code input}'s rows under {@code routing}: row number, num_tokens, sum_logprob, error, top-1. */
    private Dataset<Row> scores(RoutingSpec routing, Dataset<Row> input, TaskReports reports) {
        MoeScorer scorer = new MoeScorer().setModelPath(model).setSettings(settings
                .with(ScoreSettings.ROUTING, routing).with(ScoreSettings.TOP_K, 1)
                .with(ScoreSettings.TOKEN_LOGPROBS, false));
        Column top = MoeScoreJob.column(ScoreColumns.TOP_TOKENS);
        return scorer.score(input.drop(FIRST), reports).select(MoeScoreJob.column(ROW),
                MoeScoreJob.column(ScoreColumns.NUM_TOKENS), MoeScoreJob.column(ScoreColumns.SUM_LOGPROB),
                MoeScoreJob.column(ScoreColumns.ERROR),
                functions.try_element_at(top, functions.lit(1)).as(TOP1));
    }

    /**
     * A variant's totals, summed on the executors (the log-probs exactly: the same bits in any order); this action
     * scores the rows and caches their scores.
     */
    private static Totals totals(Dataset<Row> scores) {
        return scores.javaRDD().mapPartitions(RoutingStudyScoring::partitionTotals).reduce(Totals::plus);
    }

    private static Iterator<Totals> partitionTotals(Iterator<Row> rows) {
        Totals t = new Totals();
        while (rows.hasNext()) {
            Row r = rows.next();
            if (!r.isNullAt(r.fieldIndex(ScoreColumns.ERROR))) {
                t.errors++;
                continue;
            }
            t.predicted += Math.max(0, r.getInt(r.fieldIndex(ScoreColumns.NUM_TOKENS)) - 1);
            t.logProbs = RoutingStudy.exactSum(t.logProbs, r.getDouble(r.fieldIndex(ScoreColumns.SUM_LOGPROB)));
            t.withTop1 += r.isNullAt(r.fieldIndex(TOP1)) ? 0 : 1;
        }
        return List.of(t).iterator();
    }

    /** Rows with an error; of the others, tokens predicted, their log-probs, and rows with a top-1 token. */
    static final class Totals implements Serializable {
        private static final long serialVersionUID = 1L;
        long errors;
        long predicted;
        BigDecimal logProbs = BigDecimal.ZERO;
        long withTop1;

        static Totals plus(Totals a, Totals b) {
            Totals t = new Totals();
            t.errors = a.errors + b.errors;
            t.predicted = a.predicted + b.predicted;
            t.logProbs = a.logProbs.add(b.logProbs);
            t.withTop1 = a.withTop1 + b.withTop1;
            return t;
        }
    }

    /** Drops the cached input and baseline scores. */
    @Override
    public void close() {
        tokens.unpersist();
        if (baseline != null) {
            baseline.unpersist();
        }
    }
}
