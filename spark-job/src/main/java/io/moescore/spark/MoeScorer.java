package io.moescore.spark;

import io.moescore.backend.Precision;
import io.moescore.batch.ScoreColumns;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;

/**
 * Scores a DataFrame with an MoE model, as a Spark ML {@link Transformer}: every input row comes out once, with all
 * its columns, followed by the single-process scorer's fields ({@code num_tokens}, {@code sum_logprob},
 * {@code mean_nll}, {@code perplexity}, optionally {@code token_logprobs} and {@code top_tokens}, and {@code error},
 * null unless the row could not be scored) or by one struct column holding them ({@link #setOutputStructCol}).
 * Rows are read from {@link #tokensCol} (array&lt;int&gt; or array&lt;bigint&gt;) and, where there is no such column or
 * a row's tokens are null, from {@link #textCol} (string, tokenized with the model's {@code tokenizer.json}).
 *
 * <p>The scoring runs on the same per-executor engines and partition scorer as {@link MoeScoreJob} (which is a
 * main over this class). A wrong column, a missing model or impossible settings throw
 * {@link IllegalArgumentException} naming them when {@link #transform} is called, before any task runs.
 *
 * <p>Saved and loaded with the ML persistence of its parameters ({@link #write()}, {@link #read()},
 * {@link #load}), also as a stage of a saved {@code Pipeline} or {@code PipelineModel}.
 */
public final class MoeScorer extends Transformer implements DefaultParamsWritable {
    private static final long serialVersionUID = 1L;
    private static final String CPU_THREADS_CONF = MoeScoreJob.CONF_PREFIX + "cpuThreads";

    private final String uid;
    private final Param<String> modelPath;
    private final Param<String> tokensCol;
    private final Param<String> textCol;
    private final Param<String> outputStructCol;
    private final Param<String> backend;
    private final Param<String> precision;
    private final BooleanParam deterministic;
    private final BooleanParam allowNonfinite;
    private final IntParam batchTokens;
    private final BooleanParam tokenLogprobs;
    private final IntParam topK;
    private final BooleanParam useStageLevelScheduling;
    private final IntParam executorGpuAmount;
    private final DoubleParam taskGpuAmount;

    public MoeScorer() {
        this(Identifiable.randomUID("moeScorer"));
    }

    /** The constructor ML persistence calls with the saved uid. */
    public MoeScorer(String uid) {
        this.uid = uid;
        modelPath = new Param<>(this, "modelPath", "model directory (config.json, safetensors, tokenizer.json for "
                + "text): a local path present on every node, or any Hadoop file system URI");
        tokensCol = new Param<>(this, "tokensCol", "token ids column, array<int> or array<bigint>");
        textCol = new Param<>(this, "textCol", "text column (string), tokenized with the model's tokenizer where a "
                + "row has no tokens");
        outputStructCol = new Param<>(this, "outputStructCol", "name of one struct column to hold the scores; "
                + "empty: the scores are top-level columns");
        backend = new Param<>(this, "backend", "auto, cpu or cuda",
                ParamValidators.inArray(ScoringSpec.BACKENDS.toArray(String[]::new)));
        precision = new Param<>(this, "precision", "GPU precision: bf16, fp16 or split-bf16",
                ParamValidators.inArray(new String[] {Precision.BF16.userName(), Precision.SPLIT_BF16.userName()}));
        deterministic = new BooleanParam(this, "deterministic", "batch-invariant GPU scores: a row's scores are "
                + "bit-identical whatever it is batched or partitioned with (1-4% slower)");
        allowNonfinite = new BooleanParam(this, "allowNonfinite", "load weights holding NaN or infinities (refused "
                + "by default); rows whose scores come out non-finite get an error");
        batchTokens = new IntParam(this, "batchTokens", "tokens per forward pass", ParamValidators.gtEq(1));
        tokenLogprobs = new BooleanParam(this, "tokenLogprobs", "add token_logprobs: each token's log-prob given "
                + "the ones before it");
        topK = new IntParam(this, "topK", "add top_tokens: the K most likely tokens after each sequence (0: none)",
                ParamValidators.gtEq(0));
        useStageLevelScheduling = new BooleanParam(this, "useStageLevelScheduling", "give the scoring stage its own "
                + "resource profile asking for GPUs (RDD.withResources), so other stages need none");
        executorGpuAmount = new IntParam(this, "executorGpuAmount", "with stage-level scheduling: GPUs of each "
                + "executor started for the scoring stage (needs dynamic allocation); 0: use the GPUs the "
                + "application's executors already have", ParamValidators.gtEq(0));
        taskGpuAmount = new DoubleParam(this, "taskGpuAmount", "with stage-level scheduling: GPUs per scoring task "
                + "(a fraction lets tasks share one)", ParamValidators.gt(0));
        setDefault(tokensCol, ScoreColumns.TOKENS);
        setDefault(textCol, ScoreColumns.TEXT);
        setDefault(outputStructCol, "");
        setDefault(backend, "auto");
        setDefault(precision, Precision.BF16.userName());
        setDefault(deterministic, false);
        setDefault(allowNonfinite, false);
        setDefault(batchTokens, 8192);
        setDefault(tokenLogprobs, false);
        setDefault(topK, 0);
        setDefault(useStageLevelScheduling, false);
        setDefault(executorGpuAmount, 1);
        setDefault(taskGpuAmount, 1.0);
    }

