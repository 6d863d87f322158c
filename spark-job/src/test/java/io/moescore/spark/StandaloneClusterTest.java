package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.io.Reader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.launcher.JavaModuleOptions;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPU scheduling on a real standalone cluster (master + 2 workers as separate JVMs, each worker offering one gpu
 * address), with this JVM as the driver; and the GPU discovery script conf/get-gpus.sh.
 */
class StandaloneClusterTest {
    @TempDir
    Path tmp;

    /** One task's view: which executor, host and JVM ran it, and the gpu addresses Spark assigned it. */
    record TaskView(int partition, String executorId, String host, long pid, List<String> gpus) {
        static TaskView parse(String s) {
            String[] f = s.split("\\|", -1);
            return new TaskView(Integer.parseInt(f[0]), f[1], f[2], Long.parseLong(f[3]),
                f[4].isEmpty() ? List.of() : List.of(f[4].split(",")));
        }
    }

    /** Runs on an executor: a static method, so the task needs this test class there (shipped via spark.jars). */
    static String describeTask(int partition) throws InterruptedException {
        TaskContext tc = TaskContext.get();
        ResourceInformation gpu = tc.resourcesJMap().get("gpu");
        String gpus = gpu == null ? "" : String.join(",", gpu.addresses());
        Thread.sleep(300);   // long enough that both executors' slots get tasks
        return partition + "|" + SparkEnv.get().executorId() + "|"
            + SparkEnv.get().blockManager().blockManagerId().host() + "|" + ProcessHandle.current().pid() + "|" + gpus;
    }

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void eachExecutorOfTwoWorkersGetsItsOwnGpuAddress() throws Exception {
        // Tests before this one in the same JVM may leave a stopped session behind as the active or default one
        // (harmless: getOrCreate never reuses a stopped one); a live one would be reused and must not exist.
        for (scala.Option<SparkSession> s : List.of(SparkSession.getActiveSession(), SparkSession.getDefaultSession())) {
            assertFalse(s.isDefined() && !s.get().sparkContext().isStopped(), "a live SparkSession (master "
                + (s.isDefined() ? s.get().sparkContext().master() : "") + ") would be reused instead of the cluster");
        }
        long t0 = System.nanoTime();
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).start()) {
            long started = System.nanoTime();
            System.out.printf("standalone cluster %s up in %.1f s (dir %s)%n", cluster.masterUrl(),
                (started - t0) / 1e9, cluster.dir());
            assertTrue(cluster.masterUrl().matches("spark://127\\.0\\.0\\.1:\\d+"), cluster.masterUrl());
            assertEquals(List.of("0"), cluster.gpuAddresses(0));
            assertEquals(List.of("1"), cluster.gpuAddresses(1));

            SparkSession spark = null;
            try {
                SparkSession.Builder b = SparkSession.builder().appName("StandaloneClusterTest");
                cluster.applicationConf().forEach(b::config);
                b.config("spark.executor.resource.gpu.amount", "1")
                    .config("spark.task.resource.gpu.amount", "1")
                    .config("spark.executor.cores", "1");
                spark = b.getOrCreate();
                assertEquals(cluster.masterUrl(), spark.sparkContext().master());
                JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());

                List<Integer> partitions = IntStream.range(0, 8).boxed().collect(Collectors.toList());
                List<TaskView> tasks = jsc.parallelize(partitions, 8).map(StandaloneClusterTest::describeTask)
                    .collect().stream().map(TaskView::parse).collect(Collectors.toList());
                // The executors are alive while the application is: list them before stopping it.
                List<StandaloneCluster.ExecutorProcess> executors = cluster.executors();
                long ran = System.nanoTime();

                System.out.println("partition executor host pid gpus");
                tasks.forEach(t -> System.out.println(t.partition() + " " + t.executorId() + " " + t.host() + " "
                    + t.pid() + " " + t.gpus()));
                executors.forEach(e -> System.out.println("worker " + e.worker() + ": executor " + e.executorId()
                    + " pid " + e.pid() + " gpu " + e.gpuAddresses() + " app " + e.appId()));

                assertEquals(8, tasks.size());
                assertEquals(Set.of(0, 1, 2, 3, 4, 5, 6, 7),
                    tasks.stream().map(TaskView::partition).collect(Collectors.toSet()));
                tasks.forEach(t -> assertEquals("127.0.0.1", t.host(), "executor host"));
                tasks.forEach(t -> assertEquals(1, t.gpus().size(), "each task holds exactly one gpu: " + t));

                // Each executor always saw the same single address, and the two executors saw different ones.
                Map<String, Set<String>> gpusByExecutor = new TreeMap<>();
                tasks.forEach(t -> gpusByExecutor.computeIfAbsent(t.executorId(), k -> new TreeSet<>()).addAll(t.gpus()));
                assertEquals(2, gpusByExecutor.size(), "tasks ran on two executors: " + gpusByExecutor);
                gpusByExecutor.forEach((id, g) -> assertEquals(1, g.size(), "executor " + id + " saw " + g));
                assertEquals(Set.of("0", "1"), gpusByExecutor.values().stream().flatMap(Set::stream)
                    .collect(Collectors.toSet()));

                // Both workers ran tasks: each worker has one executor JVM, the tasks ran in exactly those JVMs, and
                // the executor of worker i was given worker i's address.
                assertEquals(2, executors.size(), "one executor per worker: " + executors);
                assertEquals(Set.of(0, 1), executors.stream().map(StandaloneCluster.ExecutorProcess::worker)
                    .collect(Collectors.toSet()));
                assertEquals(executors.stream().map(StandaloneCluster.ExecutorProcess::pid).collect(Collectors.toSet()),
                    tasks.stream().map(TaskView::pid).collect(Collectors.toSet()), "tasks ran in the workers' executors");
                String appId = spark.sparkContext().applicationId();
                for (StandaloneCluster.ExecutorProcess e : executors) {
                    assertEquals(appId, e.appId());
                    assertEquals(cluster.gpuAddresses(e.worker()), e.gpuAddresses(), "resources file of " + e);
                    assertEquals(Set.copyOf(cluster.gpuAddresses(e.worker())), gpusByExecutor.get(e.executorId()),
                        "what the tasks of executor " + e.executorId() + " saw");
                    assertTrue(tasks.stream().anyMatch(t -> t.pid() == e.pid()), "worker " + e.worker() + " ran no task");
                }
                System.out.printf("job ran in %.1f s%n", (ran - started) / 1e9);
            } catch (Throwable t) {
                System.err.println("StandaloneClusterTest failed; cluster logs follow\n" + cluster.diagnostics());
                throw t;
            } finally {
                if (spark != null) {
                    spark.stop();
                }
                SparkSession.clearActiveSession();
                SparkSession.clearDefaultSession();
            }
        }
        System.out.printf("cluster test total %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    // ---- submit-scripts/standalone-cluster.sh ---------------------------------------------------------------

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void standaloneClusterScriptStartsReportsAndStops() throws Exception {
        // The script runs from a folder of jars (spark-job/target/lib once packaged); this JVM's jars stand in for it,
        // so the test also runs in `mvn verify`, whose test phase comes before package.
        Path lib = Files.createDirectories(tmp.resolve("lib"));
        for (Path e : StandaloneCluster.jvmClasspath()) {
            if (Files.isRegularFile(e) && e.toString().endsWith(".jar") && !Files.exists(lib.resolve(e.getFileName()))) {
                Files.createSymbolicLink(lib.resolve(e.getFileName()), e);
            }
        }
        Path dir = tmp.resolve("cluster");
        Map<String, String> env = Map.of("MOESCORE_CLUSTER_DIR", dir.toString(), "MOESCORE_SPARK_LIB", lib.toString(),
            "JAVA", Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "MOESCORE_DAEMON_MEMORY", "256m", "MOESCORE_START_TIMEOUT", "90");
        long t0 = System.nanoTime();
        try {
            Result start = script(env, 120, "start", "2", "--gpus-per-worker", "2", "--memory", "512m");
            System.out.printf("standalone-cluster.sh start 2: %.1f s, %s%n", (System.nanoTime() - t0) / 1e9, start);
            assertEquals(0, start.status, start.toString());
            String url = start.stdout.strip();
            assertTrue(url.matches("spark://127\\.0\\.0\\.1:\\d+"), "stdout is the master URL: " + start);
            assertEquals(url, Files.readString(dir.resolve("master-url")).strip());
            assertEquals("[{\"id\":{\"componentName\":\"spark.worker\",\"resourceName\":\"gpu\"},\"addresses\":[\"2\",\"3\"]}]",
                Files.readString(dir.resolve("worker-1/resources.json")).strip());

            // The master's view: two live workers offering the disjoint addresses 0,1 and 2,3.
            String web = Files.readString(dir.resolve("master-webui-url")).strip();
            assertTrue(web.startsWith("http://127.0.0.1:"), web);
            JsonNode state = new ObjectMapper().readTree(HttpClient.newHttpClient()
                .send(HttpRequest.newBuilder(URI.create(web + "/json/")).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            assertEquals(url, state.path("url").asText());
            Set<String> offered = new TreeSet<>();
            state.path("workers").forEach(w -> {
                assertEquals("ALIVE", w.path("state").asText());
                assertEquals("127.0.0.1", w.path("host").asText());
                List<String> a = new ArrayList<>();
                w.path("resources").path("gpu").path("addresses").forEach(x -> a.add(x.asText()));
                offered.add(String.join(",", a));
            });
            assertEquals(Set.of("0,1", "2,3"), offered);

            Result status = script(env, 30, "status");
            assertEquals(0, status.status, status.toString());
            assertTrue(status.stdout.contains("worker-1 pid") && status.stdout.contains("master " + url), status.toString());
            Result again = script(env, 30, "start", "1");
            assertEquals(1, again.status, "a second start refuses: " + again);

            List<Long> pids = new ArrayList<>();
            for (String f : List.of("master.pid", "worker-0/worker.pid", "worker-1/worker.pid")) {
                pids.add(Long.parseLong(Files.readString(dir.resolve(f)).strip()));
            }
            Result stop = script(env, 60, "stop");
            assertEquals(0, stop.status, stop.toString());
            for (long pid : pids) {
                assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid + " survived stop");
            }
            assertEquals(3, script(env, 30, "status").status, "status after stop: nothing recorded");
        } finally {
            Result stop = script(env, 60, "stop");   // idempotent: cleans up after a failed assertion too
            if (stop.status != 0) {
                System.err.println("standalone-cluster.sh stop: " + stop);
            }
        }
    }

    // ---- conf/get-gpus.sh ----------------------------------------------------------------------------------------

    private static final String NONE = "{\"name\":\"gpu\",\"addresses\":[]}";

    @Test
    void getGpusReportsNoGpuWhenNvidiaSmiIsMissing() throws Exception {
        Path emptyBin = Files.createDirectories(tmp.resolve("empty-bin"));
        Result r = getGpus(emptyBin, null);
        assertEquals(0, r.status, r.toString());
        assertEquals(NONE, r.stdout.strip(), r.toString());
        assertTrue(r.stderr.contains("nvidia-smi not found"), r.toString());
        assertEquals(1, r.stderr.strip().lines().count(), "a one-line note: " + r);
    }

    @Test
    void getGpusHonoursMoescoreGpuAddresses() throws Exception {
        Path bin = fakeNvidiaSmi("echo 0; echo 1; echo 2; echo 3", 0);   // the override wins over nvidia-smi
        assertEquals("{\"name\":\"gpu\",\"addresses\":[\"0\",\"1\"]}", getGpus(bin, "0,1").stdout.strip());
        assertEquals("{\"name\":\"gpu\",\"addresses\":[\"2\",\"3\"]}", getGpus(bin, " 2 , 3 ").stdout.strip());
        assertEquals("{\"name\":\"gpu\",\"addresses\":[\"5\"]}", getGpus(bin, "5").stdout.strip());
        Result empty = getGpus(bin, "");
        assertEquals(0, empty.status, empty.toString());
        assertEquals(NONE, empty.stdout.strip(), empty.toString());
        Result bad = getGpus(bin, "0,\"1");
        assertEquals(1, bad.status, bad.toString());
        assertTrue(bad.stderr.contains("invalid address"), bad.toString());
    }

    @Test
    void getGpusListsWhatNvidiaSmiListsAndNothingWhenItFails() throws Exception {
        Result two = getGpus(fakeNvidiaSmi("echo 0; echo 1", 0), null);
        assertEquals(0, two.status, two.toString());
        assertEquals("{\"name\":\"gpu\",\"addresses\":[\"0\",\"1\"]}", two.stdout.strip(), two.toString());

        Result failed = getGpus(fakeNvidiaSmi("echo 'NVIDIA-SMI has failed because it could not communicate'", 9), null);
        assertEquals(0, failed.status, failed.toString());
        assertEquals(NONE, failed.stdout.strip(), failed.toString());
        assertTrue(failed.stderr.contains("nvidia-smi failed"), failed.toString());

        Result none = getGpus(fakeNvidiaSmi(":", 0), null);
        assertEquals(0, none.status, none.toString());
        assertEquals(NONE, none.stdout.strip(), none.toString());
    }

    // ---- conf/spark-defaults.conf.template -------------------------------------------------------------------

    @Test
    void sparkDefaultsTemplateParsesAsSparkReadsIt() throws Exception {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(repoRoot().resolve("conf/spark-defaults.conf.template"))) {
            p.load(r);   // what Spark's Utils.getPropertiesFromFile does
        }
        assertEquals("1", p.getProperty("spark.executor.resource.gpu.amount"));
        double share = Double.parseDouble(p.getProperty("spark.task.resource.gpu.amount"));
        assertTrue(share > 0 && share <= 1, "task gpu share " + share);
        assertEquals(Math.round(1 / share), Long.parseLong(p.getProperty("spark.executor.cores")),
            "one core per task sharing the GPU");
        assertTrue(p.getProperty("spark.executor.resource.gpu.discoveryScript").endsWith("/get-gpus.sh"));
        assertEquals("auto", p.getProperty("spark.moescore.backend"));
        for (String key : List.of("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")) {
            List<String> opts = Arrays.asList(p.getProperty(key).trim().split("\\s+"));
            // Every java.base opening Spark itself asks for is there (guards against a Spark upgrade adding one).
            for (String o : JavaModuleOptions.defaultModuleOptionArray()) {
                if (o.startsWith("--add-opens=java.base/")) {
                    assertTrue(opts.contains(o), key + " lacks " + o);
                }
            }
            opts.forEach(o -> assertTrue(o.startsWith("-"), key + " has a stray word " + o));
            // ... and the project's own list, which the launch scripts and surefire use.
            for (String o : Files.readString(repoRoot().resolve("conf/jvm-options")).trim().split("\\s+")) {
                assertTrue(opts.contains(o), key + " lacks " + o + " (conf/jvm-options)");
            }
        }
        p.stringPropertyNames().forEach(k -> assertFalse(p.getProperty(k).contains("#"),
            k + " carries a trailing comment into its value"));
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    record Result(int status, String stdout, String stderr) {
        @Override
        public String toString() {
            return "exit " + status + ", stdout [" + stdout.strip() + "], stderr [" + stderr.strip() + "]";
        }
    }

    static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("conf/get-gpus.sh"))) {
            p = p.getParent();
        }
        assertTrue(p != null, "conf/get-gpus.sh not found above " + Path.of("").toAbsolutePath());
        return p;
    }

    private static Path bash() {
        for (String b : List.of("/bin/bash", "/usr/bin/bash")) {
            if (Files.isExecutable(Path.of(b))) {
                return Path.of(b);
            }
        }
        assumeTrue(false, "no bash at /bin/bash or /usr/bin/bash");
        return null;
    }

    /** A directory holding only a fake nvidia-smi that runs {@code body} and exits with {@code status}. */
    private Path fakeNvidiaSmi(String body, int status) throws IOException {
        Path bin = Files.createTempDirectory(tmp, "bin");
        Path smi = bin.resolve("nvidia-smi");
        Files.writeString(smi, "#!/bin/sh\n" + body + "\nexit " + status + "\n");
        assertTrue(smi.toFile().setExecutable(true));
        return bin;
    }

    /** Runs submit-scripts/standalone-cluster.sh with {@code env} added; on timeout it is killed. */
    private Result script(Map<String, String> env, int timeoutSeconds, String... args) throws Exception {
        Path out = Files.createTempFile(tmp, "out", ".txt");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        List<String> cmd = new ArrayList<>(List.of(bash().toString(),
            repoRoot().resolve("submit-scripts/standalone-cluster.sh").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Result(-1, Files.readString(out), Files.readString(err) + " (killed after " + timeoutSeconds + " s)");
        }
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    /** Runs conf/get-gpus.sh with PATH = {@code path} only (so a real nvidia-smi is never found). */
    private Result getGpus(Path path, String override) throws Exception {
        Path out = Files.createTempFile(tmp, "out", ".txt");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        ProcessBuilder pb = new ProcessBuilder(bash().toString(), repoRoot().resolve("conf/get-gpus.sh").toString())
            .redirectOutput(out.toFile()).redirectError(err.toFile());
        Map<String, String> env = pb.environment();
        Map<String, String> keep = new HashMap<>();
        keep.put("PATH", path.toString());
        if (override != null) {
            keep.put("MOESCORE_GPU_ADDRESSES", override);
        }
        env.clear();
        env.putAll(keep);
        Process p = pb.start();
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), "get-gpus.sh did not finish in 20 s");
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }
}
