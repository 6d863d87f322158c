package io.moescore.spark;

import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.ModelJson;
import io.moescore.model.TextTokenizer;
import io.moescore.batch.ScoreColumns;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * The one scoring path of {@link MoeScorer} and so of {@link MoeScoreJob}: checks the input's columns, the model's
 * config and (for text input) its tokenizer on the driver (so a wrong column, a missing model or a malformed
 * tokenizer fails before any task runs), then maps every partition
 * through {@link PartitionScorer} on the executors' shared engines. The result has one row per input row, same
 * partitioning and order: every input column, then the score columns (or one struct column holding them).
 */
public final class DatasetScorer {
    /** The column Spark's JSON reader fills for malformed lines (PERMISSIVE mode). */
    public static final String CORRUPT_RECORD = "_corrupt_record";

    private DatasetScorer() {
    }

    /**
     * The scores of {@code input} (lazy).
     *
     * @param scoresStruct the name of one struct column to hold the scores, or null for top-level score columns
     * @param gpuProfile   the resource profile of the scoring stage (stage-level scheduling), or null for the default
     * @param reports      where tasks report what they scored, or null
     */
    static Dataset<Row> score(Dataset<Row> input, ScoringSpec spec, String scoresStruct, ResourceProfile gpuProfile,
                              TaskReports reports) {
        checkModel(spec);
        return score(input, spec, scoresStruct, gpuProfile, reports, PartitionScorer.EXECUTOR_ENGINES);
    }

    /**
     * {@link #score(Dataset, ScoringSpec, String, ResourceProfile, TaskReports)} with batches scored by
     * {@code engines} (the model is not read here). A columnar scan's batches are scored as they are
     * ({@link PartitionScorer.Columnar}); any other input row by row ({@link PartitionScorer.Rows}).
     */
    static Dataset<Row> score(Dataset<Row> input, ScoringSpec spec, String scoresStruct, ResourceProfile gpuProfile,
                              TaskReports reports, PartitionScorer.EngineSource engines) {
        StructType outSchema = outputSchema(input.schema(), spec.tokensColumn(), spec.textColumn(),
                spec.settings().tokenLogProbs(), spec.settings().topK(), scoresStruct);
        InputLayout layout = layout(input.schema(), spec.tokensColumn(), spec.textColumn());
        checkTokenizer(spec, layout);
        JavaRDD<ColumnarBatch> batches = SparkInternals.columnarBatches(input);
        JavaRDD<InternalRow> scored = batches != null
                ? batches.mapPartitions(new PartitionScorer.Columnar(spec, layout, scoresStruct, reports, engines))
                : SparkInternals.internalRows(input)
                        .mapPartitions(new PartitionScorer.Rows(spec, layout, scoresStruct, reports, engines));
        if (gpuProfile != null) {
            scored = withProfile(scored, gpuProfile);
        }
        return SparkInternals.dataFrame(input.sparkSession(), scored, outSchema);
    }

    private static JavaRDD<InternalRow> withProfile(JavaRDD<InternalRow> rdd, ResourceProfile profile) {
        try {
            return rdd.withResources(profile);
        } catch (Exception e) { // SparkException (checked, undeclared): this cluster manager or setup refuses it
            throw new IllegalArgumentException("Spark refused the scoring stage's resource profile " + profile
                    + " (MoeScorer useStageLevelScheduling): " + e.getMessage(), e);
        }
    }

