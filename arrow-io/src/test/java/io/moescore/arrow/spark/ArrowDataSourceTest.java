package io.moescore.arrow.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.SerializableConfiguration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The "arrow" data source in a local Spark: pyarrow's files, a write read back, the commit protocol, bad files. */
class ArrowDataSourceTest {
    private static SparkSession spark;

    @TempDir
    Path dir;

    @BeforeAll
    static void startSpark() {
        spark = SparkSession.builder()
                .master("local[2]")
                .appName("ArrowDataSourceTest")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "2")
                .getOrCreate();
        spark.sparkContext().setLogLevel("ERROR");
        spark.udf().register("failOn12", (UDF1<Long, Long>) id -> {
            if (id == 12L) {
                throw new IllegalStateException("task fails on purpose for id 12");
            }
            return id;
        }, DataTypes.LongType);
    }

    @AfterAll
    static void stopSpark() {
        spark.stop();
    }

    @AfterEach
    void nothingLeaked() throws InterruptedException {
        // Readers and writers allocate from children of Spark's root and close them when their task ends. A failed
        // job returns as soon as one task fails, while Spark still kills its other tasks (their writers close in the
        // task-completion listener): wait for those, up to 10 s, before asking.
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (ArrowUtils.rootAllocator().getAllocatedMemory() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, ArrowUtils.rootAllocator().getAllocatedMemory());
    }

    @Test
    void readsPyarrowIpcFile() {
        Dataset<Row> df = spark.read().format("arrow").load(fixture("tokens_int64_ids.arrow"));
        assertEquals("struct<id:bigint,tokens:array<int>>", df.schema().catalogString());
        assertEquals(List.of(
                "10 [1, 2, 3]", "11 [5]", "12 " + range(40), "13 [4095, 0, 7, 7]"),
                rows(df.orderBy("id"), r -> r.getLong(0) + " " + r.getList(1)));
    }

    @Test
    void readsPyarrowStreamWithTextAndNull() {
        Dataset<Row> df = spark.read().format("arrow").load(fixture("tokens_utf8_ids.arrows"));
        assertEquals("struct<id:string,tokens:array<int>,text:string>", df.schema().catalogString());
        assertEquals(List.of("row-10 [1, 2, 3] def f(x):", "row-11 [5] null", "row-12 " + range(40)
                        + " import numpy as np", "row-13 [4095, 0, 7, 7] x = 1"),
                rows(df.orderBy("id"), r -> r.getString(0) + " " + r.getList(1) + " " + r.getString(2)));
    }

    @Test
    void scanIsColumnarAndPrunesColumns() {
        Dataset<Row> df = spark.read().format("arrow").load(fixture("tokens_utf8_ids.arrows")).select("tokens");
        String plan = df.queryExecution().executedPlan().toString();
        assertTrue(plan.contains("ColumnarToRow"), plan);
        assertTrue(plan.contains("ArrowScan") && plan.contains("struct<tokens:array<int>>"), plan);
        assertEquals(4, df.count());
        assertEquals(List.of("[5]"), rows(df.where("size(tokens) = 1"), r -> r.getList(0).toString()));
    }

    @Test
    void partitionReaderOpensOnTheExecutorAndClosesAnyTime() throws Exception {
        String file = fixture("tokens_int64_ids.arrow");
        StructType schema = spark.read().format("arrow").load(file).schema();
        ArrowReaderFactory sent = new ArrowReaderFactory(schema, schema,
                new SerializableConfiguration(new Configuration()));
        ArrowReaderFactory factory = javaSerializationRoundTrip(sent);

        PartitionReader<ColumnarBatch> unused = factory.createColumnarReader(new ArrowFilePartition(file));
        unused.close(); // before any next()
        unused.close();

        try (PartitionReader<ColumnarBatch> reader = factory.createColumnarReader(new ArrowFilePartition(file))) {
            ColumnarBatch first = null;
            List<Integer> rowsPerBatch = new ArrayList<>();
            while (reader.next()) {
                first = first == null ? reader.get() : first;
                assertTrue(first == reader.get(), "one ColumnarBatch per reader, refilled");
                rowsPerBatch.add(reader.get().numRows());
                assertTrue(reader.get().column(1) instanceof ArrowColumnVector);
            }
            assertEquals(List.of(2, 2), rowsPerBatch);
        }
        assertEquals(0, ArrowUtils.rootAllocator().getAllocatedMemory());
    }

    @SuppressWarnings("unchecked")
    private static <T> T javaSerializationRoundTrip(T value) throws IOException, ClassNotFoundException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(value);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return (T) in.readObject();
        }
    }

    @Test
    void readsADirectoryOnePartitionPerFileSkippingHiddenNames() throws IOException {
        Files.copy(Path.of(fixture("tokens_int64_ids.arrow")), dir.resolve("a.arrow"));
        Files.copy(Path.of(fixture("tokens_int64_ids.arrow")), dir.resolve("b.arrow"));
        Files.writeString(dir.resolve("_SUCCESS"), "");
        Files.writeString(dir.resolve(".b.arrow.crc"), "not arrow");
        Files.writeString(dir.resolve("notes.txt"), "not arrow");
        Dataset<Row> df = spark.read().format("arrow").load(dir.toString());
        assertEquals(2, df.rdd().getNumPartitions());
        assertEquals(8, df.count());
        assertEquals(2, df.where("id = 13").count());

        Dataset<Row> two = spark.read().format("arrow").load(dir.resolve("a.arrow").toString(),
                fixture("tokens_int64_ids.arrow"));
        assertEquals(8, two.count());
    }

    @Test
    void writesAndReadsBack() {
        Path out = dir.resolve("out");
        Dataset<Row> df = sparkRows().repartition(2);
        df.write().format("arrow").mode(SaveMode.Overwrite).save(out.toString());
        assertEquals(2, arrowFiles(out).size(), "one file per task");
        assertFalse(Files.exists(out.resolve("_temporary")));

        Dataset<Row> back = spark.read().format("arrow").load(out.toString());
        assertEquals(sparkRows().schema().catalogString(), back.schema().catalogString());
        assertEquals(render(sparkRows()), render(back));

        df.write().format("arrow").mode(SaveMode.Append).save(out.toString());
        assertEquals(4, arrowFiles(out).size());
        assertEquals(6, spark.read().format("arrow").load(out.toString()).count());

        sparkRows().coalesce(1).write().format("arrow").mode(SaveMode.Overwrite).save(out.toString());
        assertEquals(1, arrowFiles(out).size(), "overwrite replaced the four files");
        assertEquals(render(sparkRows()), render(spark.read().format("arrow").load(out.toString())));
    }

    @Test
    void smallBatchesOption() {
        Path out = dir.resolve("out");
        sparkRows().coalesce(1).write().format("arrow").option("maxRecordsPerBatch", "1")
                .mode(SaveMode.Overwrite).save(out.toString());
        assertEquals(render(sparkRows()), render(spark.read().format("arrow").load(out.toString())));
    }

    @Test
    void defaultSaveModeIsRefusedBySpark() {
        Exception e = assertThrows(Exception.class,
                () -> sparkRows().write().format("arrow").save(dir.resolve("out").toString()));
        assertTrue(e.getMessage().contains("ErrorIfExists"), e.getMessage());
    }

    @Test
    void failedJobLeavesNoVisibleFiles() throws IOException {
        Path out = dir.resolve("out");
        Files.createDirectories(out);
        Dataset<Row> failing = sparkRows().repartition(2).selectExpr("failOn12(id) AS id", "tokens");
        Exception e = assertThrows(Exception.class,
                () -> failing.write().format("arrow").mode(SaveMode.Append).save(out.toString()));
        assertTrue(causes(e).contains("task fails on purpose"), causes(e));
        assertEquals(List.of(), arrowFiles(out));
        assertFalse(Files.exists(out.resolve("_temporary")), "the aborted job's temporary files are gone");
    }

    @Test
    void truncatedFileFailsNamingIt() throws IOException {
        Files.copy(Path.of(fixture("tokens_int64_ids.arrow")), dir.resolve("a-good.arrow"));
        byte[] whole = Files.readAllBytes(Path.of(fixture("tokens_int64_ids.arrow")));
        Files.write(dir.resolve("b-truncated.arrow"), Arrays.copyOf(whole, whole.length / 2));
        // The schema comes from the good first file; the truncated one fails in its task.
        Exception e = assertThrows(Exception.class,
                () -> spark.read().format("arrow").load(dir.toString()).collect());
        assertTrue(causes(e).contains("b-truncated.arrow: truncated"), causes(e));

        // Alone, it fails already when Spark reads the schema.
        e = assertThrows(Exception.class,
                () -> spark.read().format("arrow").load(dir.resolve("b-truncated.arrow").toString()));
        assertTrue(causes(e).contains("b-truncated.arrow: truncated"), causes(e));
    }

    @Test
    void fileWithOtherColumnsFailsNamingItAndTheColumn() throws IOException {
        Files.copy(Path.of(fixture("tokens_int64_ids.arrow")), dir.resolve("a.arrow"));
        Files.copy(Path.of(fixture("tokens_utf8_ids.arrows")), dir.resolve("b.arrows"));
        Exception e = assertThrows(Exception.class,
                () -> spark.read().format("arrow").load(dir.toString()).collect());
        assertTrue(causes(e).contains("b.arrows: column id has type string, expected bigint"), causes(e));
    }

    @Test
    void missingPathFailsNamingIt() {
        Exception e = assertThrows(Exception.class,
                () -> spark.read().format("arrow").load(dir.resolve("absent").toString()));
        assertTrue(causes(e).contains("path does not exist: " + dir.resolve("absent")), causes(e));
    }

    /**
     * A file written through Spark, committed in src/test/resources/ours/ for check_our_arrow.py (rewritten with
     * -Dmoescore.regenerateFixtures=true); otherwise checks the committed one still reads back as written.
     */
    @Test
    void sparkWrittenFixture() throws IOException {
        Path committed = Path.of(System.getProperty("moescore.fixtureDir", "src/test/resources/ours"))
                .resolve("spark_written.arrow");
        if (Boolean.parseBoolean(System.getProperty("moescore.regenerateFixtures", "false"))) {
            Path out = dir.resolve("out");
            sparkRows().coalesce(1).write().format("arrow").mode(SaveMode.Overwrite).save(out.toString());
            Files.createDirectories(committed.getParent());
            Files.copy(arrowFiles(out).get(0), committed, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        assumeTrue(Files.exists(committed), "no committed " + committed);
        assertEquals(render(sparkRows()), render(spark.read().format("arrow").load(committed.toString())));
    }

    /** Every type our schemas use: long, int, double, float, string, array of int, array of float; nulls. */
    static Dataset<Row> sparkRows() {
        StructType schema = new StructType()
                .add("id", DataTypes.LongType)
                .add("tokens", DataTypes.createArrayType(DataTypes.IntegerType))
                .add("text", DataTypes.StringType)
                .add("mean_nll", DataTypes.DoubleType)
                .add("token_logprobs", DataTypes.createArrayType(DataTypes.FloatType))
                .add("num_tokens", DataTypes.IntegerType);
        return spark.createDataFrame(List.of(
                RowFactory.create(10L, List.of(1, 2, 3), "def f(x):", 0.75, List.of(-0.5f, -1.0f), 3),
                RowFactory.create(11L, List.of(5), null, null, List.of(), 1),
                RowFactory.create(12L, List.of(), "zeilé", null, null, 0)), schema);
    }

    private static List<String> render(Dataset<Row> df) {
        return rows(df.orderBy("id"), Row::toString);
    }

    private static List<String> rows(Dataset<Row> df, java.util.function.Function<Row, String> show) {
        return df.collectAsList().stream().map(show).toList();
    }

    private static List<Path> arrowFiles(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".arrow")).sorted().toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String causes(Throwable e) {
        List<String> messages = new ArrayList<>();
        for (Throwable t = e; t != null; t = t.getCause()) {
            messages.add(String.valueOf(t.getMessage()));
        }
        return String.join(" / ", messages);
    }

    private static String range(int n) {
        List<Integer> list = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            list.add(i);
        }
        return list.toString();
    }

    private static String fixture(String name) {
        try {
            return Path.of(ArrowDataSourceTest.class.getResource("/pyarrow/" + name).toURI()).toString();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
