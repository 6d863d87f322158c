package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.MoeScorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.collection.Seq;

/**
 * {@link MoeScorer} as a stage of a user's pipeline: the scores equal the single-process scorer's row by row, every
 * input column and row stays, a saved and reloaded pipeline gives the same output, and the struct option nests the
 * same values.
 */
class MoeScorerTest {
    static SparkSession spark;
    /** The single-process scorer's output for demo/input.jsonl, with token log-probs and the top 5, by id. */
    static Map<String, JsonNode> expected;
    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws IOException {
        spark = SparkTests.localSession();
        expected = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(SparkTests.scoreLocally(SparkTests.demoInput(), dir, true, 5))) {
            JsonNode row = json.readTree(line);
            expected.put(row.get("id").asText(), row);
        }
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    /** The demo rows as a user holds them: id, source, tokens (array&lt;bigint&gt;, as Spark reads JSON). */
    static Dataset<Row> demoRows() {
        return spark.read().json(SparkTests.demoInput().toString());
    }

    static MoeScorer scorer() {
        return new MoeScorer().setModelPath(SparkTests.demoModel().toString()).setBackend("cpu")
                .setTokenLogprobs(true).setTopK(5).setBatchTokens(2000);
    }

    /** Rows sorted by id (the first column). */
    static List<Row> collectById(Dataset<Row> df) {
        List<Row> rows = new ArrayList<>(df.collectAsList());
        rows.sort(Comparator.comparing(r -> r.getString(0)));
        return rows;
    }

    static void assertScoresEqualSingleProcess(Row got, String id) {
        JsonNode want = expected.get(id);
        assertNotNull(want, id);
        assertNull(got.getAs("error"), id);
        assertEquals(want.get("num_tokens").asInt(), got.<Integer>getAs("num_tokens"), id);
        assertEquals(want.get("sum_logprob").asDouble(), got.<Double>getAs("sum_logprob"), 0.0, id);
        assertEquals(want.get("mean_nll").asDouble(), got.<Double>getAs("mean_nll"), 0.0, id);
        assertEquals(want.get("perplexity").asDouble(), got.<Double>getAs("perplexity"), 0.0, id);
        Seq<Object> lp = got.getAs("token_logprobs");
        assertEquals(want.get("token_logprobs").size(), lp.size(), id);
        for (int i = 0; i < lp.size(); i++) {
            assertEquals((float) want.get("token_logprobs").get(i).asDouble(), (Float) lp.apply(i), 0.0f, id + " " + i);
        }
        Seq<Object> top = got.getAs("top_tokens");
        assertEquals(5, top.size(), id);
        for (int i = 0; i < 5; i++) {
            assertEquals(want.get("top_tokens").get(i).asInt(), (Integer) top.apply(i), id + " top " + i);
        }
    }

    @Test
    void pipelineOfAUserStepAndTheScorerEqualsTheSingleProcessScorerAndSurvivesSaveAndLoad() throws IOException {
        // The user's own step: drop the noise rows and cast the tokens to array<int>.
        SQLTransformer userStep = new SQLTransformer().setStatement(
                "SELECT id, source, CAST(tokens AS ARRAY<INT>) AS tokens FROM __THIS__ WHERE id NOT LIKE 'noise-%'");
        Pipeline pipeline = new Pipeline().setStages(new PipelineStage[] {userStep, scorer()});
        PipelineModel model = pipeline.fit(demoRows());
        Dataset<Row> scored = model.transform(demoRows());

        assertEquals(List.of("id", "source", "tokens", "num_tokens", "sum_logprob", "mean_nll", "perplexity",
                "token_logprobs", "top_tokens", "error"), Arrays.asList(scored.columns()));
        List<Row> rows = collectById(scored);
        assertEquals(16, rows.size(), "one row per row the user's step kept");
        Map<String, Row> input = new HashMap<>();
        demoRows().collectAsList().forEach(r -> input.put(r.getAs("id"), r));
        for (Row got : rows) {
            String id = got.getAs("id");
            assertTrue(!id.startsWith("noise-"), id);
            assertEquals(input.get(id).<String>getAs("source"), got.getAs("source"), "input column kept: " + id);
            assertEquals(input.get(id).<Seq<Object>>getAs("tokens").size(), got.<Seq<Object>>getAs("tokens").size(), id);
            assertScoresEqualSingleProcess(got, id);
        }

        String modelPath = dir.resolve("pipeline-model").toString();
        model.write().overwrite().save(modelPath);
        PipelineModel reloaded = PipelineModel.load(modelPath);
        MoeScorer reloadedScorer = (MoeScorer) reloaded.stages()[1];
        assertEquals(SparkTests.demoModel().toString(), reloadedScorer.getModelPath());
        assertEquals(5, reloadedScorer.getTopK());
        assertEquals(List.of("cpu", 2000, true), List.of(reloadedScorer.getBackend(), reloadedScorer.getBatchTokens(),
                reloadedScorer.getTokenLogprobs()));
        assertEquals(rows, collectById(reloaded.transform(demoRows())), "the reloaded pipeline model's output");

        String pipelinePath = dir.resolve("pipeline").toString();
        pipeline.write().overwrite().save(pipelinePath);
        assertEquals(rows, collectById(Pipeline.load(pipelinePath).fit(demoRows()).transform(demoRows())),
                "the reloaded pipeline's output");
    }

