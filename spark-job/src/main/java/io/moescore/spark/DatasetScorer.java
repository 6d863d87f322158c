package io.moescore.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.score.ScoreColumns;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;

/**
 * Scores a DataFrame: checks its columns and the model on the driver (so a wrong column or a missing model fails
 * before any task runs), then maps every partition through {@link PartitionScorer}. The result has one row per
 * input row, same partitioning and order.
 */
public final class DatasetScorer {
    /** The column Spark's JSON reader fills for malformed lines (PERMISSIVE mode). */
    public static final String CORRUPT_RECORD = "_corrupt_record";

    private DatasetScorer() {
    }

    /** The scores of {@code input} (lazy), with per-task statistics gathered into {@code stats}. */
    public static Dataset<Row> score(SparkSession spark, Dataset<Row> input, ScoringSpec spec,
                                     CollectionAccumulator<TaskStats> stats) {
        checkModel(spec);
        StructType schema = input.schema();
        InputLayout layout = layout(schema, spec);
        StructType outSchema = outputSchema(schema.apply(spec.idColumn()).dataType(), spec);
        JavaRDD<InternalRow> rows = SparkInternals.internalRows(input);
        JavaRDD<InternalRow> scored = rows.mapPartitions(new PartitionScorer(spec, layout, stats));
        return SparkInternals.dataFrame(spark, scored, outSchema);
    }

    /** Reads the model's config.json through Hadoop's file system on the driver: a missing model fails here. */
    static ModelConfig checkModel(ScoringSpec spec) {
        String config = spec.modelUri().replaceAll("/+$", "") + "/config.json";
        Configuration conf = ModelFiles.hadoopConf(spec.hadoopConf());
        try {
            Path path = new Path(config);
            FileSystem fs = path.getFileSystem(conf);
            if (!fs.exists(path)) {
                throw new IllegalArgumentException("model " + spec.modelUri() + " has no config.json (looked for "
                        + config + ")");
            }
            try (InputStream in = fs.open(path)) {
                return ModelConfig.parse(new ObjectMapper().readTree(in), config);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model " + config + ": " + e.getMessage(), e);
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    static InputLayout layout(StructType schema, ScoringSpec spec) {
        List<String> names = Arrays.asList(schema.fieldNames());
        int corrupt = names.indexOf(CORRUPT_RECORD);
        int id = names.indexOf(spec.idColumn());
        if (id < 0) {
            throw new IllegalArgumentException("input has no column '" + spec.idColumn() + "' (columns: " + names + ")");
        }
        DataType idType = schema.fields()[id].dataType();
        boolean idIsString = idType.equals(DataTypes.StringType);
        if (!idIsString && !idType.equals(DataTypes.LongType) && !idType.equals(DataTypes.IntegerType)) {
            throw new IllegalArgumentException("column '" + spec.idColumn() + "' has type " + idType.simpleString()
                    + ", expected bigint or string");
        }
        if (idType.equals(DataTypes.IntegerType)) {
            throw new IllegalArgumentException("column '" + spec.idColumn() + "' has type int: cast it to bigint");
        }
        int tokens = names.indexOf(spec.tokensColumn());
        boolean tokensAreLong = false;
        if (tokens >= 0) {
            DataType t = schema.fields()[tokens].dataType();
            if (t instanceof ArrayType a && (a.elementType().equals(DataTypes.IntegerType)
                    || a.elementType().equals(DataTypes.LongType))) {
                tokensAreLong = a.elementType().equals(DataTypes.LongType);
            } else {
                throw new IllegalArgumentException("column '" + spec.tokensColumn() + "' has type " + t.simpleString()
                        + ", expected array<int> (or array<bigint>)");
            }
        }
        int text = names.indexOf(spec.textColumn());
        if (text >= 0 && !schema.fields()[text].dataType().equals(DataTypes.StringType)) {
            throw new IllegalArgumentException("column '" + spec.textColumn() + "' has type "
                    + schema.fields()[text].dataType().simpleString() + ", expected string");
        }
        if (tokens < 0 && text < 0) {
            throw new IllegalArgumentException("input has neither a '" + spec.tokensColumn() + "' nor a '"
                    + spec.textColumn() + "' column (columns: " + names + ")");
        }
        return new InputLayout(id, tokens, text, corrupt, idIsString, tokensAreLong);
    }

    /** The scores' schema: the single-process scorer's field names, with the input's id type. */
    public static StructType outputSchema(DataType idType, ScoringSpec spec) {
        List<StructField> fields = new ArrayList<>();
        fields.add(DataTypes.createStructField(ScoreColumns.ID, idType, true));
        fields.add(DataTypes.createStructField(ScoreColumns.NUM_TOKENS, DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField(ScoreColumns.SUM_LOGPROB, DataTypes.DoubleType, true));
        fields.add(DataTypes.createStructField(ScoreColumns.MEAN_NLL, DataTypes.DoubleType, true));
        fields.add(DataTypes.createStructField(ScoreColumns.PERPLEXITY, DataTypes.DoubleType, true));
        if (spec.tokenLogProbs()) {
            fields.add(DataTypes.createStructField(ScoreColumns.TOKEN_LOGPROBS,
                    DataTypes.createArrayType(DataTypes.FloatType, false), true));
        }
        if (spec.topK() > 0) {
            fields.add(DataTypes.createStructField(ScoreColumns.TOP_TOKENS,
                    DataTypes.createArrayType(DataTypes.IntegerType, false), true));
        }
        fields.add(DataTypes.createStructField(ScoreColumns.ERROR, DataTypes.StringType, true));
        return DataTypes.createStructType(fields);
    }
}
