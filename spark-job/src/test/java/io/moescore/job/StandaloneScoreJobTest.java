package io.moescore.job;

import static io.moescore.job.SubmittedJobs.awaitExit;
import static io.moescore.job.SubmittedJobs.destroy;
import static io.moescore.job.SubmittedJobs.faultyInputConf;
import static io.moescore.job.SubmittedJobs.markers;
import static io.moescore.job.SubmittedJobs.splitDemoInput;
import static io.moescore.job.SubmittedJobs.tail;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.StandaloneCluster;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.spark.launcher.JavaModuleOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The scoring job submitted to a real standalone cluster with spark-submit semantics: a master and two workers (child
 * JVMs, each worker offering one gpu address and one core, see {@link StandaloneCluster}), and the driver started the
 * way {@code spark-submit --master spark://... --deploy-mode client --class io.moescore.spark.MoeScoreJob APP.jar
 * ARGS} starts it: {@code org.apache.spark.deploy.SparkSubmit} in a child JVM whose classpath is only Spark and the
 * libraries (the cluster's SPARK_HOME/jars), with the job's classes arriving solely through the application jar and
 * {@code --jars}. The job's own main method parses the options and exits with its exit code.
 *
 * <p>The result must equal the single-process scorer row by row, bit for bit (the CPU backend does not depend on
 * thread count or batch composition), and the job summary must show that both workers' executors scored rows.
 */
class StandaloneScoreJobTest {
    private static final Duration SUBMIT_TIMEOUT = Duration.ofSeconds(75);
    private static final Duration FAULT_JOB_TIMEOUT = Duration.ofSeconds(150);

    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void sparkSubmitToTwoWorkersEqualsSingleProcessScorer() throws Exception {
        long t0 = System.nanoTime();
        Path output = tmp.resolve("scores.parquet");
        Path submitLog = tmp.resolve("spark-submit.log");
        Map<String, Integer> workerOfExecutor = new ConcurrentHashMap<>();
        // The reference, computed while the cluster starts and the job runs (most of that time is spent waiting for
        // JVMs to start and register, so it costs the test little wall time).
        CompletableFuture<Path> reference = CompletableFuture.supplyAsync(() -> {
            try {
                return SparkTests.scoreLocally(SparkTests.demoInput(), Files.createDirectories(tmp.resolve("local")),
                    false, 0);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, runnable -> {
            Thread t = new Thread(runnable, "single-process-reference");
            t.setDaemon(true);
            t.start();
        });
        int exit;
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .start()) {
            long up = System.nanoTime();
            System.out.printf("standalone cluster %s up in %.1f s (dir %s)%n", cluster.masterUrl(), (up - t0) / 1e9,
                cluster.dir());
            Process submit = sparkSubmit(cluster, output, submitLog, List.of("--input",
                SparkTests.demoInput().toString(), "--input-format", "json", "--partitions", "4"), Map.of(), false).start();
            try {
                // While the application runs, record which worker each executor JVM belongs to (they exit with it).
                exit = awaitExit(submit, SUBMIT_TIMEOUT, submitLog, cluster::diagnostics,
                    () -> cluster.executors().forEach(e -> workerOfExecutor.put(e.executorId(), e.worker())));
                System.out.printf("spark-submit exited %d after %.1f s; executors seen %s%n", exit,
                    (System.nanoTime() - up) / 1e9, workerOfExecutor);
                if (exit != 0) {
                    throw new AssertionError("spark-submit exited with " + exit + "\n" + tail(submitLog) + "\n"
                        + cluster.diagnostics());
                }
            } finally {
                destroy(submit);
            }
        }   // close(): executors, workers and master are gone from here on
        String log = Files.readString(submitLog);
        assertTrue(log.contains("moescore: 24 rows (0 with errors)"), "the job printed its summary:\n" + log);

        // The job summary beside the output: 24 rows, from two executors, one per worker, both of which scored rows.
        ObjectMapper json = new ObjectMapper();
        Path summaryFile = tmp.resolve("scores.parquet.summary.json");
        assertTrue(Files.exists(summaryFile), "summary written as OUTPUT.summary.json");
        Map<String, Long> rowsByExecutor = SubmittedJobs.demoRowsByExecutor(json.readTree(summaryFile.toFile()), 2);
        assertEquals(Set.of(0, 1), rowsByExecutor.keySet().stream().map(id -> {
            Integer worker = workerOfExecutor.get(id);
            assertNotNull(worker, "executor " + id + " of the summary is none of the workers' JVMs " + workerOfExecutor);
            return worker;
        }).collect(Collectors.toSet()), "one scoring executor per worker");

        // Rows in = rows out, and every row equals the single-process scorer's, exactly. The output is read with
        // parquet-hadoop directly: a local SparkSession would add several seconds and nothing to what is checked.
        SubmittedJobs.assertExactOutput(output, reference.get(60, TimeUnit.SECONDS));
        System.out.printf("standalone score job test %.1f s in all%n", (System.nanoTime() - t0) / 1e9);
    }

    /**
     * Executor loss: the demo rows in 8 JSON files (one task each, every task's open slowed by 1.5 s through
     * {@link FaultInjectingFileSystem}), on the 2-worker cluster; once three tasks have started, one executor JVM
     * is killed by its process id. The job completes (its tasks rerun, the worker starts a new executor): rows in =
     * rows out, no duplicate ids, every row equal to the single-process scorer's.
     */
    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void losingAnExecutorMidJobStillGivesExactOutput() throws Exception {
        Path in = splitDemoInput(tmp);
        Path state = Files.createDirectories(tmp.resolve("fault-state"));
        Path output = tmp.resolve("scores-after-loss.parquet");
        Path submitLog = tmp.resolve("spark-submit-loss.log");
        Map<String, String> conf = faultyInputConf(state);
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .start()) {
            Process submit = sparkSubmit(cluster, output, submitLog, List.of("--input", "faulty://" + in,
                "--input-format", "json"), conf, true).start();
            try {
                boolean[] killed = {false};
                int exit = awaitExit(submit, FAULT_JOB_TIMEOUT, submitLog, cluster::diagnostics, () -> {
                    long started = markers(state, "opened-");
                    if (!killed[0] && started >= 3) {
                        List<StandaloneCluster.ExecutorProcess> executors = cluster.executors();
                        assertEquals(2, executors.size(), "two executors before the kill");
                        assertTrue(executors.get(0).kill(), "executor " + executors.get(0) + " killed");
                        System.out.printf("killed executor %s (pid %d) after %d tasks started%n",
                            executors.get(0).executorId(), executors.get(0).pid(), started);
                        killed[0] = true;
                    }
                });
                assertTrue(killed[0], "the job finished before an executor could be killed:\n" + tail(submitLog));
                assertEquals(0, exit, "spark-submit exit code\n" + tail(submitLog));
            } finally {
                destroy(submit);
            }
        }
        assertExactOutput(output);
    }

    /**
     * Speculative execution and a task failure in one job: with {@code spark.speculation=true}, one of the 8 tasks
     * is slow on its first attempt (15 s in its first open), so Spark launches a copy on the other executor, which
     * wins; another task's first attempt fails reading its file and is retried. No duplicated or missing rows,
     * every row exact.
     */
    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void speculationAndATaskRetryGiveNoDuplicatesOrGaps() throws Exception {
        Path in = splitDemoInput(tmp);
        Path state = Files.createDirectories(tmp.resolve("fault-state"));
        Path output = tmp.resolve("scores-speculated.parquet");
        Path submitLog = tmp.resolve("spark-submit-speculation.log");
        Map<String, String> conf = new TreeMap<>(faultyInputConf(state));
        conf.put("spark.hadoop.faulty.slowOnce", "rows-5");
        conf.put("spark.hadoop.faulty.slowOnceMillis", "90000");  // a cap: the slow attempt waits for its copy
        conf.put("spark.hadoop.faulty.failOnce", "rows-2");
        conf.put("spark.speculation", "true");
        conf.put("spark.speculation.interval", "200ms");
        conf.put("spark.speculation.multiplier", "1.5");
        conf.put("spark.speculation.quantile", "0.5");
        conf.put("spark.speculation.efficiency.enabled", "false");  // the slow attempt sleeps: judge by time only
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .distinctHosts().start()) {
            Process submit = sparkSubmit(cluster, output, submitLog, List.of("--input", "faulty://" + in,
                "--input-format", "json"), conf, true).start();
            try {
                assertEquals(0, awaitExit(submit, FAULT_JOB_TIMEOUT, submitLog, cluster::diagnostics, () -> { }),
                    "spark-submit exit code\n" + tail(submitLog));
            } finally {
                destroy(submit);
            }
        }
        long attemptsOfSlowFile = markers(state, "opened-rows-5");
        assertTrue(attemptsOfSlowFile >= 2, "a speculative copy read the slow task's file (" + attemptsOfSlowFile
            + " attempts)\n" + tail(submitLog));
        assertTrue(Files.exists(state.resolve("failed-rows-2.json")), "the injected task failure happened");
        assertExactOutput(output);
    }

    /**
     * Input that vanishes while the job runs, on the cluster: once scoring tasks have started, a file not yet read
     * is deleted. The job fails after its retries (exit 1) with a message naming the file, and nothing is
     * committed: no _SUCCESS, no visible part files.
     */
    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void inputVanishingMidJobFailsNamingTheFileAndCommitsNothing() throws Exception {
        Path in = splitDemoInput(tmp);
        Path state = Files.createDirectories(tmp.resolve("fault-state"));
        Path output = tmp.resolve("scores-vanished.parquet");
        Path submitLog = tmp.resolve("spark-submit-vanished.log");
        Path victim = in.resolve("rows-7.json");
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .start()) {
            Process submit = sparkSubmit(cluster, output, submitLog, List.of("--input", "faulty://" + in,
                "--input-format", "json"), faultyInputConf(state), true).start();
            try {
                int exit = awaitExit(submit, FAULT_JOB_TIMEOUT, submitLog, cluster::diagnostics, () -> {
                    // a task's marker comes 1.5 s before its real open: deleted now, rows-7 is gone for every
                    // attempt that reads it, whichever task that is
                    if (Files.exists(victim) && markers(state, "opened-") > 0) {
                        Files.delete(victim);
                    }
                });
                assertFalse(Files.exists(victim), "the input file was deleted while the job ran");
                assertEquals(1, exit, "spark-submit exit code\n" + tail(submitLog));
            } finally {
                destroy(submit);
            }
        }
        String log = Files.readString(submitLog);
        assertTrue(log.contains("moescore: the job failed and committed no output") && log.contains("rows-7.json"),
            "the job's message names the file:\n" + tail(submitLog));
        assertFalse(Files.exists(output.resolve("_SUCCESS")), "no _SUCCESS");
        if (Files.exists(output)) {
            try (var files = Files.list(output)) {
                assertEquals(List.of(), files.map(p -> p.getFileName().toString())
                    .filter(n -> !n.startsWith("_") && !n.startsWith(".")).toList(), "no visible part files");
            }
        }
    }

    /**
     * Resume after the whole job is killed: the 8-file input with {@code --resume}; once 3 splits are committed in
     * the output's hidden folder the driver JVM is killed (SIGKILL) and then every executor. The output shows
     * nothing. A second spark-submit with {@code --resume} reads only the files of the splits not committed, and
     * the output holds every row once, each equal to the single-process scorer's.
     */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void killingTheWholeJobThenResumingScoresOnlyTheRest() throws Exception {
        Path in = splitDemoInput(tmp);
        Path firstState = Files.createDirectories(tmp.resolve("fault-state-1"));
        Path secondState = Files.createDirectories(tmp.resolve("fault-state-2"));
        Path output = tmp.resolve("scores-resumed.parquet");
        Path splits = output.resolve("_moescore_resume/splits");
        List<String> args = List.of("--input", "faulty://" + in, "--input-format", "json", "--resume");
        long committedAtKill;
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .start()) {
            Path firstLog = tmp.resolve("spark-submit-killed.log");
            Process first = sparkSubmit(cluster, output, firstLog, args, faultyInputConf(firstState), true).start();
            try {
                boolean[] killed = {false};
                awaitExit(first, FAULT_JOB_TIMEOUT, firstLog, cluster::diagnostics, () -> {
                    if (!killed[0] && Files.exists(splits) && entries(splits) >= 3) {
                        List<StandaloneCluster.ExecutorProcess> executors = cluster.executors();
                        first.destroyForcibly().waitFor();
                        executors.forEach(StandaloneCluster.ExecutorProcess::kill);
                        killed[0] = true;
                    }
                });
                assertTrue(killed[0], "the job finished before it could be killed:\n" + tail(firstLog));
            } finally {
                destroy(first);
            }
            committedAtKill = entries(splits);
            System.out.printf("killed the driver and executors with %d of 8 splits committed%n", committedAtKill);
            assertTrue(committedAtKill < 8, "some splits were left to score");
            assertFalse(Files.exists(output.resolve("_SUCCESS")), "no _SUCCESS after the kill");
            try (var files = Files.list(output)) {
                assertEquals(List.of(), files.map(p -> p.getFileName().toString())
                    .filter(n -> !n.startsWith("_") && !n.startsWith(".")).toList(), "no visible part files");
            }

            Path secondLog = tmp.resolve("spark-submit-resumed.log");
            Process second = sparkSubmit(cluster, output, secondLog, args, faultyInputConf(secondState), true).start();
            try {
                assertEquals(0, awaitExit(second, FAULT_JOB_TIMEOUT, secondLog, cluster::diagnostics, () -> { }),
                    "spark-submit exit code\n" + tail(secondLog));
            } finally {
                destroy(second);
            }
        }
        assertEquals(8 - committedAtKill, markers(secondState, "opened-"),
            "the second run read only the files of the splits not committed");
        JsonNode resume = new ObjectMapper().readTree(tmp.resolve("scores-resumed.parquet.summary.json").toFile())
            .get("resume");
        assertNotNull(resume, "the summary has resume counts");
        assertEquals(committedAtKill, resume.get("splits_reused").asLong(), resume.toString());
        assertEquals(8 - committedAtKill, resume.get("splits_scored").asLong(), resume.toString());
        assertEquals(24, resume.get("rows_reused").asLong() + resume.get("rows_scored").asLong(), resume.toString());
        assertFalse(Files.exists(output.resolve("_moescore_resume")), "the resume folder is gone after promotion");
        assertExactOutput(output);
    }

    private static long entries(Path folder) throws IOException {
        try (var files = Files.list(folder)) {
            return files.count();
        }
    }

    /** Committed, rows in = rows out, no duplicate ids, every row equal to the single-process scorer's. */
    private void assertExactOutput(Path output) throws IOException {
        SubmittedJobs.assertExactOutput(output, SparkTests.scoreLocally(SparkTests.demoInput(),
            Files.createDirectories(tmp.resolve("local")), false, 0));
    }

    /**
     * {@code spark-submit --master URL --deploy-mode client --class io.moescore.spark.MoeScoreJob --jars LIBS APP.jar
     * ARGS} as a child JVM, as submit-scripts/moescore runs it without SPARK_HOME: Spark's SparkSubmit main class on a
     * classpath of Spark and the third-party jars. The application jar is the spark-job classes packed by
     * {@link StandaloneCluster#applicationJars()}; the other packed class directories of this build (gpu-runtime and
     * arrow-io when Maven resolves them from the reactor) go with --jars. spark-submit puts both on the driver's
     * class loader and into spark.jars, which is how they reach the executors. The test classes are not shipped: the
     * job must not need them.
     */
    private ProcessBuilder sparkSubmit(StandaloneCluster cluster, Path output, Path log, List<String> inputArgs,
                                       Map<String, String> extraConf, boolean shipTestClasses) throws IOException {
        Path app = null;
        List<String> libs = new ArrayList<>();
        for (Path jar : cluster.applicationJars()) {
            String name = jar.getFileName().toString();
            if (name.endsWith("-spark-job-classes.jar")) {
                app = jar;
            } else if (shipTestClasses || !name.endsWith("test-classes.jar")) {
                libs.add(jar.toString());
            }
        }
        assertNotNull(app, "no packed spark-job classes among " + cluster.applicationJars());
        Path repo = SparkTests.repoRoot();
        String jvmOptions = Files.readString(repo.resolve("conf/jvm-options")).strip();

        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx1g");
        cmd.addAll(Arrays.asList(JavaModuleOptions.defaultModuleOptionArray()));
        cmd.addAll(Arrays.asList(jvmOptions.split("\\s+")));
        cmd.add("-Dlog4j2.configurationFile=" + repo.resolve("conf/log4j2.properties"));
        cmd.add("-cp");
        cmd.add(cluster.sparkHome().resolve("jars") + File.separator + "*");
        cmd.add("org.apache.spark.deploy.SparkSubmit");
        cmd.addAll(List.of("--master", cluster.masterUrl(), "--deploy-mode", "client",
            "--class", "io.moescore.spark.MoeScoreJob", "--name", "StandaloneScoreJobTest"));
        if (!libs.isEmpty()) {
            cmd.addAll(List.of("--jars", String.join(",", libs)));
        }
        Map<String, String> conf = new TreeMap<>(cluster.applicationConf());
        conf.remove("spark.master");   // --master
        conf.remove("spark.jars");     // --jars and the application jar
        conf.put("spark.executor.resource.gpu.amount", "1");
        conf.put("spark.task.resource.gpu.amount", "1");
        conf.put("spark.executor.cores", "1");
        conf.put("spark.executor.extraJavaOptions", jvmOptions);
        conf.put("spark.moescore.cpuThreads", "1");
        // The 4 scoring tasks read the shuffle output of one map task, so all of them prefer the executor that ran it;
        // without delay scheduling the other executor takes tasks as soon as it has a free slot.
        conf.put("spark.locality.wait", "0s");
        conf.putAll(extraConf);
        conf.forEach((k, v) -> cmd.addAll(List.of("--conf", k + "=" + v)));
        cmd.add(app.toString());
        cmd.addAll(inputArgs);
        cmd.addAll(List.of("--output", output.toString(), "--output-format", "parquet", "--model",
            SparkTests.demoModel().toString(), "--backend", "cpu"));

        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        // A developer's own Spark settings (SPARK_HOME/conf/spark-defaults.conf, SPARK_CONF_DIR, ...) stay out.
        pb.environment().keySet().removeIf(k -> k.startsWith("SPARK_"));
        return pb;
    }
}