    @Override
    public String uid() {
        return uid;
    }

    // ---- parameters (ML Params discovers them through these public no-argument methods) ----------------------

    public Param<String> modelPath() {
        return modelPath;
    }

    public Param<String> tokensCol() {
        return tokensCol;
    }

    public Param<String> textCol() {
        return textCol;
    }

    public Param<String> outputStructCol() {
        return outputStructCol;
    }

    public Param<String> backend() {
        return backend;
    }

    public Param<String> precision() {
        return precision;
    }

    public BooleanParam deterministic() {
        return deterministic;
    }

    public BooleanParam allowNonfinite() {
        return allowNonfinite;
    }

    public IntParam batchTokens() {
        return batchTokens;
    }

    public BooleanParam tokenLogprobs() {
        return tokenLogprobs;
    }

    public IntParam topK() {
        return topK;
    }

    public BooleanParam useStageLevelScheduling() {
        return useStageLevelScheduling;
    }

    public IntParam executorGpuAmount() {
        return executorGpuAmount;
    }

    public DoubleParam taskGpuAmount() {
        return taskGpuAmount;
    }

    public String getModelPath() {
        return isDefined(modelPath) ? getOrDefault(modelPath) : null;
    }

    public String getTokensCol() {
        return getOrDefault(tokensCol);
    }

    public String getTextCol() {
        return getOrDefault(textCol);
    }

    public String getOutputStructCol() {
        return getOrDefault(outputStructCol);
    }

    public String getBackend() {
        return getOrDefault(backend);
    }

    public String getPrecision() {
        return getOrDefault(precision);
    }

    public boolean getDeterministic() {
        return (Boolean) getOrDefault(deterministic);
    }

    public boolean getAllowNonfinite() {
        return (Boolean) getOrDefault(allowNonfinite);
    }

    public int getBatchTokens() {
        return (Integer) getOrDefault(batchTokens);
    }

    public boolean getTokenLogprobs() {
        return (Boolean) getOrDefault(tokenLogprobs);
    }

    public int getTopK() {
        return (Integer) getOrDefault(topK);
    }

    public boolean getUseStageLevelScheduling() {
        return (Boolean) getOrDefault(useStageLevelScheduling);
    }

    public int getExecutorGpuAmount() {
        return (Integer) getOrDefault(executorGpuAmount);
    }

    public double getTaskGpuAmount() {
        return (Double) getOrDefault(taskGpuAmount);
    }

    public MoeScorer setModelPath(String value) {
        return with(modelPath, value);
    }