    @Test
    void aScorerSavedAloneLoadsWithItsParameters() throws IOException {
        MoeScorer scorer = scorer().setOutputStructCol("scores").setTokensCol("ids").setTextCol("body")
                .setPrecision("split-bf16").setUseStageLevelScheduling(true).setExecutorGpuAmount(0)
                .setTaskGpuAmount(0.5);
        String path = dir.resolve("scorer").toString();
        scorer.write().overwrite().save(path);
        MoeScorer back = MoeScorer.load(path);
        assertEquals(scorer.uid(), back.uid());
        assertEquals(scorer.extractParamMap().toString(), back.extractParamMap().toString());
        assertEquals("scores", back.getOutputStructCol());
        assertEquals(0.5, back.getTaskGpuAmount());
    }

    /** fp16 is a precision of the scorer (the CPU computes in fp32 whatever it says: the scores stay). */
    @Test
    void fp16ScoresAndPersists() {
        MoeScorer fp16 = scorer().setPrecision("fp16").setCpuThreads(2);
        List<Row> rows = collectById(fp16.transform(demoRows().limit(3)));
        assertEquals(3, rows.size());
        rows.forEach(r -> assertScoresEqualSingleProcess(r, r.getAs("id")));
        String path = dir.resolve("fp16-scorer").toString();
        try {
            fp16.write().overwrite().save(path);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        MoeScorer back = MoeScorer.load(path);
        assertEquals("fp16", back.getPrecision());
        assertEquals(fp16.settings(spark.sparkContext().getConf()), back.settings(spark.sparkContext().getConf()));
    }

    @Test
    void scoresInOneStructColumnHoldTheSameValues() {
        Dataset<Row> input = demoRows().limit(4);
        List<Row> flat = collectById(scorer().transform(input));
        Dataset<Row> nested = scorer().setOutputStructCol("scores").transform(input);

        assertEquals(List.of("id", "source", "tokens", "scores"), Arrays.asList(nested.columns()));
        StructType scores = (StructType) nested.schema().apply("scores").dataType();
        assertEquals(scorer().scoreColumns(), Arrays.asList(scores.fieldNames()));
        List<Row> rows = collectById(nested);
        assertEquals(4, rows.size());
        for (int i = 0; i < rows.size(); i++) {
            Row struct = rows.get(i).getAs("scores");
            assertScoresEqualSingleProcess(struct, rows.get(i).getAs("id"));
            for (String c : scorer().scoreColumns()) {
                assertEquals(flat.get(i).<Object>getAs(c), struct.getAs(c), c);
            }
        }
    }

    @Test
    void rowsThatCannotBeScoredKeepTheirRowAndColumnsAndGetAnError() {
        StructType schema = new StructType()
                .add("note", DataTypes.StringType)
                .add("tokens", DataTypes.createArrayType(DataTypes.IntegerType, true))
                .add("weight", DataTypes.DoubleType);
        Integer[] tooLong = IntStream.range(0, 1025).map(i -> i % 100).boxed().toArray(Integer[]::new);
        List<Row> rows = List.of(
                RowFactory.create("good", new Integer[] {10, 20, 30}, 1.0),
                RowFactory.create("empty", new Integer[0], 2.0),
                RowFactory.create("oov", new Integer[] {10, 4096}, 3.0),
                RowFactory.create("negative", new Integer[] {-3, 1}, 4.0),
                RowFactory.create("nulltokens", null, 5.0),
                RowFactory.create("nullelement", new Integer[] {1, null, 2}, 6.0),
                RowFactory.create("toolong", tooLong, 7.0),
                RowFactory.create("one", new Integer[] {7}, 8.0));
        Dataset<Row> input = spark.createDataFrame(rows, schema).repartition(3);
        List<Row> out = scorer().setBatchTokens(64).transform(input).collectAsList();

        assertEquals(rows.size(), out.size(), "rows in = rows out");
        Map<String, Row> byNote = new HashMap<>();
        out.forEach(r -> byNote.put(r.getAs("note"), r));
        assertEquals(rows.size(), byNote.size());
        for (Row in : rows) {
            assertEquals(in.<Double>getAs(2), byNote.get(in.<String>getAs(0)).<Double>getAs("weight"), "kept");
        }
        Map<String, String> errors = new HashMap<>();
        byNote.forEach((note, r) -> errors.put(note, r.getAs("error")));
        assertNull(errors.get("good"));
        assertTrue(byNote.get("good").<Double>getAs("sum_logprob") < 0);
        assertNull(errors.get("one"), "a single token scores (no next token: no perplexity)");
        assertNull(byNote.get("one").getAs("perplexity"));
        assertTrue(errors.get("empty").contains("empty sequence"), errors.get("empty"));
        assertTrue(errors.get("oov").contains("token id 4096 at position 1"), errors.get("oov"));
        assertTrue(errors.get("negative").contains("token id -3 at position 0"), errors.get("negative"));
        assertTrue(errors.get("nulltokens").contains("tokens is null"), errors.get("nulltokens"));
        assertTrue(errors.get("nullelement").contains("tokens[1] is null"), errors.get("nullelement"));
        assertTrue(errors.get("toolong").contains("1025 tokens is longer than the model's max_position_embeddings"),
                errors.get("toolong"));
        for (String bad : List.of("empty", "oov", "negative", "nulltokens", "nullelement", "toolong")) {
            assertNull(byNote.get(bad).getAs("sum_logprob"), bad);
            assertNull(byNote.get(bad).getAs("token_logprobs"), bad);
        }
    }

    @Test
    void textIsTokenizedWhereARowHasNoTokens() {
        StructType schema = new StructType()
                .add("id", DataTypes.StringType)
                .add("tokens", DataTypes.createArrayType(DataTypes.IntegerType))
                .add("text", DataTypes.StringType);
        Dataset<Row> input = spark.createDataFrame(List.of(
                RowFactory.create("code", null, "import numpy as np\n\ndef f(x):\n    return np.sum(x)\n"),
                RowFactory.create("prose", null, "The licence grants permission to use the software."),
                RowFactory.create("tokens", new Integer[] {10, 20, 30}, "ignored: the row has tokens"),
                RowFactory.create("neither", null, null)), schema);
        Map<String, Row> byId = new HashMap<>();
        new MoeScorer().setModelPath(SparkTests.demoModel().toString()).setBackend("cpu").transform(input)
                .collectAsList().forEach(r -> byId.put(r.getAs("id"), r));
        assertEquals(4, byId.size());
        assertNull(byId.get("code").getAs("error"));
        assertTrue(byId.get("code").<Integer>getAs("num_tokens") > 5);
        assertTrue(byId.get("code").<Double>getAs("perplexity") < byId.get("prose").<Double>getAs("perplexity"),
                "a model trained on code finds code likelier than prose");
        assertEquals(3, byId.get("tokens").<Integer>getAs("num_tokens"));
        assertEquals("both tokens and text are null", byId.get("neither").getAs("error"));
    }
}