    /** Reads the model's config.json through Hadoop's file system on the driver: a missing model fails here. */
    public static ModelConfig checkModel(ScoringSpec spec) {
        String config = spec.modelUri().replaceAll("/+$", "") + "/config.json";
        Configuration conf = ModelFiles.hadoopConf(spec.hadoopConf());
        try {
            Path path = new Path(config);
            FileSystem fs = path.getFileSystem(conf);
            if (!fs.exists(path.getParent())) {
                throw new IllegalArgumentException("model directory " + spec.modelUri() + " does not exist");
            }
            if (!fs.exists(path)) {
                throw new IllegalArgumentException("model " + spec.modelUri() + " has no config.json (looked for "
                        + config + ")");
            }
            byte[] bytes = ModelFiles.readModelFile(spec.modelUri(), ModelConfig.FILE, conf);
            if (bytes == null) {
                throw new IllegalArgumentException("model " + spec.modelUri() + " has no config.json (looked for "
                        + config + ")");
            }
            return ModelConfig.parse(ModelJson.parse(new String(bytes, StandardCharsets.UTF_8), "model config " + config),
                    config);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model " + config + ": " + e.getMessage(), e);
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /**
     * Loads the model's tokenizer.json once on the driver, for an input with a text column, so a malformed one fails
     * here naming the file, before any task (on executors each row would fail on its own). A missing one fails here
     * only where text is the input's only column of tokens; beside a tokens column, rows with null tokens get an error.
     */
    static void checkTokenizer(ScoringSpec spec, InputLayout layout) {
        if (layout.text() < 0) {
            return;
        }
        String file = spec.modelUri().replaceAll("/+$", "") + "/" + TextTokenizer.FILE;
        byte[] bytes = ModelFiles.readModelFile(spec.modelUri(), TextTokenizer.FILE,
                ModelFiles.hadoopConf(spec.hadoopConf()));
        if (bytes == null) {
            if (layout.tokens() < 0) {
                throw new IllegalArgumentException("model " + spec.modelUri() + " has no " + TextTokenizer.FILE
                        + ": the text column '" + spec.textColumn() + "' needs the model's tokenizer");
            }
            return;
        }
        try (TextTokenizer tokenizer = TextTokenizer.parse(bytes, file)) {
            tokenizer.encode("moescore");
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** Where the scorer finds tokens or text; throws naming the column when neither is usable. */
    static InputLayout layout(StructType schema, String tokensColumn, String textColumn) {
        List<String> names = Arrays.asList(schema.fieldNames());
        int tokens = names.indexOf(tokensColumn);
        boolean tokensAreLong = false;
        if (tokens >= 0) {
            DataType t = schema.fields()[tokens].dataType();
            if (t instanceof ArrayType a && (a.elementType().equals(DataTypes.IntegerType)
                    || a.elementType().equals(DataTypes.LongType))) {
                tokensAreLong = a.elementType().equals(DataTypes.LongType);
            } else {
                throw new IllegalArgumentException("column '" + tokensColumn + "' has type " + t.simpleString()
                        + ", expected array<int> (or array<bigint>)");
            }
        }
        int text = names.indexOf(textColumn);
        if (text >= 0 && !schema.fields()[text].dataType().equals(DataTypes.StringType)) {
            throw new IllegalArgumentException("column '" + textColumn + "' has type "
                    + schema.fields()[text].dataType().simpleString() + ", expected string");
        }
        if (tokens < 0 && text < 0) {
            throw new IllegalArgumentException("input has neither a '" + tokensColumn + "' nor a '" + textColumn
                    + "' column (columns: " + names + ")");
        }
        int corrupt = names.indexOf(CORRUPT_RECORD);
        if (corrupt >= 0 && !schema.fields()[corrupt].dataType().equals(DataTypes.StringType)) {
            corrupt = -1;  // not Spark's marker of malformed records: an ordinary column
        }
        return new InputLayout(tokens, text, corrupt, tokensAreLong);
    }

    /**
     * The scored rows' schema: the input's columns, then {@link #scoreFields} (or one struct column of them named
     * {@code scoresStruct}). Throws naming the column when the input cannot be scored or already has an output column.
     */
    static StructType outputSchema(StructType input, String tokensColumn, String textColumn, boolean tokenLogProbs,
                                   int topK, String scoresStruct) {
        layout(input, tokensColumn, textColumn);
        List<StructField> added = scoresStruct == null ? scoreFields(tokenLogProbs, topK)
                : List.of(DataTypes.createStructField(scoresStruct,
                        DataTypes.createStructType(scoreFields(tokenLogProbs, topK)), false));
        List<String> names = Arrays.asList(input.fieldNames());
        List<StructField> fields = new ArrayList<>(Arrays.asList(input.fields()));
        for (StructField f : added) {
            if (names.contains(f.name())) {
                throw new IllegalArgumentException("input already has a column '" + f.name() + "', which the scores "
                        + "would write: rename or drop it"
                        + (scoresStruct == null ? ", or put the scores in one struct column (outputStructCol)" : ""));
            }
            fields.add(f);
        }
        return DataTypes.createStructType(fields);
    }

    /** The score columns: the single-process scorer's output fields less {@code id}, in its order. */
    public static List<StructField> scoreFields(boolean tokenLogProbs, int topK) {
        List<StructField> fields = new ArrayList<>();
        fields.add(DataTypes.createStructField(ScoreColumns.NUM_TOKENS, DataTypes.IntegerType, false));
        fields.add(DataTypes.createStructField(ScoreColumns.SUM_LOGPROB, DataTypes.DoubleType, true));
        fields.add(DataTypes.createStructField(ScoreColumns.MEAN_NLL, DataTypes.DoubleType, true));
        fields.add(DataTypes.createStructField(ScoreColumns.PERPLEXITY, DataTypes.DoubleType, true));
        if (tokenLogProbs) {
            fields.add(DataTypes.createStructField(ScoreColumns.TOKEN_LOGPROBS,
                    DataTypes.createArrayType(DataTypes.FloatType, false), true));
        }
        if (topK > 0) {
            fields.add(DataTypes.createStructField(ScoreColumns.TOP_TOKENS,
                    DataTypes.createArrayType(DataTypes.IntegerType, false), true));
        }
        fields.add(DataTypes.createStructField(ScoreColumns.ERROR, DataTypes.StringType, true));
        return fields;
    }
}
