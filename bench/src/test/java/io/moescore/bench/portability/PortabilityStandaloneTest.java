package io.moescore.bench.portability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.StandaloneCluster;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The portability job on a standalone cluster of 2 workers (each offering one gpu address that the CPU backend
 * ignores), quick suite on the CPU backend: one task per executor, a row set per worker, and a report whose table
 * and charts cover both; then the report rendered by headless Chromium ({@code -Dmoescore.chromium}, default
 * /usr/bin/chromium: skipped where it is missing, unless {@code -Dmoescore.requireChromium=true}, as CI runs it).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PortabilityStandaloneTest {
    static final Path CHROMIUM = Path.of(System.getProperty("moescore.chromium", "/usr/bin/chromium"));

    Path tmp;
    Path output;
    int exitCode;
    List<PortabilityRow> rows;

    @BeforeAll
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void runTheJobOnTwoWorkers(@TempDir Path dir) throws Exception {
        tmp = dir;
        output = tmp.resolve("portability");
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).start()) {
            SparkSession.Builder b = SparkSession.builder().appName("PortabilityStandaloneTest");
            cluster.applicationConf().forEach(b::config);
            b.config("spark.executor.resource.gpu.amount", "1").config("spark.task.resource.gpu.amount", "1")
                    .config("spark.executor.cores", "1");
            SparkSession spark = b.getOrCreate();
            try {
                PortabilityOptions options = new PortabilityOptions(KernelSuite.quick(), "cpu", "bf16",
                        PortabilityTests.demoModel().toString(), "ci-standalone", 2);
                exitCode = PortabilityJob.run(spark, options, output.toString(), "error");
                rows = ResultStore.readRows(spark, output.toString());
            } finally {
                spark.stop();
            }
        }
    }

    @Test
    void everyWorkerReportsOneFullRowSetOnTheCpuBackend() {
        assertEquals(MoeScoreJob.EXIT_OK, exitCode, "exit code");
        Map<String, List<PortabilityRow>> byExecutor = rows.stream()
                .collect(Collectors.groupingBy(PortabilityRow::executorId));
        assertEquals(2, byExecutor.size(), "rows from two executors: " + byExecutor.keySet());
        KernelSuite quick = KernelSuite.quick();
        int perDevice = quick.expertShapes().size() * quick.expertTokens().size() * 2
                + quick.attentionShapes().size() + quick.lmHeadShapes().size() + 2;
        byExecutor.forEach((id, own) -> {
            assertEquals(perDevice, own.size(), "rows of executor " + id);
            own.forEach(r -> assertEquals("cpu", r.backend(), "backend of " + r));
            own.forEach(r -> assertNull(r.error(), "error in " + r));
            own.forEach(r -> assertTrue(r.medianMs() != null && r.medianMs() > 0, "median of " + r));
        });
        long speedups = rows.stream().filter(r -> r.speedup24OverDense() != null).count();
        assertEquals(2L * (quick.expertShapes().size() * quick.expertTokens().size() + 1), speedups,
                "a speedup on every 2:4 row (expert layers and the model run) of both executors");
    }

    @Test
    void writesParquetCsvChartsAndAReportWithARowPerWorker() throws Exception {
        assertTrue(Files.isDirectory(output.resolve("results.parquet")), "results.parquet");
        try (Stream<Path> csv = Files.list(output.resolve("results.csv"))) {
            Path part = csv.filter(p -> p.getFileName().toString().endsWith(".csv")).findFirst().orElseThrow();
            assertEquals(rows.size() + 1, Files.readAllLines(part).size(), "CSV header + one line per row");
        }
        for (String chart : List.of("speedup-24-over-dense", "expert-layer-tflops", "attention-lm-head-tflops")) {
            BufferedImage png = ImageIO.read(output.resolve("charts/" + chart + ".png").toFile());
            assertTrue(PortabilityTests.colouredPixels(png, 0, png.getHeight()) > 200, chart + ".png has bars");
        }
        String html = Files.readString(output.resolve("report.html"));
        assertFalse(html.contains("http://") && html.contains("src=\"http"), "nothing fetched from the network");
        assertEquals(3, html.split("<svg ", -1).length - 1, "three inline charts");
        Set<String> executorsInTable = new TreeSet<>();
        for (String line : html.split("\n")) {
            if (line.startsWith("<tr><td>ci-standalone</td>")) {
                executorsInTable.add(line.split("</td><td>")[2]);
            }
        }
        assertEquals(rows.stream().map(PortabilityRow::executorId).collect(Collectors.toSet()), executorsInTable,
                "the table has rows of both workers' executors");
    }

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void headlessChromiumDrawsTheCharts() throws Exception {
        String missing = CHROMIUM + " is missing (apt-get install chromium; README, 'Portability benchmark' says how "
                + "to run the check by hand)";
        if (Boolean.getBoolean("moescore.requireChromium")) {
            assertTrue(Files.isExecutable(CHROMIUM), "headless Chromium is required here, but " + missing);
        }
        assumeTrue(Files.isExecutable(CHROMIUM), "headless Chromium check skipped: " + missing);
        Path screenshot = tmp.resolve("report.png");
        BufferedImage page = PortabilityTests.screenshot(CHROMIUM, output.resolve("report.html"), screenshot, tmp);
        // the first chart (speedups) starts below the heading and summary: count coloured (bar) pixels there
        int bars = PortabilityTests.colouredPixels(page, 80, Math.min(page.getHeight(), 500));
        assertTrue(bars > 500, "coloured bar pixels in the rendered chart area: " + bars + " (" + screenshot + ")");
    }

    @AfterAll
    void nothingLeftRunning() {
        // StandaloneCluster.close() stopped the daemons; the session was stopped in runTheJobOnTwoWorkers
    }
}
