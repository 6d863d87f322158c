package io.moescore.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple2;

/**
 * The token ids of every row of an input the scoring job can read (Arrow, Parquet or JSON lines from any Hadoop
 * file system; a tokens column, or text tokenized on the executors with the model's tokenizer), read through the
 * scoring job's readers and column checks. For jobs that use such input without scoring it (calibration). No id
 * column is needed.
 */
public final class TokenRows {
    private TokenRows() {
    }

    /** Internal column numbering the rows in the order they are read. */
    private static final String ROW_NUMBER = "__moescore_row_number";

    /**
     * The rows' token ids (lazy). Rows without usable tokens (malformed, null, ids outside int) are left out and
     * counted in {@code skipped}. A path that cannot be read or a column of the wrong type throws
     * {@link IllegalArgumentException} naming it, before any task runs.
     *
     * @param spec       the model whose tokenizer reads text, and the columns; the rest of it is not used
     * @param partitions repartition into this many partitions first (0: as read)
     */
    public static JavaRDD<int[]> read(SparkSession spark, List<String> inputs, String format, ScoringSpec spec,
                                      int partitions, LongAccumulator skipped) {
        return readNumbered(spark, inputs, format, spec, partitions, skipped).values();
    }

    /**
     * {@link #read}, each row's tokens keyed by its place in the input as read (increasing in file and row order,
     * not consecutive; the same on every run over the same files), which repartitioning keeps.
     */
    public static JavaPairRDD<Long, int[]> readNumbered(SparkSession spark, List<String> inputs, String format,
                                                        ScoringSpec spec, int partitions, LongAccumulator skipped) {
        Dataset<Row> input = JobInput.read(spark, inputs, format, null, spec.tokensColumn(), spec.textColumn());
        List<String> names = Arrays.asList(input.columns());
        List<Column> used = new ArrayList<>();
        for (String name : List.of(spec.tokensColumn(), spec.textColumn(), DatasetScorer.CORRUPT_RECORD)) {
            if (names.contains(name)) {
                used.add(MoeScoreJob.column(name));
            }
        }
        if (used.isEmpty()) {
            throw new IllegalArgumentException("input " + inputs + " has neither a '" + spec.tokensColumn()
                    + "' nor a '" + spec.textColumn() + "' column (columns: " + names + ")");
        }
        used.add(functions.monotonically_increasing_id().as(ROW_NUMBER));
        input = input.select(used.toArray(Column[]::new));
        if (partitions > 0) {
            input = input.repartition(partitions);
        }
        InputLayout layout = DatasetScorer.layout(input.schema(), spec.tokensColumn(), spec.textColumn());
        DatasetScorer.checkTokenizer(spec, layout);
        int number = used.size() - 1;
        return SparkInternals.internalRows(input).mapPartitionsToPair(rows -> tokens(rows, spec, layout, number,
                skipped));
    }

    private static Iterator<Tuple2<Long, int[]>> tokens(Iterator<InternalRow> rows, ScoringSpec spec,
                                                        InputLayout layout, int number, LongAccumulator skipped) {
        int device = PartitionScorer.gpuAddress(TaskContext.get());
        List<Tuple2<Long, int[]>> out = new ArrayList<>();
        while (rows.hasNext()) {
            InternalRow row = rows.next();
            RowTokens read = RowTokens.of(row, layout, () -> ExecutorEngines.get(spec, device).tokenizer());
            if (read.tokens() != null) {
                out.add(new Tuple2<>(row.getLong(number), read.tokens()));
            } else {
                skipped.add(1);
            }
        }
        return out.iterator();
    }
}
