package io.moescore.job;

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
import io.moescore.sparsify.CalibrationRows;
import io.moescore.sparsify.Sparsifier;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The jobs on YARN, submitted as a user submits them: {@code submit-scripts/examples/yarn.sh} (scoring) and
 * {@code submit-scripts/moescore sparsify-job --master yarn}, with HADOOP_CONF_DIR naming an in-process cluster
 * ({@link YarnCluster}: HDFS, a ResourceManager and two NodeManagers offering one {@code yarn.io/gpu} each, GPUs a
 * stand-in nvidia-smi reports to conf/get-gpus.sh in the containers). Input, model and output are on HDFS.
 *
 * <ul>
 *   <li>scoring in cluster mode (the driver in the application master) without SPARK_HOME (the Spark jars Maven
 *       resolved, from spark-job/target/lib), and in client mode with SPARK_HOME (a Spark layout whose
 *       bin/spark-submit runs Spark's own launcher): two executors, one per NodeManager, both scored rows, each
 *       saw its NodeManager's GPU address (Spark's event log), every row equals the single-process scorer's;</li>
 *   <li>the sparsify job (client mode): its checkpoint equals the single-process tool's;</li>
 *   <li>an executor container killed mid-job: the job completes with every row once;</li>
 *   <li>a queue the cluster does not have: refused before submission, naming the queue.</li>
 * </ul>
 *
 * <p>The scripts need the packaged build (spark-job/target/*.jar and target/lib), so this is an integration test
 * (failsafe, after {@code package}). To keep its time down, YARN's containers run the jars in place
 * ({@code spark.yarn.jars=local:...}) instead of uploading 350 MB to HDFS per application.
 */
@IntegrationTest
class YarnScoreJobIT {
    private static final Duration JOB_TIMEOUT = Duration.ofSeconds(240);
    private static final Duration CHECK_TIMEOUT = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path base;
    static YarnCluster cluster;
    static String model;
    static String input;
    /** The single-process scorer's JSON Lines output for the demo input, computed while the cluster starts. */
    static CompletableFuture<Path> reference;

    @BeforeAll
    static void start() throws IOException {
        assertBuilt();
        reference = CompletableFuture.supplyAsync(() -> {
            try {
                return SparkTests.scoreLocally(SparkTests.demoInput(), Files.createDirectories(base.resolve("local")),
                        false, 0);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        long t0 = System.nanoTime();
        cluster = YarnCluster.withHdfs(base.resolve("cluster"), 2, 1);
        System.out.printf("YARN cluster (2 NodeManagers, 1 yarn.io/gpu each) and HDFS up in %.1f s%n",
                (System.nanoTime() - t0) / 1e9);
        FileSystem fs = cluster.fileSystem();
        model = cluster.hdfsUri() + "/models/tiny-moe-code";
        input = cluster.hdfsUri() + "/data/input.jsonl";
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SparkTests.demoModel().toUri()),
                new org.apache.hadoop.fs.Path(model));
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SparkTests.demoInput().toUri()),
                new org.apache.hadoop.fs.Path(input));
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void clusterModeWithoutSparkHome() throws Exception {
        scoreAndCheck("cluster", false);
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void clientModeWithSparkHome() throws Exception {
        scoreAndCheck("client", true);
    }

    /** yarn.sh in this deploy mode, two executors; the checks of the class comment. */
    private void scoreAndCheck(String deployMode, boolean withSparkHome) throws Exception {
        long t0 = System.nanoTime();
        String output = cluster.hdfsUri() + "/results/scores-" + deployMode;
        Path events = Files.createDirectories(base.resolve("events-" + deployMode));
        Path log = base.resolve("yarn-" + deployMode + ".log");
        Map<String, String> env = yarnShEnv(deployMode, input, output, withSparkHome);
        env.put("MOESCORE_SUBMIT_OPTS", String.join(" ", testSubmitOptions(withSparkHome)) + " --conf "
                + "spark.eventLog.enabled=true --conf spark.eventLog.compress=false --conf spark.eventLog.dir="
                + events.toUri());
        int exit = run(yarnSh(), env, log, JOB_TIMEOUT, () -> { });
        System.out.printf("yarn.sh (%s mode, %s SPARK_HOME) exited %d after %.1f s%n", deployMode,
                withSparkHome ? "with" : "without", exit, (System.nanoTime() - t0) / 1e9);
        assertEquals(0, exit, "yarn.sh exit code\n" + tail(log) + "\n" + cluster.containerLogs(30));

        FileSystem fs = cluster.fileSystem();
        assertTrue(fs.exists(new org.apache.hadoop.fs.Path(output + "/_SUCCESS")), "the job committed its output");
        JsonNode summary;
        try (InputStream in = fs.open(new org.apache.hadoop.fs.Path(output + ".summary.json"))) {
            summary = JSON.readTree(in);
        }
        Map<String, Long> rowsByExecutor = SubmittedJobs.demoRowsByExecutor(summary, 2);

        // Spark's event log: each executor's NodeManager (by NM_PORT) and the GPU addresses its discovery script gave.
        Map<String, ExecutorSeen> executors = executorsInEventLog(events);
        Set<Integer> nodes = new HashSet<>();
        for (String id : rowsByExecutor.keySet()) {
            ExecutorSeen e = executors.get(id);
            assertNotNull(e, "executor " + id + " of the summary is not in the event log: " + executors);
            int node = cluster.nodeManagerOfPort(e.nmPort());
            assertTrue(node >= 0, "executor " + id + " ran on no NodeManager of the cluster: " + e);
            assertEquals(cluster.gpuAddresses(node), e.gpus(), "the GPU address executor " + id + " discovered on "
                    + "NodeManager " + node);
            nodes.add(node);
        }
        assertEquals(Set.of(0, 1), nodes, "one scoring executor per NodeManager (one GPU each): " + executors);

        SubmittedJobs.assertEqualsSingleProcess(SubmittedJobs.readParquet(new org.apache.hadoop.fs.Path(output),
                cluster.conf()), reference.get(60, TimeUnit.SECONDS));
        System.out.printf("YARN %s-mode score test %.1f s; executors %s%n", deployMode,
                (System.nanoTime() - t0) / 1e9, executors);
    }

    /** The sparsify job on YARN (client mode: the checkpoint is written on the driver) equals the one-process tool. */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void sparsifyJobMatchesTheSingleProcessTool() throws Exception {
        long t0 = System.nanoTime();
        Path calibration = base.resolve("calibration.jsonl");
        Files.write(calibration, Files.readAllLines(SparkTests.repoRoot().resolve("demo/calibration.jsonl"))
                .subList(0, 2));
        String calibrationOnHdfs = cluster.hdfsUri() + "/data/calibration.jsonl";
        cluster.fileSystem().copyFromLocalFile(new org.apache.hadoop.fs.Path(calibration.toUri()),
                new org.apache.hadoop.fs.Path(calibrationOnHdfs));
        CompletableFuture<Void> single = CompletableFuture.runAsync(() -> {
            try {
                Sparsifier.sparsify(SparkTests.demoModel(), base.resolve("sparse-single"), "sparsegpt", false,
                        CalibrationRows.read(calibration));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        Path out = base.resolve("sparse-yarn");
        Path log = base.resolve("yarn-sparsify.log");
        Map<String, String> env = cluster.clientEnv(new TreeMap<>(System.getenv()));
        List<String> opts = new ArrayList<>(testSubmitOptions(false));
        opts.addAll(List.of("--num-executors", "2", "--executor-cores", "1", "--executor-memory", "512m",
                "--files", SparkTests.repoRoot().resolve("conf/get-gpus.sh").toString(),
                "--conf", "spark.executor.memoryOverhead=384m",
                "--conf", "spark.executor.resource.gpu.amount=1",
                "--conf", "spark.executor.resource.gpu.discoveryScript=./get-gpus.sh",
                "--conf", "spark.task.resource.gpu.amount=1"));
        env.put("MOESCORE_SUBMIT_OPTS", String.join(" ", opts));
        int exit = run(List.of(SparkTests.repoRoot().resolve("submit-scripts/moescore").toString(), "sparsify-job",
                "--master", "yarn", "--deploy-mode", "client", "--calibration", calibrationOnHdfs,
                "--calibration-format", "json", "--model", model, "--out", out.toString(), "--backend", "cpu",
                "--partitions", "2"), env, log, JOB_TIMEOUT, () -> { });
        System.out.printf("moescore sparsify-job on YARN exited %d after %.1f s%n", exit,
                (System.nanoTime() - t0) / 1e9);
        assertEquals(0, exit, "moescore sparsify-job exit code\n" + tail(log) + "\n" + cluster.containerLogs(30));
        single.get(120, TimeUnit.SECONDS);
        SparseCheckpoints.assertSame(base.resolve("sparse-single"), out);
        System.out.printf("YARN sparsify test %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    /**
     * An executor container killed (SIGKILL of its JVM) once three of the 8 one-file tasks have started (each
     * task's open slowed by 1.5 s through {@link FaultInjectingFileSystem}, local input): YARN reports the
     * container gone, Spark reruns its tasks, and the job completes with every row once, each exact. Cluster mode,
     * so the fault-injecting file system reaches the driver through spark.driver.extraClassPath.
     */
    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void losingAnExecutorContainerMidJobStillGivesEveryRowOnce() throws Exception {
        long t0 = System.nanoTime();
        Path in = splitDemoInput(base.resolve("split"));
        Path state = Files.createDirectories(base.resolve("fault-state"));
        String output = cluster.hdfsUri() + "/results/scores-after-loss";
        Path log = base.resolve("yarn-loss.log");
        Map<String, String> env = yarnShEnv("cluster", "faulty://" + in, output, false);
        env.put("PARTITIONS", "0");   // as read: one task per file
        List<String> opts = new ArrayList<>(testSubmitOptions(false));
        String testClasses = SparkTests.repoRoot().resolve("spark-job/target/test-classes").toString();
        opts.addAll(List.of("--conf", "spark.driver.extraClassPath=" + testClasses,
                "--conf", "spark.executor.extraClassPath=" + testClasses));
        faultyInputConf(state).forEach((k, v) -> opts.addAll(List.of("--conf", k + "=" + v)));
        env.put("MOESCORE_SUBMIT_OPTS", String.join(" ", opts));
        boolean[] killed = {false};
        int exit = run(yarnSh(), env, log, JOB_TIMEOUT, () -> {
            long started = markers(state, "opened-");
            String app = cluster.runningApplication();
            if (!killed[0] && started >= 3 && app != null) {
                List<ProcessHandle> executors = YarnCluster.executorProcesses(app);
                assertEquals(2, executors.size(), "two executor containers before the kill: " + executors);
                ProcessHandle victim = executors.get(0);
                String which = YarnCluster.commandLine(victim).replaceAll(".*(--executor-id \\S+).*", "$1");
                victim.destroyForcibly();
                victim.onExit().get(10, TimeUnit.SECONDS);
                System.out.printf("killed executor JVM %d (%s) of %s after %d tasks started%n", victim.pid(), which,
                        app, started);
                killed[0] = true;
            }
        });
        assertTrue(killed[0], "the job finished before an executor could be killed:\n" + tail(log));
        if (exit != 0) {   // the build's summary shows test output, not always the assertion's whole message
            System.out.println("yarn.sh exited " + exit + " after the executor loss\n" + tail(log));
        }
        assertEquals(0, exit, "yarn.sh exit code\n" + tail(log) + "\n" + cluster.containerLogs(30));
        assertTrue(cluster.fileSystem().exists(new org.apache.hadoop.fs.Path(output + "/_SUCCESS")),
                "the job committed its output");
        SubmittedJobs.assertEqualsSingleProcess(SubmittedJobs.readParquet(new org.apache.hadoop.fs.Path(output),
                cluster.conf()), reference.get(60, TimeUnit.SECONDS));
        System.out.printf("YARN executor-loss test %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    /** A queue the cluster does not have: yarn.sh exits 2 naming it, and nothing reaches the ResourceManager. */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aQueueTheClusterDoesNotHaveIsRefusedBeforeSubmission() throws Exception {
        long t0 = System.nanoTime();
        List<String> appsBefore = cluster.applicationIds();
        Path log = base.resolve("yarn-bad-queue.log");
        Map<String, String> env = yarnShEnv("cluster", input, cluster.hdfsUri() + "/results/never", false);
        env.put("QUEUE", "no-such-queue");
        env.put("MOESCORE_SUBMIT_OPTS", String.join(" ", testSubmitOptions(false)));
        int exit = run(yarnSh(), env, log, CHECK_TIMEOUT, () -> { });
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("yarn.sh with QUEUE=no-such-queue exited %d after %.1f s%n", exit, seconds);
        String text = Files.readString(log);
        System.out.print(text);
        assertEquals(2, exit, "exit code\n" + tail(log));
        assertTrue(text.contains("moescore: YARN queue 'no-such-queue'") && text.contains("does not exist")
                && text.contains("[default]"), "the message names the queue and the cluster's queues:\n" + text);
        assertEquals(appsBefore, cluster.applicationIds(), "no application was submitted");
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    /** The packaged build the scripts run; without it submit-scripts/moescore would start a Maven build. */
    private static void assertBuilt() throws IOException {
        Path target = SparkTests.repoRoot().resolve("spark-job/target");
        assertTrue(Files.isDirectory(target.resolve("lib")), "no " + target.resolve("lib") + ": run through "
                + "`mvn verify` (this integration test runs after `package`)");
        try (var files = Files.list(target)) {
            assertTrue(files.anyMatch(p -> p.getFileName().toString().matches("moescore-spark-job-.*\\.jar")),
                    "no moescore-spark-job jar in " + target + ": run through `mvn verify`");
        }
        try (var files = Files.list(target.resolve("lib"))) {
            assertTrue(files.anyMatch(p -> p.getFileName().toString().startsWith("spark-yarn_")),
                    "no spark-yarn jar in " + target.resolve("lib") + " (the copy-spark-yarn execution)");
        }
    }

    private static List<String> yarnSh() {
        return List.of(SparkTests.repoRoot().resolve("submit-scripts/examples/yarn.sh").toString(),
                "--input-format", "json", "--output-format", "parquet");
    }

    /** yarn.sh's settings for this cluster: two executors of one core, 512 MiB and one GPU; CPU backend. */
    private static Map<String, String> yarnShEnv(String deployMode, String in, String out, boolean withSparkHome)
            throws IOException {
        Map<String, String> env = cluster.clientEnv(new TreeMap<>(System.getenv()));
        env.putAll(Map.of("INPUT", in, "OUTPUT", out, "MODEL", model, "DEPLOY_MODE", deployMode, "EXECUTORS", "2",
                "EXECUTOR_CORES", "1", "TASK_GPUS", "1", "EXECUTOR_MEMORY", "512m", "MEMORY_OVERHEAD", "384m",
                "BACKEND", "cpu"));
        env.put("PARTITIONS", "4");
        if (withSparkHome) {
            env.put("SPARK_HOME", sparkHome().toString());
        }
        return env;
    }

    /**
     * spark-submit options of these tests only: YARN runs the jars where they are (local:, this one machine is
     * every node), one CPU thread per executor, the 4 scoring tasks spread at once (no locality wait), smaller
     * drivers and application masters, no second application attempt after a failure, and shorter polls: the
     * application master's heartbeat to the ResourceManager (which brings it containers and news of lost ones;
     * default 3 s) and spark-submit's application reports (default 1 s).
     */
    private static List<String> testSubmitOptions(boolean withSparkHome) {
        List<String> opts = new ArrayList<>();
        if (!withSparkHome) {   // with SPARK_HOME its spark-defaults.conf says it
            opts.addAll(List.of("--conf", "spark.yarn.jars=local:" + lib() + "/*"));
        }
        opts.addAll(List.of("--driver-memory", "768m", "--conf", "spark.yarn.am.memory=512m",
                "--conf", "spark.yarn.maxAppAttempts=1", "--conf", "spark.moescore.cpuThreads=1",
                "--conf", "spark.locality.wait=0s", "--conf", "spark.ui.enabled=false",
                "--conf", "spark.yarn.scheduler.heartbeat.interval-ms=500",
                "--conf", "spark.yarn.report.interval=250ms"));
        return opts;
    }

    private static Path lib() {
        return SparkTests.repoRoot().resolve("spark-job/target/lib");
    }

    /**
     * A Spark 4.2 layout as a distribution has it, made of the Spark jars Maven resolved (target/lib without our
     * own jars): jars/, bin/spark-submit (src/test/resources/yarn/spark-submit: Spark's launcher builds the command
     * line, as a distribution's bin scripts have it do), conf/spark-defaults.conf naming the jars for YARN.
     */
    private static synchronized Path sparkHome() throws IOException {
        Path home = base.resolve("spark-home");
        if (Files.isDirectory(home.resolve("jars"))) {
            return home;
        }
        Path jars = Files.createDirectories(home.resolve("jars"));
        try (var files = Files.list(lib())) {
            for (Path jar : files.filter(p -> p.toString().endsWith(".jar")
                    && !p.getFileName().toString().startsWith("moescore-")).toList()) {
                Files.createSymbolicLink(jars.resolve(jar.getFileName()), jar);
            }
        }
        YarnCluster.installScript("yarn/spark-submit", home.resolve("bin/spark-submit"));
        Files.createDirectories(home.resolve("conf"));
        Files.writeString(home.resolve("conf/spark-defaults.conf"), "spark.yarn.jars local:" + jars + "/*\n");
        return home;
    }

    /** Runs a script with this environment, output to {@code log}; returns its exit code. */
    private static int run(List<String> cmd, Map<String, String> env, Path log, Duration timeout,
                           SubmittedJobs.WhileRunning whileRunning) throws Exception {
        return SubmittedJobs.runScript(cmd, env, log, timeout, () -> String.join("\n", cluster.applications())
                + "\n" + cluster.containerLogs(30), whileRunning);
    }

    /** One executor as Spark's event log records it: its NodeManager's port and the GPU addresses it discovered. */
    record ExecutorSeen(String id, int nmPort, List<String> gpus) {
    }

    /**
     * Every SparkListenerExecutorAdded of the one application's event log in {@code dir}, by executor id. Spark 4
     * writes a rolling event log by default: a folder eventlog_v2_APP of events_N_APP files (and the local file
     * system's .crc files beside them).
     */
    private static Map<String, ExecutorSeen> executorsInEventLog(Path dir) throws IOException {
        List<Path> logs;
        try (var files = Files.walk(dir)) {
            logs = files.filter(p -> Files.isRegularFile(p) && !p.getFileName().toString().startsWith("appstatus")
                    && !p.getFileName().toString().endsWith(".crc")).sorted().toList();
        }
        assertFalse(logs.isEmpty(), "no event log in " + dir);
        List<String> lines = new ArrayList<>();
        for (Path log : logs) {
            lines.addAll(Files.readAllLines(log));
        }
        Map<String, ExecutorSeen> out = new TreeMap<>();
        for (String line : lines) {
            JsonNode e = JSON.readTree(line);
            if (!"SparkListenerExecutorAdded".equals(e.path("Event").asText())) {
                continue;
            }
            JsonNode info = e.path("Executor Info");
            List<String> gpus = new ArrayList<>();
            info.path("Resources").path("gpu").path("addresses").forEach(a -> gpus.add(a.asText()));
            String id = e.path("Executor ID").asText();
            out.put(id, new ExecutorSeen(id, info.path("Attributes").path("NM_PORT").asInt(-1), List.copyOf(gpus)));
        }
        assertFalse(out.isEmpty(), "no executor in the event log " + logs);
        return out;
    }
}
