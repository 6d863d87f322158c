package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.launcher.JavaModuleOptions;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two jobs on one output. The job claims its output with a lock file beside it ({@code .NAME.moescore-lock}) for as
 * long as it runs: a second job, in another JVM, is refused with exit 2 naming the output and the first job (in
 * {@code --mode overwrite} and {@code --mode error} alike), while the first writes every row. A lock left by a job
 * that is gone is taken over; an output created by a writer that is no moescore job, after the job checked, is a
 * moescore message, not Spark's PATH_ALREADY_EXISTS stack trace.
 */
class ConcurrentJobsTest {
    static SparkSession spark;
    @TempDir
    static Path state;
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        spark = SparkSession.builder().master("local[2]").appName("moescore-concurrent-test")
                .config("spark.ui.enabled", "false")
                .config("spark.moescore.cpuThreads", "2")
                .config("spark.moescore.progressSeconds", "0")
                .config("spark.hadoop.fs.faulty.impl", FaultInjectingFileSystem.class.getName())
                .config("spark.hadoop.fs.faulty.impl.disable.cache", "true")
                .config("spark.hadoop.faulty.stateDir", state.toString())
                .getOrCreate();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    @AfterEach
    void clearFaults() {
        spark.sparkContext().hadoopConfiguration().unset("faulty.holdUntil");
        spark.sparkContext().hadoopConfiguration().unset("faulty.mkdirOnOpen");
    }

    static ScoreJobOptions options(String input, Path output, String mode) {
        return SparkTests.with(SparkTests.options(List.of(input), "json", output.toString(), "parquet",
                SparkTests.demoModel().toString(), false, 0, 0, 8192), "mode", mode);
    }

    static Path lockOf(Path output) {
        return output.resolveSibling("." + output.getFileName() + ".moescore-lock");
    }

