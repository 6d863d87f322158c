package io.moescore.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.jar.Attributes;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.zip.ZipEntry;
import org.apache.spark.launcher.JavaModuleOptions;

/**
 * A Spark standalone cluster on 127.0.0.1 for tests: one master and N workers, each a child JVM, the same layout as
 * {@code submit-scripts/standalone-cluster.sh}. Worker {@code i} offers the {@code gpu} resource with the disjoint
 * addresses {@code i*K .. i*K+K-1} through a worker resources file ({@code spark.worker.resourcesFile}); on a machine
 * without GPUs those are just labels Spark schedules by, on a GPU machine they are device ordinals.
 *
 * <p>The daemons and the executors run from the test JVM's own jars (so the executors run exactly the Spark the
 * driver, this JVM, runs): every jar of the test classpath is linked into {@code <dir>/spark-home/jars}, which
 * workers build executor command lines from ({@code SPARK_HOME}, {@code SPARK_SCALA_VERSION=2.13}). Class
 * <em>directories</em> of the classpath ({@code target/classes}, {@code target/test-classes}, and sibling modules'
 * classes when Maven resolves them from the reactor) cannot go there: {@link #applicationJars()} packs them into jars
 * for {@code spark.jars}, which is how the application's classes (and the lambdas of test classes) reach executors.
 * {@link #applicationConf()} has that and the other settings a driver in this JVM needs.
 *
 * <p>Everything runs on loopback with OS-chosen ports (port 0; the master's log says which). {@link #close()} kills
 * executors, workers and master (SIGTERM, then SIGKILL after a grace period); a JVM shutdown hook does the same if
 * the test never closes it, and a small watchdog process does it if this JVM dies without running hooks.
 * Start-up waits are bounded; a timeout's message carries the tail of every log ({@link #diagnostics()}).
 *
 * <pre>{@code
 * try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).start()) {
 *     SparkSession.Builder b = SparkSession.builder();
 *     cluster.applicationConf().forEach(b::config);
 *     ...
 *     cluster.executors().get(0).kill();   // a fault test
 * }
 * }</pre>
 */
public final class StandaloneCluster implements AutoCloseable {

