package io.moescore.spark;

import io.moescore.backend.MemoryBudget;
import io.moescore.engine.DeviceMemoryPlan;
import io.moescore.engine.ExpertPlacement;
import io.moescore.engine.UnsupportedModelException;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.ModelJson;
import io.moescore.model.TextTokenizer;
import io.moescore.batch.ScoreColumns;
import io.moescore.score.LongRows;
import io.moescore.score.ScoreSettings;
import io.moescore.sparse.SparsityPattern;
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

    /** {@link #plan(Dataset, ScoringSpec, String, ResourceProfile, TaskReports, PartitionScorer.EngineSource)} on the
     * executors' shared engines, the model checked first. */
    static Plan<?> plan(Dataset<Row> input, ScoringSpec spec, ResourceProfile gpuProfile, TaskReports reports) {
        checkModel(spec);
        return plan(input, spec, null, gpuProfile, reports, PartitionScorer.EXECUTOR_ENGINES);
    }

    /**
     * {@link #score(Dataset, ScoringSpec, String, ResourceProfile, TaskReports)} with batches scored by
     * {@code engines} (the model is not read here). A columnar scan's batches are scored as they are
     * ({@link PartitionScorer.Columnar}); any other input row by row ({@link PartitionScorer.Rows}).
     */
    static Dataset<Row> score(Dataset<Row> input, ScoringSpec spec, String scoresStruct, ResourceProfile gpuProfile,
                              TaskReports reports, PartitionScorer.EngineSource engines) {
        Plan<?> plan = plan(input, spec, scoresStruct, gpuProfile, reports, engines);
        return SparkInternals.dataFrame(input.sparkSession(), plan.rows(), plan.schema());
    }

    /**
     * What scoring {@code input} runs on the executors, checked as {@link #score} checks it but not yet made rows:
     * the direct writers ({@link VectorOutput}) take each partition's scores batch by batch from it.
     */
    static Plan<?> plan(Dataset<Row> input, ScoringSpec spec, String scoresStruct, ResourceProfile gpuProfile,
                        TaskReports reports, PartitionScorer.EngineSource engines) {
        StructType outSchema = outputSchema(input.schema(), spec, scoresStruct);
        InputLayout layout = layout(input.schema(), spec);
        checkTokenizer(spec, layout);
        JavaRDD<ColumnarBatch> batches = SparkInternals.columnarBatches(input);
        return batches != null
                ? new Plan<>(batches, new PartitionScorer.Columnar(spec, layout, scoresStruct, reports, engines),
                        outSchema, gpuProfile)
                : new Plan<>(SparkInternals.internalRows(input),
                        new PartitionScorer.Rows(spec, layout, scoresStruct, reports, engines), outSchema, gpuProfile);
    }

    /**
     * A DataFrame's scoring on the executors: its partitions (a columnar scan's column batches, else rows), the
     * scorer of each, the scored rows' schema, and the scoring stage's resource profile (or null).
     */
    record Plan<T>(JavaRDD<T> input, PartitionScorer<T> scorer, StructType schema, ResourceProfile profile) {
        /** The scored rows: every input column, then the scores. */
        JavaRDD<InternalRow> rows() {
            JavaRDD<InternalRow> scored = input.mapPartitions(scorer);
            return profile == null ? scored : withProfile(scored, profile);
        }

        /**
         * Each partition's scores, batch by batch, through {@code f} (in the scoring stage). An input of no
         * partitions (an empty file) is one empty partition, as Spark's own file writer makes it, so that a writer
         * still writes the output's one empty file with its schema.
         */
        <R> JavaRDD<R> mapScored(ScoredFunction<R> f) {
            PartitionScorer<T> s = scorer;
            JavaRDD<T> parts = input.getNumPartitions() > 0 ? input
                    : org.apache.spark.api.java.JavaSparkContext.fromSparkContext(input.context())
                            .parallelize(java.util.List.<T>of(), 1);
            JavaRDD<R> mapped = parts.mapPartitions(it -> f.apply(s.scored(it)));
            return profile == null ? mapped : withProfile(mapped, profile);
        }
    }

    /** What a task does with its partition's scores. */
    interface ScoredFunction<R> extends java.io.Serializable {
        java.util.Iterator<R> apply(java.util.Iterator<PartitionScorer.Scored> scored) throws Exception;
    }

    private static <R> JavaRDD<R> withProfile(JavaRDD<R> rdd, ResourceProfile profile) {
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
            ModelConfig parsed = ModelConfig.parse(ModelJson.parse(new String(bytes, StandardCharsets.UTF_8),
                    "model config " + config), config);
            List<String> missing = spec.settings().unsupported(parsed);
            if (!missing.isEmpty()) {
                throw new IllegalArgumentException("backend '" + spec.settings().backend() + "' cannot run the "
                        + parsed.family().modelType + " model " + spec.modelUri() + ": it lacks "
                        + String.join("; ", missing) + " (backend 'cpu' runs it)");
            }
            spec.settings().rowLimits(parsed.maxPositions());  // a stride the model's context cannot take
            spec.settings().checkRouting(parsed);  // a --routing spec the model cannot take
            ExpertPlacement placement = spec.settings().checkPlacement(parsed);  // a plan of other layers or experts
            if (spec.settings().deviceMemory() > 0) {
                checkDeviceMemory(parsed, spec, placement, conf);
            }
            return parsed;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model " + config + ": " + e.getMessage(), e);
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /**
     * A {@code --device-memory} cap too small for the model on any executor, refused on the driver before any task
     * by the executors' own rule ({@link DeviceMemoryPlan}, per device over {@code --devices} as {@code placement}
     * spreads the experts): the plan at the least any backend places, 16-bit weights with sparse experts packed as
     * the checkpoint's sparsity.json names them (without one, at the smallest pattern's bytes), each device with a
     * memory of its own (as GPUs have; the CPU backend's logical devices share the heap, a stricter check), so a
     * refusal here is never wrong; each executor checks its own backends' plan exactly when it loads the model.
     */
    static void checkDeviceMemory(ModelConfig c, ScoringSpec spec, ExpertPlacement placement, Configuration conf) {
        byte[] manifest = ModelFiles.readModelFile(spec.modelUri(), SparsityPattern.MANIFEST, conf);
        String where = spec.modelUri() + "/" + SparsityPattern.MANIFEST;
        SparsityPattern stored = manifest == null ? SparsityPattern.smallest() : SparsityPattern.ofManifest(
                ModelJson.parse(new String(manifest, StandardCharsets.UTF_8), "sparsity manifest " + where), where);
        MemoryBudget[] any = new MemoryBudget[placement.devices()];
        Arrays.fill(any, new MemoryBudget(Long.MAX_VALUE, 2, true, "any executor's device"));
        try {
            DeviceMemoryPlan.of(c, stored, any, placement, spec.settings().deviceMemory(), "model " + spec.modelUri());
        } catch (UnsupportedModelException e) {
            throw new IllegalArgumentException("model " + spec.modelUri() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Loads the model's tokenizer.json once on the driver, for an input with a text column, so a malformed one fails
     * here naming the file, before any task (on executors each row would fail on its own). A missing one fails here
     * only where text is the input's only column of tokens; beside a tokens column, rows with null tokens get an error.
     */
    static void checkTokenizer(ScoringSpec spec, InputLayout layout) {
        boolean textPairs = layout.continuations() && (layout.context().kind() != InputLayout.Kind.INTS
                && layout.context().kind() != InputLayout.Kind.LONGS);
        if (layout.text() < 0 && !textPairs) {
            return;
        }
        String file = spec.modelUri().replaceAll("/+$", "") + "/" + TextTokenizer.FILE;
        byte[] bytes = ModelFiles.readModelFile(spec.modelUri(), TextTokenizer.FILE,
                ModelFiles.hadoopConf(spec.hadoopConf()));
        if (bytes == null) {
            if (layout.context() != null && layout.context().kind() == InputLayout.Kind.TEXT) {
                throw new IllegalArgumentException("model " + spec.modelUri() + " has no " + TextTokenizer.FILE
                        + ": the text columns '" + spec.contextColumn() + "' and '" + spec.continuationColumn()
                        + "' need the model's tokenizer");
            }
            if (layout.tokens() < 0 && !layout.continuations()) {
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

    /**
     * Where the scorer finds its input: a context and a continuation column where the input has either (both are
     * then needed: continuation scoring; tokens and text are not read), else tokens or text. Throws naming the
     * column that is missing or of a type that cannot be read.
     */
    static InputLayout layout(StructType schema, ScoringSpec spec) {
        InputLayout.Part context = part(schema, spec.contextColumn());
        InputLayout.Part continuation = part(schema, spec.continuationColumn());
        if (context == null && continuation == null) {
            return layout(schema, spec.tokensColumn(), spec.textColumn());
        }
        List<String> names = Arrays.asList(schema.fieldNames());
        if (context == null || continuation == null) {
            throw new IllegalArgumentException("input has a '" + (context == null ? spec.continuationColumn()
                    : spec.contextColumn()) + "' column but no '" + (context == null ? spec.contextColumn()
                    : spec.continuationColumn()) + "' column: continuation scoring needs both (columns: " + names
                    + ")");
        }
        boolean contextText = context.kind() == InputLayout.Kind.TEXT;
        boolean continuationText = continuation.kind() == InputLayout.Kind.TEXT;
        if (context.kind() != InputLayout.Kind.VARIANT && continuation.kind() != InputLayout.Kind.VARIANT
                && contextText != continuationText) {
            throw new IllegalArgumentException("columns '" + spec.contextColumn() + "' (" + typeOf(schema, context)
                    + ") and '" + spec.continuationColumn() + "' (" + typeOf(schema, continuation) + ") must both "
                    + "be text or both token ids");
        }
        return new InputLayout(-1, -1, corruptRecord(schema), false, context, continuation);
    }

    /** A continuation-scoring column of the input, or null where it has none; throws naming a type not read. */
    private static InputLayout.Part part(StructType schema, String name) {
        int ordinal = Arrays.asList(schema.fieldNames()).indexOf(name);
        if (ordinal < 0) {
            return null;
        }
        DataType t = schema.fields()[ordinal].dataType();
        InputLayout.Kind kind = t.equals(DataTypes.StringType) ? InputLayout.Kind.TEXT
                : t.equals(DataTypes.VariantType) ? InputLayout.Kind.VARIANT
                : t instanceof ArrayType a && a.elementType().equals(DataTypes.IntegerType) ? InputLayout.Kind.INTS
                : t instanceof ArrayType a && a.elementType().equals(DataTypes.LongType) ? InputLayout.Kind.LONGS
                : null;
        if (kind == null) {
            throw new IllegalArgumentException("column '" + name + "' has type " + t.simpleString()
                    + ", expected string (text), or array<int> or array<bigint> (token ids)");
        }
        return new InputLayout.Part(ordinal, kind, name);
    }

    private static String typeOf(StructType schema, InputLayout.Part part) {
        return schema.fields()[part.ordinal()].dataType().simpleString();
    }

    /** The ordinal of Spark's {@code _corrupt_record} column (JSON input), or -1. */
    private static int corruptRecord(StructType schema) {
        int corrupt = Arrays.asList(schema.fieldNames()).indexOf(CORRUPT_RECORD);
        if (corrupt >= 0 && !schema.fields()[corrupt].dataType().equals(DataTypes.StringType)) {
            return -1;  // not Spark's marker of malformed records: an ordinary column
        }
        return corrupt;
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
        return new InputLayout(tokens, text, corruptRecord(schema), tokensAreLong);
    }

    /** The score columns of rows in {@code layout} scored with {@code settings}. */
    static ScoreColumns.Layout scoreLayout(ScoreSettings settings, InputLayout layout) {
        return new ScoreColumns.Layout(settings.tokenLogProbs(), settings.topK() > 0,
                settings.longRows() != LongRows.ERROR, layout.continuations());
    }

    /**
     * The scored rows' schema: the input's columns, then {@link #scoreFields} (or one struct column of them named
     * {@code scoresStruct}). Throws naming the column when the input cannot be scored or already has an output column.
     */
    static StructType outputSchema(StructType input, ScoringSpec spec, String scoresStruct) {
        ScoreColumns.Layout scores = scoreLayout(spec.settings(), layout(input, spec));
        List<StructField> added = scoresStruct == null ? scoreFields(scores)
                : List.of(DataTypes.createStructField(scoresStruct,
                        DataTypes.createStructType(scoreFields(scores)), false));
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

    /** The score columns of rows of tokens or text: the single-process scorer's output fields less {@code id}. */
    public static List<StructField> scoreFields(boolean tokenLogProbs, int topK) {
        return scoreFields(new ScoreColumns.Layout(tokenLogProbs, topK > 0, false, false));
    }

    /** The score columns {@code layout} lists, in its order, as the single-process scorer writes them. */
    public static List<StructField> scoreFields(ScoreColumns.Layout layout) {
        List<StructField> fields = new ArrayList<>();
        for (String name : layout.names()) {
            fields.add(switch (name) {
                case ScoreColumns.NUM_TOKENS, ScoreColumns.NUM_WINDOWS, ScoreColumns.CONTINUATION_TOKENS ->
                        DataTypes.createStructField(name, DataTypes.IntegerType, false);
                case ScoreColumns.SUM_LOGPROB, ScoreColumns.MEAN_NLL, ScoreColumns.PERPLEXITY,
                     ScoreColumns.CONTINUATION_LOGPROB -> DataTypes.createStructField(name, DataTypes.DoubleType, true);
                case ScoreColumns.TOKEN_LOGPROBS -> DataTypes.createStructField(name,
                        DataTypes.createArrayType(DataTypes.FloatType, false), true);
                case ScoreColumns.TOP_TOKENS -> DataTypes.createStructField(name,
                        DataTypes.createArrayType(DataTypes.IntegerType, false), true);
                case ScoreColumns.TRUNCATED -> DataTypes.createStructField(name, DataTypes.BooleanType, false);
                case ScoreColumns.IS_GREEDY -> DataTypes.createStructField(name, DataTypes.BooleanType, true);
                case ScoreColumns.ERROR -> DataTypes.createStructField(name, DataTypes.StringType, true);
                default -> throw new IllegalStateException("no Spark type for column " + name);
            });
        }
        return fields;
    }
}