    /** `moescore score` in a JVM of its own (local mode), its stdout and stderr in {@code log}. */
    static Process startJob(Path output, String mode, Path log) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx1g");
        cmd.addAll(Arrays.asList(JavaModuleOptions.defaultModuleOptionArray()));
        cmd.addAll(List.of("-Dspark.master=local[1]", "-Dspark.ui.enabled=false", "-Dspark.log.level=WARN",
                "-Dspark.moescore.cpuThreads=1", "-Dspark.moescore.progressSeconds=0"));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), MoeScoreJob.class.getName()));
        cmd.addAll(List.of("--input", SparkTests.demoInput().toString(), "--output", output.toString(), "--model",
                SparkTests.demoModel().toString(), "--backend", "cpu", "--mode", mode));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    }

    static void awaitFile(Path file, CompletableFuture<?> job, int seconds) throws Exception {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        while (!Files.exists(file)) {
            if (job.isDone()) {
                job.get();
                throw new AssertionError("the job ended before " + file + " appeared");
            }
            assertTrue(System.nanoTime() < deadline, file + " did not appear in " + seconds + " s");
            Thread.sleep(50);
        }
    }

    @Test
    void aSecondJobOnTheSameOutputIsRefusedWhileTheFirstWritesAllItsRows() throws Exception {
        Path out = dir.resolve("scores");
        Path gate = dir.resolve("gate");
        // the first job holds in its scoring stage (every read of a scoring task waits for the gate)
        spark.sparkContext().hadoopConfiguration().set("faulty.holdUntil", gate.toString());
        CompletableFuture<JobSummary> first = CompletableFuture.supplyAsync(() -> MoeScoreJob.score(spark,
                options("faulty://" + SparkTests.demoInput(), out, "overwrite")));
        try {
            awaitFile(lockOf(out), first, 120);
            String firstApp = spark.sparkContext().applicationId();
            Path overwriteLog = dir.resolve("second-overwrite.log");
            Path errorLog = dir.resolve("second-error.log");
            Process overwrite = startJob(out, "overwrite", overwriteLog);
            Process error = startJob(out, "error", errorLog);
            for (Process p : List.of(overwrite, error)) {
                if (!p.waitFor(300, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            }
            for (Path log : List.of(overwriteLog, errorLog)) {
                String text = Files.readString(log);
                Process p = log.equals(overwriteLog) ? overwrite : error;
                assertEquals(MoeScoreJob.EXIT_BAD_INVOCATION, p.exitValue(), text);
                assertTrue(text.contains("moescore: output file:" + out + " is being written by another moescore "
                        + "job: application " + firstApp), text);
                assertTrue(text.contains(lockOf(out).toString()), "names the lock: " + text);
                assertFalse(text.contains("\tat org.apache.spark") || text.contains("PATH_ALREADY_EXISTS")
                        || text.contains("FileNotFoundException"), "no raw Spark error: " + text);
            }
            assertFalse(first.isDone(), "the first job was still held while the others were refused");
        } finally {
            Files.createFile(gate);
        }
        JobSummary summary = first.get(300, TimeUnit.SECONDS);
        assertEquals(24, summary.rows());
        assertEquals(24, spark.read().parquet(out.toString()).count(), "the first job's rows, all of them");
        assertTrue(Files.exists(out.resolve("_SUCCESS")));
        assertFalse(Files.exists(lockOf(out)), "the lock is removed when the job ends");
    }

    /** A lock as another job would leave it. */
    static void writeLock(Path output, String appId, String host, long pid, Instant modified) throws IOException {
        Path lock = lockOf(output);
        Files.writeString(lock, "{\"app_id\": \"" + appId + "\", \"app_name\": \"other\", \"host\": \"" + host
                + "\", \"user\": \"someone\", \"pid\": " + pid + ", \"process_start\": \"\", \"token\": \"t-" + appId
                + "\", \"started\": \"" + modified + "\"}");
        Files.setLastModifiedTime(lock, FileTime.from(modified));
    }

    @Test
    void aLiveLockRefusesTheJobAndALockWhoseJobIsGoneIsTakenOver() throws Exception {
        String input = dir.resolve("in.jsonl").toString();
        Files.write(Path.of(input), Files.readAllLines(SparkTests.demoInput()).subList(0, 3));
        String here = InetAddress.getLocalHost().getHostName();

        // a job on another host with a recent heartbeat: refused, nothing written, its lock left alone
        Path out = dir.resolve("held");
        writeLock(out, "app-elsewhere-1", "elsewhere.example", 1, Instant.now());
        String lockBefore = Files.readString(lockOf(out));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(input, out, "overwrite")));
        assertTrue(e.getMessage().contains("output file:" + out + " is being written by another moescore job: "
                + "application app-elsewhere-1 ('other') of someone on elsewhere.example"), e.getMessage());
        assertFalse(Files.exists(out), "nothing written");
        assertFalse(Files.exists(Path.of(out + ".summary.json")), "no summary written");
        assertEquals(lockBefore, Files.readString(lockOf(out)), "the other job's lock is left alone");

        // the same, but its heartbeat stopped long ago: taken over
        Path old = dir.resolve("old");
        writeLock(old, "app-elsewhere-2", "elsewhere.example", 1, Instant.now().minusSeconds(3600));
        assertEquals(3, MoeScoreJob.score(spark, options(input, old, "error")).rows());
        assertFalse(Files.exists(lockOf(old)), "the taken-over lock is removed at the end");

        // a job of this host whose process has exited (killed): taken over at once
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path dead = dir.resolve("dead");
        writeLock(dead, "local-gone", here, gone.pid(), Instant.now());
        assertEquals(3, MoeScoreJob.score(spark, options(input, dead, "overwrite")).rows());
        assertFalse(Files.exists(lockOf(dead)));

        // a job of this host that runs (this JVM's process stands in for it): refused
        Path live = dir.resolve("live");
        writeLock(live, "local-live", here, ProcessHandle.current().pid(), Instant.now());
        Files.writeString(lockOf(live), Files.readString(lockOf(live)).replace("\"process_start\": \"\"",
                "\"process_start\": \"" + ProcessHandle.current().info().startInstant().orElseThrow() + "\""));
        e = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark, options(input, live, "error")));
        assertTrue(e.getMessage().contains("application local-live"), e.getMessage());
    }

    @Test
    void anOutputAnotherWriterCreatesAfterTheCheckIsNamedNotAStackTrace() throws Exception {
        Path out = dir.resolve("raced");
        // the first read of the input (the driver's pass over the JSON ids) creates the output, as another writer
        spark.sparkContext().hadoopConfiguration().set("faulty.mkdirOnOpen", out.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options("faulty://" + SparkTests.demoInput(), out, "error")));
        assertTrue(e.getMessage().startsWith("output " + out + " already exists (something else created it"),
                e.getMessage());
        assertFalse(Files.exists(lockOf(out)), "the lock is removed when the job fails");
    }
}