    /** Marks the command lines of this utility's daemons (the watchdog only kills processes that carry it). */
    private static final String MARKER_PROPERTY = "moescore.standaloneCluster";
    private static final String EXECUTOR_MAIN = "org.apache.spark.executor.CoarseGrainedExecutorBackend";
    private static final Pattern MASTER_URL = Pattern.compile("Starting Spark master at (spark://[0-9.]+:\\d+)");
    private static final Pattern MASTER_WEBUI = Pattern.compile("MasterWebUI: Bound MasterWebUI to .*started at http://[^:/\\s]+:(\\d+)");
    private static final int LOG_TAIL_LINES = 40;
    private static final Duration GRACE = Duration.ofSeconds(10);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One executor JVM that a worker of this cluster launched. */
    public record ExecutorProcess(int worker, String appId, String executorId, List<String> gpuAddresses,
                                 ProcessHandle process) {
        public long pid() {
            return process.pid();
        }

        public boolean isAlive() {
            return process.isAlive();
        }

        /** SIGKILLs the executor (as a crash would) and waits up to 10 s for it to be gone; true when it is. */
        public boolean kill() {
            process.destroyForcibly();
            try {
                process.onExit().get(GRACE.toMillis(), TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                if (e instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
            }
            return !process.isAlive();
        }
    }

    /** Settings for {@link StandaloneCluster#start}; every one has a default. */
    public static final class Builder {
        private int workers = 2;
        private int gpusPerWorker = 1;
        private int coresPerWorker = 1;
        private String workerMemory = "1g";
        private String daemonHeap = "256m";
        private String executorMemory = "512m";
        private Path dir;
        private List<Path> classpath;
        private Duration startTimeout = Duration.ofSeconds(90);
        private boolean distinctHosts;

        private Builder() {
        }

        /**
         * Worker i (and its executors) on loopback address 127.0.0.(i+2) instead of 127.0.0.1, so Spark sees
         * separate hosts: speculative copies only run on a host other than the original attempt's.
         */
        public Builder distinctHosts() {
            this.distinctHosts = true;
            return this;
        }

        /** Number of workers (default 2). */
        public Builder workers(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("workers must be at least 1, got " + n);
            }
            this.workers = n;
            return this;
        }

        /** GPU addresses each worker offers (default 1; 0: no gpu resource). */
        public Builder gpusPerWorker(int k) {
            if (k < 0) {
                throw new IllegalArgumentException("gpusPerWorker must be 0 or more, got " + k);
            }
            this.gpusPerWorker = k;
            return this;
        }

        /** Cores each worker offers to executors (default 1). */
        public Builder coresPerWorker(int c) {
            if (c < 1) {
                throw new IllegalArgumentException("coresPerWorker must be at least 1, got " + c);
            }
            this.coresPerWorker = c;
            return this;
        }

        /** Memory each worker offers to executors, Spark notation (default 1g). */
        public Builder workerMemory(String m) {
            this.workerMemory = m;
            return this;
        }

        /** Heap of the master and worker JVMs themselves (default 256m). */
        public Builder daemonHeap(String m) {
            this.daemonHeap = m;
            return this;
        }

        /** spark.executor.memory in {@link #applicationConf()} (default 512m). */
        public Builder executorMemory(String m) {
            this.executorMemory = m;
            return this;
        }

        /**
         * Where SPARK_HOME, logs and work dirs go (default {@code target/standalone-cluster/<time>} under the working
         * directory when it has a {@code target/}, else a new temporary directory). Kept after close, for post-mortems.
         */
        public Builder dir(Path d) {
            this.dir = d;
            return this;
        }

        /** Jars (linked into SPARK_HOME/jars) and class directories (see applicationJars); default: this JVM's. */
        public Builder classpath(List<Path> entries) {
            this.classpath = List.copyOf(entries);
            return this;
        }

        /** Bound on the master's start and on all workers registering (default 90 s). */
        public Builder startTimeout(Duration t) {
            this.startTimeout = t;
            return this;
        }

        public StandaloneCluster start() throws IOException {
            return new StandaloneCluster(this);
        }
    }

    private final Builder settings;
    private final Path dir;
    private final Path sparkHome;
    private final List<Path> classDirs = new ArrayList<>();
    private final List<List<String>> gpuAddresses = new ArrayList<>();
    private final List<Process> workers = new CopyOnWriteArrayList<>();   // read by the shutdown hook, any time
    private final List<Path> workerDirs = new ArrayList<>();
    private final Thread shutdownHook;
    private volatile Process master;
    private volatile Process watchdog;
    private String masterUrl;
    private String masterWebUiUrl;
    private List<Path> applicationJars;
    private volatile boolean closed;

    public static Builder builder() {
        return new Builder();
    }

    /** {@code builder().workers(workers).start()}: one gpu address per worker. */
    public static StandaloneCluster start(int workers) throws IOException {
        return builder().workers(workers).start();
    }

    private StandaloneCluster(Builder b) throws IOException {
        this.settings = b;
        this.dir = (b.dir != null ? b.dir : defaultDir()).toAbsolutePath();
        this.sparkHome = dir.resolve("spark-home");
        this.shutdownHook = new Thread(this::killAll, "standalone-cluster-shutdown");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
        try {
            layOut(b.classpath != null ? b.classpath : jvmClasspath());
            startMaster();
            startWorkers();
            startWatchdog();
            awaitWorkers();
        } catch (IOException | RuntimeException | Error e) {
            String diagnostics = diagnostics();
            close();
            if (e instanceof ClusterException) {
                throw e;
            }
            throw new ClusterException("standalone cluster in " + dir + " failed to start: " + e + "\n"
                + diagnostics, e);
        }
    }

    /** The cluster did not start, or did not reach an awaited state in time; the message holds the logs' tails. */
    public static final class ClusterException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ClusterException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    // ---- public API ------------------------------------------------------------------------------------------

    /** spark://127.0.0.1:PORT */
    public String masterUrl() {
        return masterUrl;
    }

    /** http://127.0.0.1:PORT of the master's web UI; {@code /json/} under it is the cluster state. */
    public String masterWebUiUrl() {
        return masterWebUiUrl;
    }

    /** The cluster's directory: spark-home/, master.log, worker-i/{worker.log,resources.json,work/}. */
    public Path dir() {
        return dir;
    }

    public Path sparkHome() {
        return sparkHome;
    }

    public int workerCount() {
        return workers.size();
    }

    /** The gpu addresses worker {@code i} offers ("0", "1", ...); empty when gpusPerWorker is 0. */
    public List<String> gpuAddresses(int worker) {
        return gpuAddresses.get(worker);
    }

    public ProcessHandle masterProcess() {
        return master.toHandle();
    }

    public ProcessHandle workerProcess(int worker) {
        return workers.get(worker).toHandle();
    }

    /** The executor JVMs alive now (children of the workers), in worker order. */
    public List<ExecutorProcess> executors() {
        List<ExecutorProcess> out = new ArrayList<>();
        for (int i = 0; i < workers.size(); i++) {
            int worker = i;
            workers.get(i).toHandle().descendants().forEach(h -> {
                List<String> args = commandLine(h);
                if (h.isAlive() && args.contains(EXECUTOR_MAIN)) {
                    out.add(new ExecutorProcess(worker, argAfter(args, "--app-id"), argAfter(args, "--executor-id"),
                        executorGpus(argAfter(args, "--resourcesFile")), h));
                }
            });
        }
        return out;
    }

    /** Waits until at least {@code count} executors are alive; fails with the logs' tails after {@code timeout}. */
    public List<ExecutorProcess> awaitExecutors(int count, Duration timeout) {
        return await(timeout, () -> {
            List<ExecutorProcess> e = executors();
            return e.size() >= count ? e : null;
        }, () -> count + " executor JVM(s) under the workers (have " + executors().size() + ")");
    }

    /**
     * The class directories of the classpath, each packed into a jar (once), for {@code spark.jars}: the application's
     * classes for the executors, test classes (and their lambdas) included.
     */
    public synchronized List<Path> applicationJars() {
        if (applicationJars == null) {
            List<Path> jars = new ArrayList<>();
            Path out = dir.resolve("app-jars");
            try {
                Files.createDirectories(out);
                for (int i = 0; i < classDirs.size(); i++) {
                    Path d = classDirs.get(i);
                    String module = d.getParent() != null && d.getParent().getParent() != null
                        ? d.getParent().getParent().getFileName() + "-" : "";
                    Path jar = out.resolve(String.format("%02d-%s%s.jar", i, module, d.getFileName()));
                    jarDirectory(d, jar);
                    jars.add(jar);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("packing class directories into " + out, e);
            }
            applicationJars = List.copyOf(jars);
        }
        return applicationJars;
    }

    /**
     * Settings for a driver in this JVM: master, loopback driver address, no driver UI, spark.jars (the
     * {@link #applicationJars()}), executor memory and cores, spark.cores.max = the whole cluster, and
     * minRegisteredResourcesRatio 1 (the first job waits until every executor has registered, at most 90 s). GPU
     * amounts are left to the caller: spark.executor.resource.gpu.amount, spark.task.resource.gpu.amount.
     */
    public Map<String, String> applicationConf() {
        Map<String, String> conf = new LinkedHashMap<>();
        conf.put("spark.master", masterUrl);
        conf.put("spark.driver.host", "127.0.0.1");
        conf.put("spark.driver.bindAddress", "127.0.0.1");
        conf.put("spark.ui.enabled", "false");
        conf.put("spark.jars", applicationJars().stream().map(Path::toString).collect(Collectors.joining(",")));
        conf.put("spark.executor.memory", settings.executorMemory);
        conf.put("spark.executor.cores", Integer.toString(settings.coresPerWorker));
        conf.put("spark.cores.max", Integer.toString(settings.coresPerWorker * workers.size()));
        conf.put("spark.scheduler.minRegisteredResourcesRatio", "1.0");
        // Spark's default of 30 s is too short for executor JVMs starting on a busy 2-core machine.
        conf.put("spark.scheduler.maxRegisteredResourcesWaitingTime", "90s");
        return conf;
    }

    /** The last lines of the master's, workers' and executors' logs. */
    public String diagnostics() {
        StringBuilder sb = new StringBuilder();
        sb.append("==== standalone cluster ").append(dir).append(": master ").append(masterUrl)
            .append(", web UI ").append(masterWebUiUrl).append('\n');
        appendTail(sb, dir.resolve("master.log"));
        for (Path w : workerDirs) {
            appendTail(sb, w.resolve("worker.log"));
            try (var files = Files.walk(w.resolve("work"), 3)) {
                files.filter(p -> p.getFileName().toString().equals("stderr")).sorted().forEach(p -> appendTail(sb, p));
            } catch (IOException e) {
                sb.append("(cannot list ").append(w.resolve("work")).append(": ").append(e).append(")\n");
            }
        }
        return sb.toString();
    }

    /** Kills executors, workers and master and waits for them to be gone. Idempotent. */
    @Override
    public void close() {
        killAll();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // Called from the hook itself, or while the JVM exits: nothing to remove.
        }
    }

    // ---- start-up --------------------------------------------------------------------------------------------

    private static Path defaultDir() throws IOException {
        Path target = Path.of("target").toAbsolutePath();
        String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        if (Files.isDirectory(target)) {
            Path base = Files.createDirectories(target.resolve("standalone-cluster"));
            return Files.createTempDirectory(base, stamp + "-");
        }
        return Files.createTempDirectory("moescore-cluster-" + stamp + "-");
    }

    /**
     * This JVM's classpath. Surefire's default launches tests with a manifest-only jar (java.class.path is just
     * surefirebooter*.jar, whose Class-Path holds the real entries), so that is expanded.
     */
    static List<Path> jvmClasspath() throws IOException {
        List<Path> entries = new ArrayList<>();
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!e.isEmpty()) {
                entries.add(Path.of(e).toAbsolutePath());
            }
        }
        if (entries.size() == 1 && entries.get(0).toString().endsWith(".jar")) {
            Path booter = entries.get(0);
            try (JarFile jar = new JarFile(booter.toFile())) {
                Manifest m = jar.getManifest();
                String cp = m == null ? null : m.getMainAttributes().getValue(Attributes.Name.CLASS_PATH);
                if (cp != null && !cp.isBlank()) {
                    entries.clear();
                    for (String url : cp.trim().split("\\s+")) {
                        entries.add(Path.of(booter.getParent().toUri().resolve(url)));
                    }
                }
            }
        }
        return entries;
    }

    private void layOut(List<Path> classpath) throws IOException {
        Path jars = Files.createDirectories(sparkHome.resolve("jars"));
        Path conf = Files.createDirectories(sparkHome.resolve("conf"));
        Set<String> names = new HashSet<>();
        int linked = 0;
        for (Path e : classpath) {
            if (Files.isDirectory(e)) {
                classDirs.add(e);
            } else if (Files.isRegularFile(e) && e.getFileName().toString().endsWith(".jar")) {
                String name = e.getFileName().toString();
                if (!names.add(name)) {
                    name = linked + "-" + name;
                }
                Files.createSymbolicLink(jars.resolve(name), e);
                linked++;
            }
        }
        if (names.stream().noneMatch(n -> n.startsWith("spark-core_"))) {
            throw new IllegalStateException("no spark-core jar on the classpath given: " + classpath);
        }
        // Executors get SPARK_HOME/conf on their classpath first, so they log with this file.
        Files.writeString(conf.resolve("log4j2.properties"), String.join("\n",
            "rootLogger.level = warn",
            "rootLogger.appenderRef.stdout.ref = console",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = %d{HH:mm:ss.SSS} %-5p %c{1}: %m%n%ex",
            "logger.moescore.name = io.moescore",
            "logger.moescore.level = info",
            "logger.backend.name = org.apache.spark.executor.CoarseGrainedExecutorBackend",
            "logger.backend.level = info",
            ""));
        // The daemons log their lifecycle at INFO: the master's ports are read from it, and it is what a failure needs.
        Files.writeString(dir.resolve("daemon-log4j2.properties"), String.join("\n",
            "rootLogger.level = warn",
            "rootLogger.appenderRef.stdout.ref = console",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = %d{HH:mm:ss.SSS} %-5p %c{1}: %m%n%ex",
            "logger.deploy.name = org.apache.spark.deploy",
            "logger.deploy.level = info",
            "logger.utils.name = org.apache.spark.util.Utils",
            "logger.utils.level = info",
            "logger.resource.name = org.apache.spark.resource",
            "logger.resource.level = info",
            ""));
    }

    private ProcessBuilder daemon(Path log, List<String> extraJvmArgs, String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx" + settings.daemonHeap);
        // The --add-opens list Spark itself gives the JVMs it launches (it adds the same to executors).
        cmd.addAll(Arrays.asList(JavaModuleOptions.defaultModuleOptionArray()));
        cmd.add("-Dlog4j2.configurationFile=" + dir.resolve("daemon-log4j2.properties"));
        cmd.add("-D" + MARKER_PROPERTY + "=" + dir);
        cmd.addAll(extraJvmArgs);
        cmd.add("-cp");
        cmd.add(sparkHome.resolve("jars") + File.separator + "*");
        cmd.add(mainClass);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
            .redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        Map<String, String> env = pb.environment();
        // A developer's own Spark settings must not leak in (SPARK_DIST_CLASSPATH, SPARK_TESTING, ...).
        env.keySet().removeIf(k -> k.startsWith("SPARK_"));
        env.put("SPARK_HOME", sparkHome.toString());
        env.put("SPARK_CONF_DIR", sparkHome.resolve("conf").toString());
        // Workers build executor classpaths from SPARK_HOME/jars; without this they look for build directories.
        env.put("SPARK_SCALA_VERSION", "2.13");
        // Loopback only: SPARK_LOCAL_IP also binds the web UIs; SPARK_PUBLIC_DNS is what URLs advertise.
        env.put("SPARK_LOCAL_IP", "127.0.0.1");
        env.put("SPARK_PUBLIC_DNS", "127.0.0.1");
        return pb;
    }

    private void startMaster() throws IOException {
        Path log = dir.resolve("master.log");
        master = daemon(log, List.of("-Dspark.master.rest.enabled=false"), "org.apache.spark.deploy.master.Master",
            List.of("--host", "127.0.0.1", "--port", "0", "--webui-port", "0")).start();
        Files.writeString(dir.resolve("master.pid"), master.pid() + "\n");
        Matcher[] found = new Matcher[2];
        await(settings.startTimeout, () -> {
            if (!master.isAlive()) {
                throw new IllegalStateException("the master exited with status " + master.exitValue());
            }
            String text = readQuietly(log);
            Matcher url = MASTER_URL.matcher(text);
            Matcher web = MASTER_WEBUI.matcher(text);
            if (url.find() && web.find()) {
                found[0] = url;
                found[1] = web;
                return Boolean.TRUE;
            }
            return null;
        }, () -> "the master to log its URL and web UI port in " + log);
        masterUrl = found[0].group(1);
        masterWebUiUrl = "http://127.0.0.1:" + found[1].group(1);
        Files.writeString(dir.resolve("master-url"), masterUrl + "\n");
    }

    private void startWorkers() throws IOException {
        int k = settings.gpusPerWorker;
        for (int i = 0; i < settings.workers; i++) {
            Path w = Files.createDirectories(dir.resolve("worker-" + i));
            Files.createDirectories(w.resolve("work"));
            Files.createDirectories(w.resolve("local"));
            workerDirs.add(w);
            List<String> addresses = new ArrayList<>();
            for (int a = i * k; a < i * k + k; a++) {
                addresses.add(Integer.toString(a));
            }
            gpuAddresses.add(List.copyOf(addresses));
            List<String> jvm = new ArrayList<>();
            if (k > 0) {
                Path resources = w.resolve("resources.json");
                Files.writeString(resources, "[{\"id\":{\"componentName\":\"spark.worker\",\"resourceName\":\"gpu\"},"
                    + "\"addresses\":[" + addresses.stream().map(a -> "\"" + a + "\"").collect(Collectors.joining(","))
                    + "]}]\n");
                jvm.add("-Dspark.worker.resource.gpu.amount=" + k);
                jvm.add("-Dspark.worker.resourcesFile=" + resources);
            }
            String host = settings.distinctHosts ? "127.0.0." + (i + 2) : "127.0.0.1";
            ProcessBuilder pb = daemon(w.resolve("worker.log"), jvm, "org.apache.spark.deploy.worker.Worker",
                List.of("--host", host, "--port", "0", "--webui-port", "0",
                    "--cores", Integer.toString(settings.coresPerWorker), "--memory", settings.workerMemory,
                    "--work-dir", w.resolve("work").toString(), masterUrl));
            // Executors inherit the worker's local dirs for shuffle and block files: keep them in the cluster dir.
            pb.environment().put("SPARK_LOCAL_DIRS", w.resolve("local").toString());
            pb.environment().put("SPARK_LOCAL_IP", host);
            pb.environment().put("SPARK_PUBLIC_DNS", host);
            Process p = pb.start();
            workers.add(p);
            Files.writeString(w.resolve("worker.pid"), p.pid() + "\n");
        }
    }

    /** Polls the master's JSON until every worker is ALIVE there, offering the gpu addresses it was given. */
    private void awaitWorkers() {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        Set<String> expected = new TreeSet<>();
        gpuAddresses.forEach(expected::addAll);
        String[] last = {"(no answer yet)"};
        await(settings.startTimeout, () -> {
            for (int i = 0; i < workers.size(); i++) {
                if (!workers.get(i).isAlive()) {
                    throw new IllegalStateException("worker " + i + " exited with status " + workers.get(i).exitValue()
                        + " (log: " + workerDirs.get(i).resolve("worker.log") + ")");
                }
            }
            if (!master.isAlive()) {
                throw new IllegalStateException("the master exited with status " + master.exitValue());
            }
            JsonNode state;
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(masterWebUiUrl + "/json/"))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                state = JSON.readTree(r.body());
            } catch (IOException e) {
                last[0] = e.toString();
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
            int alive = 0;
            Set<String> offered = new TreeSet<>();
            for (JsonNode w : state.path("workers")) {
                if ("ALIVE".equals(w.path("state").asText())) {
                    alive++;
                    w.path("resources").path("gpu").path("addresses").forEach(a -> offered.add(a.asText()));
                }
            }
            last[0] = alive + " ALIVE worker(s) offering gpu " + offered;
            return alive == workers.size() && offered.equals(expected) ? Boolean.TRUE : null;
        }, () -> workers.size() + " workers to register with the master offering gpu " + expected
            + "; master says: " + last[0]);
    }

    /** A shell loop that kills the daemons should this JVM die without closing the cluster (SIGKILL, crash). */
    private void startWatchdog() throws IOException {
        String script = String.join("\n",
            "parent=$1; mark=$2; shift 2",
            "while kill -0 \"$parent\" 2>/dev/null; do sleep 2; done",
            "ours() { tr '\\000' ' ' <\"/proc/$1/cmdline\" 2>/dev/null | grep -qF -- \"$mark\"; }",
            "for p in \"$@\"; do ours \"$p\" && kill -TERM \"$p\"; done",
            "sleep 10",
            "for p in \"$@\"; do ours \"$p\" && kill -KILL \"$p\"; done",
            "exit 0");
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c", script, "standalone-cluster-watchdog",
            Long.toString(ProcessHandle.current().pid()), "-D" + MARKER_PROPERTY + "=" + dir));
        workers.forEach(w -> cmd.add(Long.toString(w.pid())));
        cmd.add(Long.toString(master.pid()));
        watchdog = new ProcessBuilder(cmd).redirectErrorStream(true)
            .redirectOutput(dir.resolve("watchdog.log").toFile()).start();
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    /** Polls {@code probe} every 250 ms until it returns non-null; on timeout throws with the logs' tails. */
    private <T> T await(Duration timeout, Supplier<T> probe, Supplier<String> what) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long start = System.nanoTime();
        while (true) {
            T v = probe.get();
            if (v != null) {
                return v;
            }
            if (System.nanoTime() > deadline) {
                throw new ClusterException(String.format("timed out after %.1f s waiting for %s%n%s",
                    (System.nanoTime() - start) / 1e9, what.get(), diagnostics()), null);
            }
            try {
                Thread.sleep(250);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + what.get(), e);
            }
        }
    }

    private synchronized void killAll() {
        if (closed) {
            return;
        }
        closed = true;
        List<ProcessHandle> victims = new ArrayList<>();
        for (Process w : workers) {
            w.toHandle().descendants().forEach(victims::add);   // executors: children of their worker
            victims.add(w.toHandle());
        }
        if (master != null) {
            victims.add(master.toHandle());
        }
        victims.forEach(ProcessHandle::destroy);
        long deadline = System.nanoTime() + GRACE.toNanos();
        for (ProcessHandle h : victims) {
            long left = deadline - System.nanoTime();
            try {
                if (left > 0) {
                    h.onExit().get(left, TimeUnit.NANOSECONDS);
                }
            } catch (Exception e) {
                // Still alive after the grace period (or interrupted): killed below.
            }
        }
        for (ProcessHandle h : victims) {
            if (h.isAlive()) {
                System.err.println("StandaloneCluster: pid " + h.pid() + " ignored SIGTERM for " + GRACE.toSeconds()
                    + " s: killing it");
                h.destroyForcibly();
                try {
                    h.onExit().get(5, TimeUnit.SECONDS);
                } catch (Exception e) {
                    System.err.println("StandaloneCluster: pid " + h.pid() + " still alive after SIGKILL: " + e);
                }
            }
        }
        if (watchdog != null) {
            watchdog.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
            watchdog.destroyForcibly();
        }
    }

    private static List<String> commandLine(ProcessHandle h) {
        try {
            byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(h.pid()), "cmdline"));
            String s = new String(raw, StandardCharsets.UTF_8);
            return Arrays.asList(s.split("\0"));
        } catch (IOException | RuntimeException e) {
            Optional<String[]> args = h.info().arguments();
            return args.map(Arrays::asList).orElse(Collections.emptyList());
        }
    }

    private static String argAfter(List<String> args, String flag) {
        int i = args.indexOf(flag);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
    }

    /** The gpu addresses in an executor's resources file (the worker writes it into the executor's work dir). */
    private static List<String> executorGpus(String resourcesFile) {
        if (resourcesFile == null) {
            return List.of();
        }
        try {
            List<String> out = new ArrayList<>();
            for (JsonNode r : JSON.readTree(Path.of(resourcesFile).toFile())) {
                if ("gpu".equals(r.path("id").path("resourceName").asText())) {
                    r.path("addresses").forEach(a -> out.add(a.asText()));
                }
            }
            return List.copyOf(out);
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Packs a class directory into a jar (entries in sorted order, no timestamps that matter). */
    static void jarDirectory(Path classes, Path jar) throws IOException {
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        List<Path> files = new ArrayList<>();
        Files.walkFileTree(classes, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                if (attrs.isRegularFile() && !classes.relativize(file).toString().equals("META-INF/MANIFEST.MF")) {
                    files.add(file);
                }
                return FileVisitResult.CONTINUE;
            }
        });
        Collections.sort(files);
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(os, manifest)) {
            for (Path f : files) {
                String name = classes.relativize(f).toString().replace(File.separatorChar, '/');
                out.putNextEntry(new ZipEntry(name));
                try (InputStream in = Files.newInputStream(f)) {
                    in.transferTo(out);
                }
                out.closeEntry();
            }
        }
    }

    private static String readQuietly(Path p) {
        try {
            return Files.readString(p, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return "";
        }
    }

    private static void appendTail(StringBuilder sb, Path log) {
        sb.append("---- last ").append(LOG_TAIL_LINES).append(" lines of ").append(log).append(" ----\n");
        if (!Files.exists(log)) {
            sb.append("(missing)\n");
            return;
        }
        List<String> lines = Arrays.asList(readQuietly(log).split("\n", -1));
        int from = Math.max(0, lines.size() - LOG_TAIL_LINES - 1);
        for (String line : lines.subList(from, lines.size())) {
            sb.append(line).append('\n');
        }
    }
}
