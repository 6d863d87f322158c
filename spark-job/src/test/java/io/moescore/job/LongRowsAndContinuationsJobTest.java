package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import io.moescore.score.LongRows;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
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

/**
 * The job with long rows (--long-rows stride and truncate) and continuation rows (context and continuation columns,
 * text or token ids) scores every row as score-local does, bit for bit, through each input path: Arrow (column
 * vectors read in place), Parquet (Spark's vectors) and JSON (rows; context and continuation typed per row). Bad
 * columns and strides are refused before any task.
 */
class LongRowsAndContinuationsJobTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static SparkSession spark;
    @TempDir
    static Path dir;
    /** Demo token ids end to end: real code, long rows cut from it. */
    static int[] demoTokens;

    @BeforeAll
    static void start() throws IOException {
        spark = SparkTests.localSession();
        List<Integer> all = new ArrayList<>();
        for (String line : Files.readAllLines(SparkTests.demoInput())) {
            JSON.readTree(line).get("tokens").forEach(t -> all.add(t.asInt()));
        }
        demoTokens = all.stream().mapToInt(Integer::intValue).toArray();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    static int[] slice(int from, int length) {
        return Arrays.copyOfRange(demoTokens, from, from + length);
    }

    static String ids(int[] tokens) {
        return Arrays.stream(tokens).mapToObj(Integer::toString).collect(Collectors.joining(",", "[", "]"));
    }

    static List<Integer> boxed(int[] tokens) {
        return Arrays.stream(tokens).boxed().toList();
    }

    /** score-local's output for {@code lines} under {@code settings}, by id. */
    static Map<String, JsonNode> local(String name, List<String> lines, ScoreSettings settings) throws IOException {
        Path in = dir.resolve(name + ".jsonl");
        Files.write(in, lines);
        Path out = dir.resolve(name + ".local.jsonl");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int code = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(
                new LocalScoreOptions(SparkTests.demoModel(), in, out, true, settings));
        assertTrue(code == LocalScorer.EXIT_OK || code == LocalScorer.EXIT_ROW_ERRORS, log.toString());
        Map<String, JsonNode> byId = new HashMap<>();
        for (String line : Files.readAllLines(out)) {
            JsonNode row = JSON.readTree(line);
            byId.put(row.get("id").asText(), row);
        }
        return byId;
    }

    static ScoreJobOptions options(String input, String format, String output, ScoreSettings settings) {
        return new ScoreJobOptions(List.of(input), format, output, "parquet", SparkTests.demoModel().toString(),
                settings, "error", "id", "tokens", "text", 0, null);
    }

    /** Every field score-local wrote equals the job's column of the same name, exactly. */
    static void assertSameAsLocal(Map<String, JsonNode> local, String output) {
        assertSameAsLocal(local, spark.read().parquet(output));
    }

    static void assertSameAsLocal(Map<String, JsonNode> local, Dataset<Row> got) {
        List<String> columns = Arrays.asList(got.columns());
        List<Row> rows = got.collectAsList();
        assertEquals(local.size(), rows.size());
        for (Row row : rows) {
            String id = row.getAs("id").toString();
            JsonNode want = local.get(id);
            assertNotNull(want, id);
            want.fieldNames().forEachRemaining(field -> {
                assertTrue(columns.contains(field), field + " in the job's columns " + columns);
                Object value = row.getAs(field);
                JsonNode w = want.get(field);
                String where = id + " " + field;
                if (w.isNull()) {
                    assertEquals(null, value, where);
                } else if (w.isArray()) {
                    List<?> list = value instanceof scala.collection.Seq<?> seq
                            ? scala.jdk.javaapi.CollectionConverters.asJava(seq) : (List<?>) value;
                    assertEquals(w.size(), list.size(), where);
                    for (int i = 0; i < w.size(); i++) {
                        // token log-probs are floats: JSON holds the shortest text that reads back as the float
                        assertEquals((float) w.get(i).asDouble(), ((Number) list.get(i)).floatValue(), where + i);
                    }
                } else if (w.isBoolean()) {
                    assertEquals(w.asBoolean(), value, where);
                } else if (w.isNumber()) {
                    assertEquals(w.asDouble(), ((Number) value).doubleValue(), 0.0, where);
                } else if (!field.equals("id")) {
                    assertEquals(w.asText(), value, where);
                }
            });
        }
    }

    @Test
    void longRowsAreScoredAsScoreLocalScoresThemOnEveryInputPath() throws IOException {
        int[][] rows = {slice(0, 1280), slice(1500, 2100), slice(4000, 300), slice(5000, 1024), slice(6000, 1)};
        StructType schema = new StructType().add("id", DataTypes.StringType)
                .add("tokens", DataTypes.createArrayType(DataTypes.IntegerType));
        List<Row> data = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < rows.length; i++) {
            data.add(RowFactory.create("r" + i, boxed(rows[i])));
            lines.add("{\"id\": \"r" + i + "\", \"tokens\": " + ids(rows[i]) + "}");
        }
        String arrow = dir.resolve("long.arrow").toString();
        spark.createDataFrame(data, schema).write().format("arrow").mode("overwrite").save(arrow);
        String json = dir.resolve("long-input.jsonl").toString();
        Files.write(Path.of(json), lines);

        ScoreSettings stride = SparkTests.cpu().with(ScoreSettings.LONG_ROWS, LongRows.STRIDE)
                .with(ScoreSettings.STRIDE, 384).with(ScoreSettings.TOKEN_LOGPROBS, true).with(ScoreSettings.TOP_K, 2)
                .with(ScoreSettings.BATCH_TOKENS, 1500);
        Map<String, JsonNode> local = local("long", lines, stride);
        assertEquals(2, local.get("r0").get("num_windows").asInt(), "1280 tokens: windows at 0 and 384");
        assertEquals(4, local.get("r1").get("num_windows").asInt(), "2100 tokens: windows at 0, 384, 768, 1152");
        assertEquals(1, local.get("r3").get("num_windows").asInt(), "1024 tokens fit");
        for (String[] input : new String[][] {{arrow, "arrow"}, {json, "json"}}) {
            String out = dir.resolve("long-" + input[1] + ".parquet").toString();
            JobSummary summary = MoeScoreJob.score(spark, options(input[0], input[1], out, stride));
            assertEquals(5, summary.rows());
            assertEquals(0, summary.errorRows(), "a one-token row has no next token, but is no error");
            assertSameAsLocal(local, out);
        }

        ScoreSettings truncate = SparkTests.cpu().with(ScoreSettings.LONG_ROWS, LongRows.TRUNCATE);
        Map<String, JsonNode> cut = local("cut", lines, truncate);
        assertEquals(1024, cut.get("r1").get("num_tokens").asInt());
        assertTrue(cut.get("r1").get("truncated").asBoolean());
        String out = dir.resolve("long-truncated.parquet").toString();
        MoeScoreJob.score(spark, options(arrow, "arrow", out, truncate));
        assertSameAsLocal(cut, out);

        String refused = dir.resolve("long-refused.parquet").toString();
        JobSummary summary = MoeScoreJob.score(spark, options(arrow, "arrow", refused, SparkTests.cpu()));
        assertEquals(2, summary.errorRows(), "by default a row longer than the context is an error");
        assertFalse(Arrays.asList(spark.read().parquet(refused).columns()).contains("num_windows"));
        assertSameAsLocal(local("refused", lines, SparkTests.cpu()), refused);
    }

    @Test
    void continuationRowsAreScoredAsScoreLocalScoresThemOnEveryInputPath() throws IOException {
        String[][] texts = {{"def add(a, b):\n    ", "return a + b"}, {"for i in range(10):", " print(i)"},
                {"x = 1 ", "+ 2"}};
        int[][][] pairs = {{slice(100, 40), slice(140, 5)}, {slice(900, 1), slice(901, 3)},
                {slice(2000, 1100), slice(3100, 4)}};  // the last: longer than the context, cut from the left
        List<String> textLines = new ArrayList<>();
        List<Row> textRows = new ArrayList<>();
        for (int i = 0; i < texts.length; i++) {
            textLines.add(JSON.createObjectNode().put("id", "t" + i).put("context", texts[i][0])
                    .put("continuation", texts[i][1]).toString());
            textRows.add(RowFactory.create("t" + i, texts[i][0], texts[i][1]));
        }
        textLines.add("{\"id\": \"t-null\", \"context\": \"x\", \"continuation\": null}");
        textRows.add(RowFactory.create("t-null", "x", null));
        List<String> idLines = new ArrayList<>();
        List<Row> idRows = new ArrayList<>();
        for (int i = 0; i < pairs.length; i++) {
            idLines.add("{\"id\": \"p" + i + "\", \"context\": " + ids(pairs[i][0]) + ", \"continuation\": "
                    + ids(pairs[i][1]) + "}");
            idRows.add(RowFactory.create("p" + i, boxed(pairs[i][0]), boxed(pairs[i][1])));
        }
        ScoreSettings settings = SparkTests.cpu().with(ScoreSettings.LONG_ROWS, LongRows.TRUNCATE)
                .with(ScoreSettings.TOP_K, 1).with(ScoreSettings.BATCH_TOKENS, 700);

        Map<String, JsonNode> localText = local("text-pairs", textLines, settings);
        assertTrue(localText.get("t-null").get("error").asText().contains("\"continuation\" is null"));
        String parquet = dir.resolve("text-pairs.parquet").toString();
        spark.createDataFrame(textRows, new StructType().add("id", DataTypes.StringType)
                .add("context", DataTypes.StringType).add("continuation", DataTypes.StringType))
                .write().parquet(parquet);
        String out = dir.resolve("text-pairs.scores.parquet").toString();
        JobSummary summary = MoeScoreJob.score(spark, options(parquet, "parquet", out, settings));
        assertEquals(1, summary.errorRows());
        Row nullRow = spark.read().parquet(out).where("id = 't-null'").first();
        assertEquals("continuation is null: a continuation row needs a context and a continuation",
                nullRow.getAs("error"), "the row's error names the column");
        localText.remove("t-null");  // score-local names the line instead: compared above
        assertSameAsLocal(localText, spark.read().parquet(out).where("id != 't-null'"));

        Map<String, JsonNode> localIds = local("id-pairs", idLines, settings);
        assertTrue(localIds.get("p2").get("truncated").asBoolean());
        String arrow = dir.resolve("id-pairs.arrow").toString();
        spark.createDataFrame(idRows, new StructType().add("id", DataTypes.StringType)
                .add("context", DataTypes.createArrayType(DataTypes.IntegerType))
                .add("continuation", DataTypes.createArrayType(DataTypes.IntegerType))).write().format("arrow")
                .mode("overwrite").save(arrow);
        out = dir.resolve("id-pairs.scores.parquet").toString();
        MoeScoreJob.score(spark, options(arrow, "arrow", out, settings));
        assertSameAsLocal(localIds, out);

        // JSON: text and id pairs in one file, each row typed as it is
        List<String> mixed = new ArrayList<>(textLines.subList(0, texts.length));
        mixed.addAll(idLines);
        Map<String, JsonNode> localMixed = local("mixed-pairs", mixed, settings);
        out = dir.resolve("mixed-pairs.scores.parquet").toString();
        MoeScoreJob.score(spark, options(dir.resolve("mixed-pairs.jsonl").toString(), "json", out, settings));
        assertSameAsLocal(localMixed, out);
    }

    @Test
    void badContinuationColumnsAndStridesAreRefusedBeforeAnyTask() {
        String half = dir.resolve("half.parquet").toString();
        spark.createDataFrame(List.of(RowFactory.create("a", "x = 1")), new StructType().add("id", DataTypes.StringType)
                .add("context", DataTypes.StringType)).write().parquet(half);
        String message = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                options(half, "parquet", dir.resolve("half.out").toString(), SparkTests.cpu()))).getMessage();
        assertTrue(message.startsWith("input has a 'context' column but no 'continuation' column"), message);

        String kinds = dir.resolve("kinds.parquet").toString();
        spark.createDataFrame(List.of(RowFactory.create("a", "x = 1", List.of(1, 2))), new StructType()
                .add("id", DataTypes.StringType).add("context", DataTypes.StringType)
                .add("continuation", DataTypes.createArrayType(DataTypes.IntegerType))).write().parquet(kinds);
        message = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                options(kinds, "parquet", dir.resolve("kinds.out").toString(), SparkTests.cpu()))).getMessage();
        assertTrue(message.contains("must both be text or both token ids"), message);

        String tokens = dir.resolve("stride.parquet").toString();
        spark.createDataFrame(List.of(RowFactory.create("a", List.of(1, 2))), new StructType()
                .add("id", DataTypes.StringType).add("tokens", DataTypes.createArrayType(DataTypes.IntegerType)))
                .write().parquet(tokens);
        message = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark, options(tokens,
                "parquet", dir.resolve("stride.out").toString(), SparkTests.cpu()
                        .with(ScoreSettings.LONG_ROWS, LongRows.STRIDE).with(ScoreSettings.STRIDE, 1024))))
                .getMessage();
        assertTrue(message.startsWith("--stride (stride) 1024 is not below the model's context of 1024 tokens"),
                message);
        assertFalse(Files.exists(dir.resolve("stride.out")), "nothing written");
    }
}
