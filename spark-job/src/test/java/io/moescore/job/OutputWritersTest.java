package io.moescore.job;

import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import io.moescore.spark.ScoreJobOptions.OutputWriter;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.util.ArrowUtils;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The direct writers (--output-writer vectors, the default) against Spark's row writer (--output-writer rows) on the
 * demo model: for each output format and for input read row by row (JSON, repartitioned) and as column batches
 * (Parquet, Arrow), the same files (names with the write's id taken out), the same schema and the same values read
 * back row by row; JSON and Parquet files byte for byte, Arrow files with the same Arrow schema (their record
 * batches are cut differently: one per input batch rather than per 10,000 rows). The input holds the first demo rows cut
 * short and rows that end in an error or have no next token (null scores, null top-k), and ids with a quote and
 * non-ASCII text. No Arrow memory is left allocated.
 */
class OutputWritersTest {
    static SparkSession spark;
    @TempDir
    static Path dir;
    static String json;
    static String parquet;
    static String arrow;

    @BeforeAll
    static void start() throws IOException {
        spark = SparkTests.localSession();
        List<String> lines = new ArrayList<>();
        ObjectMapper mapper = new ObjectMapper();
        List<String> demo = Files.readAllLines(SparkTests.demoInput());
        for (int i = 0; i < 6; i++) {
            JsonNode row = mapper.readTree(demo.get(i));
            List<Integer> tokens = new ArrayList<>();
            for (int t = 0; t < 24 + 7 * i; t++) {
                tokens.add(row.get("tokens").get(t).asInt());
            }
            lines.add(mapper.writeValueAsString(java.util.Map.of("id", row.get("id").asText(), "tokens", tokens)));
        }
        lines.add("{\"id\": \"one token\", \"tokens\": [5]}");
        lines.add("{\"id\": \"empty\", \"tokens\": []}");
        lines.add("{\"id\": \"no tokens\", \"tokens\": null}");
        lines.add("{\"id\": \"outside the vocabulary\", \"tokens\": [1, 2, 99999999]}");
        lines.add("{\"id\": \"quote \\\" and \u00fc\u20ac\", \"tokens\": [3, 4, 5, 6]}");
        Path in = dir.resolve("in.jsonl");
        Files.write(in, lines, StandardCharsets.UTF_8);
        json = in.toString();
        Dataset<Row> rows = spark.read().json(json).select(col("id"),
                col("tokens").cast(DataTypes.createArrayType(DataTypes.IntegerType)).as("tokens")).repartition(2);
        parquet = dir.resolve("in.parquet").toString();
        arrow = dir.resolve("in.arrow").toString();
        rows.write().parquet(parquet);
        rows.write().format("arrow").mode("overwrite").save(arrow);
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    private static Path run(String input, String inputFormat, int partitions, String outputFormat,
                            OutputWriter writer) {
        return run(input, inputFormat, partitions, outputFormat, writer, 0);
    }

    /** A run with spark.sql.files.maxRecordsPerFile set to {@code maxRecordsPerFile} where it is not 0. */
    private static Path run(String input, String inputFormat, int partitions, String outputFormat,
                            OutputWriter writer, long maxRecordsPerFile) {
        Path out = dir.resolve(Path.of(input).getFileName() + "-" + partitions + "." + outputFormat + "-"
                + writer.name().toLowerCase() + (maxRecordsPerFile == 0 ? "" : "-max" + maxRecordsPerFile));
        if (Files.isDirectory(out)) {
            return out;  // made by an earlier test with the same arguments
        }
        if (maxRecordsPerFile == 0) {
            return score(input, inputFormat, partitions, outputFormat, writer, out);
        }
        spark.conf().set("spark.sql.files.maxRecordsPerFile", maxRecordsPerFile);
        try {
            return score(input, inputFormat, partitions, outputFormat, writer, out);
        } finally {
            spark.conf().unset("spark.sql.files.maxRecordsPerFile");
        }
    }

    private static Path score(String input, String inputFormat, int partitions, String outputFormat,
                              OutputWriter writer, Path out) {
        ScoreSettings settings = SparkTests.cpu().with(ScoreSettings.TOKEN_LOGPROBS, true)
                .with(ScoreSettings.TOP_K, 3).with(ScoreSettings.BATCH_TOKENS, 64);
        ScoreJobOptions options = new ScoreJobOptions(List.of(input), inputFormat, out.toString(), outputFormat,
                SparkTests.demoModel().toString(), settings, "error", "id", "tokens", "text", partitions, null)
                .withOutputWriter(writer);
        assertEquals(MoeScoreJob.EXIT_ROW_ERRORS, MoeScoreJob.run(spark, options), "rows with errors: exit 3");
        return out;
    }

    /** The output's file names with the write's id (a UUID) replaced, sorted. */
    private static List<String> names(Path out) throws IOException {
        try (Stream<Path> files = Files.list(out)) {
            return files.map(p -> p.getFileName().toString()
                    .replaceAll("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID")).sorted()
                    .toList();
        }
    }

    private static List<Path> dataFiles(Path out) throws IOException {
        try (Stream<Path> files = Files.list(out)) {
            return files.filter(p -> !p.getFileName().toString().startsWith("_")
                    && !p.getFileName().toString().startsWith(".")).sorted().toList();
        }
    }

    private static List<Row> rows(Path out, String format) {
        return spark.read().format(format).load(out.toString()).orderBy("id").collectAsList();
    }

    private static void sameOutput(String input, String inputFormat, int partitions, String format)
            throws IOException {
        sameOutput(input, inputFormat, partitions, format, 0);
    }

    private static void sameOutput(String input, String inputFormat, int partitions, String format,
                                   long maxRecordsPerFile) throws IOException {
        Path rows = run(input, inputFormat, partitions, format, OutputWriter.ROWS, maxRecordsPerFile);
        Path vectors = run(input, inputFormat, partitions, format, OutputWriter.VECTORS, maxRecordsPerFile);
        String what = format + " output of " + inputFormat + " input (" + partitions + " partitions, maxRecordsPerFile "
                + maxRecordsPerFile + ")";
        assertEquals(names(rows), names(vectors), what + ": files");
        assertEquals(spark.read().format(format).load(rows.toString()).schema(),
                spark.read().format(format).load(vectors.toString()).schema(), what + ": schema");
        List<Row> expected = rows(rows, format);
        assertEquals(11, expected.size(), what);
        assertTrue(expected.stream().anyMatch(r -> !r.isNullAt(r.fieldIndex("error"))
                && r.isNullAt(r.fieldIndex("top_tokens"))), what + ": has error rows with null top-k");
        assertEquals(expected, rows(vectors, format), what + ": values");
        List<Path> rowFiles = dataFiles(rows);
        List<Path> vectorFiles = dataFiles(vectors);
        for (int f = 0; f < rowFiles.size(); f++) {
            if (format.equals("arrow")) {
                assertEquals(arrowSchema(rowFiles.get(f)), arrowSchema(vectorFiles.get(f)),
                        what + ": Arrow schema of " + vectorFiles.get(f).getFileName());
            } else {  // JSON; Parquet too: the same parquet-mr writer, settings, schema, metadata and values
                assertArrayEquals(Files.readAllBytes(rowFiles.get(f)), Files.readAllBytes(vectorFiles.get(f)),
                        what + ": bytes of " + vectorFiles.get(f).getFileName());
            }
        }
        assertEquals(0, ArrowUtils.rootAllocator().getAllocatedMemory(), "Arrow memory still allocated");
    }

    private static Schema arrowSchema(Path file) throws IOException {
        try (BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("test " + file, 0,
                Long.MAX_VALUE);
             ArrowFileReader reader = new ArrowFileReader(FileChannel.open(file), allocator)) {
            return reader.getVectorSchemaRoot().getSchema();
        }
    }

    @Test
    void jsonOutputHasTheRowWritersBytes() throws IOException {
        sameOutput(json, "json", 3, "json");
        sameOutput(parquet, "parquet", 0, "json");
        sameOutput(arrow, "arrow", 0, "json");
    }

    @Test
    void parquetOutputHasTheRowWritersBytes() throws IOException {
        sameOutput(json, "json", 3, "parquet");
        sameOutput(parquet, "parquet", 0, "parquet");
        sameOutput(arrow, "arrow", 0, "parquet");
    }

    @Test
    void arrowOutputReadsBackAsTheRowWritersValuesAndSchema() throws IOException {
        sameOutput(json, "json", 3, "arrow");
        sameOutput(parquet, "parquet", 0, "arrow");
        sameOutput(arrow, "arrow", 0, "arrow");
        assertFalse(names(dir.resolve("in.arrow-0.arrow-vectors")).stream().anyMatch(n -> n.startsWith("_")),
                "Arrow output has no _SUCCESS, as the arrow source's");
    }

    /**
     * spark.sql.files.maxRecordsPerFile N (a batch of the direct writers split across files where N cuts it): each
     * task's rows in ceil(rows / N) files -c000, -c001, ..., the same rows per task and the same values as the
     * unlimited output (a negative N, which is unlimited as in Spark).
     */
    private static void rollsOver(String format, long maxRecordsPerFile) throws IOException {
        Path unlimited = run(json, "json", 3, format, OutputWriter.VECTORS, -1);
        Path rolled = run(json, "json", 3, format, OutputWriter.VECTORS, maxRecordsPerFile);
        String what = format + " output, maxRecordsPerFile " + maxRecordsPerFile;
        Map<String, Long> perTask = SparkTests.assertRolledOver(spark, rolled, format, maxRecordsPerFile);
        assertEquals(SparkTests.assertRolledOver(spark, unlimited, format, -1), perTask, what + ": rows per task");
        assertTrue(perTask.values().stream().anyMatch(n -> n > maxRecordsPerFile), what + ": rolls over " + perTask);
        List<Row> expected = rows(unlimited, format);
        assertEquals(11, expected.size(), what);
        assertEquals(expected, rows(rolled, format), what + ": values");
        assertEquals(0, ArrowUtils.rootAllocator().getAllocatedMemory(), "Arrow memory still allocated");
    }

    @Test
    void jsonOutputRollsOverAsTheRowWriters() throws IOException {
        rollsOver("json", 3);
        sameOutput(json, "json", 3, "json", 3);
        sameOutput(parquet, "parquet", 0, "json", 2);
    }

    @Test
    void parquetOutputRollsOverAsTheRowWriters() throws IOException {
        rollsOver("parquet", 3);
        sameOutput(json, "json", 3, "parquet", 3);
        sameOutput(arrow, "arrow", 0, "parquet", 2);
    }

    /** The arrow source (the row writer's Arrow) writes one file a task whatever maxRecordsPerFile: no comparison. */
    @Test
    void arrowOutputRollsOver() throws IOException {
        rollsOver("arrow", 3);
        rollsOver("arrow", 1);
    }
}