    public MoeScorer setTokensCol(String value) {
        return with(tokensCol, value);
    }

    public MoeScorer setTextCol(String value) {
        return with(textCol, value);
    }

    public MoeScorer setOutputStructCol(String value) {
        return with(outputStructCol, value);
    }

    public MoeScorer setBackend(String value) {
        return with(backend, value);
    }

    public MoeScorer setPrecision(String value) {
        return with(precision, value);
    }

    public MoeScorer setDeterministic(boolean value) {
        return with(deterministic, value);
    }

    public MoeScorer setAllowNonfinite(boolean value) {
        return with(allowNonfinite, value);
    }

    public MoeScorer setBatchTokens(int value) {
        return with(batchTokens, value);
    }

    public MoeScorer setTokenLogprobs(boolean value) {
        return with(tokenLogprobs, value);
    }

    public MoeScorer setTopK(int value) {
        return with(topK, value);
    }

    public MoeScorer setUseStageLevelScheduling(boolean value) {
        return with(useStageLevelScheduling, value);
    }

    public MoeScorer setExecutorGpuAmount(int value) {
        return with(executorGpuAmount, value);
    }

    public MoeScorer setTaskGpuAmount(double value) {
        return with(taskGpuAmount, value);
    }

    private <T> MoeScorer with(Param<T> param, T value) {
        set(param, value);
        return this;
    }

    // ---- Transformer -------------------------------------------------------------------------------------------

    /** The score columns this scorer adds, in order (inside the struct column when one is set). */
    public List<String> scoreColumns() {
        return DatasetScorer.scoreFields(getTokenLogprobs(), getTopK()).stream().map(StructField::name).toList();
    }

    @Override
    public StructType transformSchema(StructType schema) {
        requireModelPath();
        return DatasetScorer.outputSchema(schema, getTokensCol(), getTextCol(), getTokenLogprobs(), getTopK(),
                scoresStruct());
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        return score(dataset, null);
    }

    /** {@link #transform}, with every task reporting what it scored into {@code stats} (null: no reports). */
    Dataset<Row> score(Dataset<?> dataset, CollectionAccumulator<TaskStats> stats) {
        requireModelPath();
        SparkSession spark = dataset.sparkSession();
        ResourceProfile profile = getUseStageLevelScheduling()
                ? GpuStageProfile.of(getExecutorGpuAmount(), getTaskGpuAmount(), spark.sparkContext().getConf())
                : null;
        return DatasetScorer.score(dataset.toDF(), spec(spark), scoresStruct(), profile, stats);
    }

    private ScoringSpec spec(SparkSession spark) {
        Map<String, String> hadoop = new HashMap<>();
        for (Map.Entry<String, String> e : spark.sparkContext().hadoopConfiguration()) {
            hadoop.put(e.getKey(), e.getValue());
        }
        return new ScoringSpec(ModelFiles.forExecutors(getModelPath()), getBackend(), getPrecision(), getDeterministic(),
                getBatchTokens(), getTokenLogprobs(), getTopK(), getTokensCol(), getTextCol(),
                spark.sparkContext().getConf().getInt(CPU_THREADS_CONF, 0), hadoop, getAllowNonfinite());
    }

    private String scoresStruct() {
        String name = getOutputStructCol();
        return name.isEmpty() ? null : name;
    }

    private void requireModelPath() {
        String path = getModelPath();
        if (path == null || path.isBlank()) {
            throw new IllegalArgumentException("MoeScorer " + uid + ": modelPath is not set (setModelPath)");
        }
    }

    @Override
    public MoeScorer copy(ParamMap extra) {
        return defaultCopy(extra);
    }

    // ---- ML persistence ----------------------------------------------------------------------------------------

    /** The reader of a saved MoeScorer; {@code Pipeline} and {@code PipelineModel} loading find it by reflection. */
    public static MLReader<MoeScorer> read() {
        return new DefaultParamsReader<>();
    }

    public static MoeScorer load(String path) {
        return read().load(path);
    }
}
