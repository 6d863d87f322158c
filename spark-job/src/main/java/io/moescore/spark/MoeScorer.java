package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import java.io.Serializable;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.SparkConf;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWriter;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.ml.util.MLWriter;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import scala.runtime.AbstractFunction1;

/**
 * Scores a DataFrame with an MoE model, as a Spark ML {@link Transformer}: every input row comes out once, with all
 * its columns, followed by the single-process scorer's fields ({@code num_tokens}, {@code sum_logprob},
 * {@code mean_nll}, {@code perplexity}, optionally {@code token_logprobs} and {@code top_tokens}, and {@code error},
 * null unless the row could not be scored) or by one struct column holding them ({@link #setOutputStructCol}).
 * Rows are read from {@link #tokensCol} (array&lt;int&gt; or array&lt;bigint&gt;) and, where there is no such column or
 * a row's tokens are null, from {@link #textCol} (string, tokenized with the model's {@code tokenizer.json}).
 * A DataFrame with {@link #contextCol} and {@link #continuationCol} columns (text, or token ids) is scored for
 * continuations instead (lm-evaluation-harness's {@code loglikelihood}): the scores add
 * {@code continuation_logprob}, {@code continuation_tokens} and {@code is_greedy}. With {@link #longRows} stride or
 * truncate, rows longer than the model's context are scored (not refused) and the scores add {@code num_windows}
 * and {@code truncated}.
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
    /**
     * Settings whose Param, when not set, gives way to {@code spark.moescore.KEY} conf: executor resources, which
     * belong to the cluster more than to the pipeline.
     */
    private static final Set<Setting<?>> CONF_WHEN_UNSET = Set.of(ScoreSettings.CPU_THREADS);

    private final String uid;
    private final Param<String> modelPath;
    private final Param<String> tokensCol;
    private final Param<String> textCol;
    private final Param<String> contextCol;
    private final Param<String> continuationCol;
    private final Param<String> outputStructCol;
    /** One Param per scoring setting ({@link ScoreSettings#ALL}), made from it, by its key (its name). */
    private final Map<String, Param<?>> settingParams = new LinkedHashMap<>();
    private final BooleanParam useStageLevelScheduling;
    private final IntParam executorGpuAmount;
    private final DoubleParam taskGpuAmount;
    private transient Param<?>[] params;

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
        contextCol = new Param<>(this, "contextCol", "continuation scoring's context column (string, or token ids "
                + "array<int> or array<bigint>); a DataFrame with it and continuationCol is scored for continuations");
        continuationCol = new Param<>(this, "continuationCol", "continuation scoring's continuation column, of the "
                + "context's kind");
        outputStructCol = new Param<>(this, "outputStructCol", "name of one struct column to hold the scores; "
                + "empty: the scores are top-level columns");
        for (Setting<?> s : ScoreSettings.ALL) {
            settingParams.put(s.key(), newSettingParam(s));
        }
        useStageLevelScheduling = new BooleanParam(this, "useStageLevelScheduling", "give the scoring stage its own "
                + "resource profile asking for GPUs (RDD.withResources), so other stages need none");
        executorGpuAmount = new IntParam(this, "executorGpuAmount", "with stage-level scheduling: GPUs of each "
                + "executor started for the scoring stage (needs dynamic allocation); 0: use the GPUs the "
                + "application's executors already have", ParamValidators.gtEq(0));
        taskGpuAmount = new DoubleParam(this, "taskGpuAmount", "with stage-level scheduling: GPUs per scoring task "
                + "(a fraction lets tasks share one)", ParamValidators.gt(0));
        setDefault(tokensCol, ScoreColumns.TOKENS);
        setDefault(textCol, ScoreColumns.TEXT);
        setDefault(contextCol, ScoreColumns.CONTEXT);
        setDefault(continuationCol, ScoreColumns.CONTINUATION);
        setDefault(outputStructCol, "");
        ScoreSettings.DEFAULTS.values().forEach(this::setSettingDefault);
        setDefault(useStageLevelScheduling, false);
        setDefault(executorGpuAmount, 1);
        setDefault(taskGpuAmount, 1.0);
    }

    /** The Param of a setting: an IntParam, a BooleanParam, or a String Param holding the value as text. */
    private Param<?> newSettingParam(Setting<?> s) {
        String doc = s.description() + (CONF_WHEN_UNSET.contains(s)
                ? " (not set: " + CommandSettings.confKey(s) + " conf)" : "");
        if (s.type() == Integer.class) {
            return new IntParam(this, s.key(), doc, new SettingCheck<>(s.key()));
        }
        if (s.type() == Boolean.class) {
            return new BooleanParam(this, s.key(), doc);
        }
        return new Param<String>(this, s.key(), doc, new SettingCheck<>(s.key()));
    }

    /** A value as its setting's Param holds it (the text form where the Param is a String Param). */
    private static <T> Object paramValue(Setting<T> s, Object value) {
        @SuppressWarnings("unchecked")
        T v = (T) value;
        return s.type() == Integer.class || s.type() == Boolean.class ? v : s.format(v);
    }

    @SuppressWarnings("unchecked")
    private void setSettingDefault(Setting<?> s, Object value) {
        setDefault((Param<Object>) settingParams.get(s.key()), paramValue(s, value));
    }

    /** Checks a setting's value when its Param is set, throwing the setting's own message (Serializable). */
    private static final class SettingCheck<T> extends AbstractFunction1<T, Object> implements Serializable {
        private static final long serialVersionUID = 1L;
        private final String key;

        SettingCheck(String key) {
            this.key = key;
        }

        @Override
        public Object apply(T value) {
            setting(key).valueOf(value, "MoeScorer param " + key);
            return true;
        }
    }

    private static Setting<?> setting(String key) {
        return ScoreSettings.ALL.stream().filter(s -> s.key().equals(key)).findFirst().orElseThrow();
    }

    /**
     * Spark ML lists a stage's Params by reflection over its public no-argument methods returning a Param; a
     * setting's Param is listed also where no such method was written for it (a setting added to
     * {@link ScoreSettings} is a Param here at once, set through {@link #set(Param, Object)} or
     * {@link #setSettings}).
     */
    @Override
    public Param<?>[] params() {
        if (params == null) {
            Map<String, Param<?>> byName = new java.util.TreeMap<>();
            for (Param<?> p : super.params()) {
                byName.put(p.name(), p);
            }
            settingParams.values().forEach(p -> byName.putIfAbsent(p.name(), p));
            params = byName.values().toArray(Param<?>[]::new);
        }
        return params;
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

    public Param<String> contextCol() {
        return contextCol;
    }

    public Param<String> continuationCol() {
        return continuationCol;
    }

    public Param<String> outputStructCol() {
        return outputStructCol;
    }

    public Param<String> backend() {
        return settingParam(ScoreSettings.BACKEND);
    }

    public Param<String> precision() {
        return settingParam(ScoreSettings.PRECISION);
    }

    public BooleanParam deterministic() {
        return settingParam(ScoreSettings.DETERMINISTIC);
    }

    public IntParam batchTokens() {
        return settingParam(ScoreSettings.BATCH_TOKENS);
    }

    public BooleanParam tokenLogprobs() {
        return settingParam(ScoreSettings.TOKEN_LOGPROBS);
    }

    public IntParam topK() {
        return settingParam(ScoreSettings.TOP_K);
    }

    public IntParam cpuThreads() {
        return settingParam(ScoreSettings.CPU_THREADS);
    }

    public BooleanParam allowNonfinite() {
        return settingParam(ScoreSettings.ALLOW_NONFINITE);
    }

    public Param<String> longRows() {
        return settingParam(ScoreSettings.LONG_ROWS);
    }

    public IntParam stride() {
        return settingParam(ScoreSettings.STRIDE);
    }

    public Param<String> routing() {
        return settingParam(ScoreSettings.ROUTING);
    }

    @SuppressWarnings("unchecked")
    private <P extends Param<?>> P settingParam(Setting<?> setting) {
        return (P) settingParams.get(setting.key());
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

    public String getContextCol() {
        return getOrDefault(contextCol);
    }

    public String getContinuationCol() {
        return getOrDefault(continuationCol);
    }

    public String getOutputStructCol() {
        return getOrDefault(outputStructCol);
    }

    public String getBackend() {
        return getOrDefault(backend());
    }

    public String getPrecision() {
        return getOrDefault(precision());
    }

    public boolean getDeterministic() {
        return (Boolean) getOrDefault(deterministic());
    }

    public int getBatchTokens() {
        return (Integer) getOrDefault(batchTokens());
    }

    public boolean getTokenLogprobs() {
        return (Boolean) getOrDefault(tokenLogprobs());
    }

    public int getTopK() {
        return (Integer) getOrDefault(topK());
    }

    public boolean getAllowNonfinite() {
        return (Boolean) getOrDefault(allowNonfinite());
    }

    public String getLongRows() {
        return getOrDefault(longRows());
    }

    public int getStride() {
        return (Integer) getOrDefault(stride());
    }

    public String getRouting() {
        return getOrDefault(routing());
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

    public MoeScorer setContextCol(String value) {
        return with(contextCol, value);
    }

    public MoeScorer setContinuationCol(String value) {
        return with(continuationCol, value);
    }

    public MoeScorer setOutputStructCol(String value) {
        return with(outputStructCol, value);
    }

    public MoeScorer setBackend(String value) {
        return with(backend(), value);
    }

    public MoeScorer setPrecision(String value) {
        return with(precision(), value);
    }

    public MoeScorer setDeterministic(boolean value) {
        return with(deterministic(), value);
    }

    public MoeScorer setBatchTokens(int value) {
        return with(batchTokens(), value);
    }

    public MoeScorer setTokenLogprobs(boolean value) {
        return with(tokenLogprobs(), value);
    }

    public MoeScorer setTopK(int value) {
        return with(topK(), value);
    }

    /** Load weights holding NaN or infinities (refused by default); non-finite scores get a row error. */
    public MoeScorer setAllowNonfinite(boolean value) {
        return with(allowNonfinite(), value);
    }

    /** Rows longer than the model's context: error (the default), truncate or stride ({@link #setStride}). */
    public MoeScorer setLongRows(String value) {
        return with(longRows(), value);
    }

    /** With long rows strided: tokens each window starts after the one before (0: half the context). */
    public MoeScorer setStride(int value) {
        return with(stride(), value);
    }

    /** The MoE layers' router, a --routing spec ({@code model}: the model's own; see ScoreSettings.ROUTING). */
    public MoeScorer setRouting(String value) {
        return with(routing(), value);
    }

    /** CPU backend threads per executor (0: all cores); not set: {@code spark.moescore.cpuThreads} conf. */
    public MoeScorer setCpuThreads(int value) {
        return with(cpuThreads(), value);
    }

    /** Sets the Param of every scoring setting to its value in {@code settings}. */
    @SuppressWarnings("unchecked")
    public MoeScorer setSettings(ScoreSettings settings) {
        settings.values().forEach((s, v) -> set((Param<Object>) settingParams.get(s.key()), paramValue(s, v)));
        return this;
    }

    /**
     * The scoring settings this scorer runs with: each setting's Param (set or default), except that
     * {@code spark.moescore.cpuThreads} in {@code conf} stands in for an unset cpuThreads.
     *
     * @throws IllegalArgumentException naming the Param or conf key whose value is wrong
     */
    public ScoreSettings settings(SparkConf conf) {
        return ScoreSettings.resolve(s -> {
            Param<?> p = settingParams.get(s.key());
            String key = CommandSettings.confKey(s);
            if (!isSet(p) && CONF_WHEN_UNSET.contains(s) && conf.contains(key)) {
                return new Setting.Given(conf.get(key), key);
            }
            return new Setting.Given(getOrDefault(p), "MoeScorer param " + s.key());
        });
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

    /** The score columns this scorer adds to rows of tokens or text, in order (inside the struct column if set). */
    public List<String> scoreColumns() {
        return DatasetScorer.scoreLayout(settings(new SparkConf(false)), new InputLayout(0, -1, -1, false)).names();
    }

    /** The score columns this scorer adds to a DataFrame of this schema (continuations add theirs), in order. */
    public List<String> scoreColumns(StructType input) {
        return DatasetScorer.scoreLayout(settings(new SparkConf(false)), DatasetScorer.layout(input,
                spec(Map.of(), new SparkConf(false)))).names();
    }

    @Override
    public StructType transformSchema(StructType schema) {
        requireModelPath();
        return DatasetScorer.outputSchema(schema, spec(Map.of(), new SparkConf(false)), scoresStruct());
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        return score(dataset, null);
    }

    /** {@link #transform}, with every task reporting what it scored into {@code reports} (null: no reports). */
    Dataset<Row> score(Dataset<?> dataset, TaskReports reports) {
        requireModelPath();
        SparkSession spark = dataset.sparkSession();
        return DatasetScorer.score(dataset.toDF(), spec(spark), scoresStruct(), profile(spark), reports);
    }

    /** The scoring of {@code dataset} before it becomes rows (the job's direct writers); top-level score columns. */
    DatasetScorer.Plan<?> plan(Dataset<?> dataset, TaskReports reports) {
        requireModelPath();
        SparkSession spark = dataset.sparkSession();
        return DatasetScorer.plan(dataset.toDF(), spec(spark), profile(spark), reports);
    }

    /** The scoring stage's resource profile where stage-level scheduling is on, else null. */
    private ResourceProfile profile(SparkSession spark) {
        return getUseStageLevelScheduling()
                ? GpuStageProfile.of(getExecutorGpuAmount(), getTaskGpuAmount(), spark.sparkContext().getConf())
                : null;
    }

    private ScoringSpec spec(SparkSession spark) {
        return spec(ModelFiles.hadoopEntries(spark.sparkContext()), spark.sparkContext().getConf());
    }

    private ScoringSpec spec(Map<String, String> hadoop, SparkConf conf) {
        return new ScoringSpec(ModelFiles.forExecutors(getModelPath()), settings(conf), getTokensCol(), getTextCol(),
                hadoop, getContextCol(), getContinuationCol());
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

    /**
     * The ML persistence writer (also of a saved {@code Pipeline} stage): it refuses a save path that is, is inside
     * or contains {@link #modelPath} before anything is written, since {@code write().overwrite()} deletes the path
     * first. A Pipeline's own writer deletes the pipeline's folder before its stages are saved: that Spark code
     * cannot be intercepted, so never save a pipeline over or around the model.
     */
    @Override
    public MLWriter write() {
        return new DefaultParamsWriter(this) {
            @Override
            public void save(String path) throws IOException {
                refuseModelOverlap(path, sparkSession());
                super.save(path);
            }

            @Override
            public void saveToLocal(String path) throws IOException {
                refuseModelOverlap(path, sparkSession());
                super.saveToLocal(path);
            }
        };
    }

    private void refuseModelOverlap(String path, SparkSession spark) {
        OutputGuard.refuseOverlap(path, "MoeScorer save path", getModelPath(), "its model directory (modelPath "
                + getModelPath() + ")", spark.sparkContext().hadoopConfiguration());
    }

    /** The reader of a saved MoeScorer; {@code Pipeline} and {@code PipelineModel} loading find it by reflection. */
    public static MLReader<MoeScorer> read() {
        return new DefaultParamsReader<>();
    }

    public static MoeScorer load(String path) {
        return read().load(path);
    }
}
