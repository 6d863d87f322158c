package io.moescore.job;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.util.resource.ResourceUtils;

/**
 * An in-process YARN cluster for tests (MiniYARNCluster: one ResourceManager with the CapacityScheduler and N
 * NodeManagers), optionally beside an in-process HDFS (MiniDFSCluster, one DataNode) that is then its default file
 * system, and the client configuration a submitter needs ({@link #hadoopConfDir()}: core-site.xml, yarn-site.xml).
 *
 * <p>GPUs without GPUs: with {@code gpusPerNode} K &gt; 0, {@code yarn.io/gpu} is a resource type of the cluster
 * (yarn.resource-types) and every NodeManager offers K of it (yarn.nodemanager.resource-type.yarn.io/gpu), so the
 * DominantResourceCalculator schedules containers that ask for GPUs as a GPU cluster would. YARN's GPU plugin
 * (yarn.nodemanager.resource-plugins=yarn.io/gpu) is not used: it discovers devices with nvidia-smi and isolates them
 * with cgroups through the LinuxContainerExecutor, neither of which a test machine has; the resource-type form is
 * what YARN documents for counted resources, and what the RM schedules by either way. As YARN does not tell a
 * container which GPUs it got, Spark runs a discovery script (conf/get-gpus.sh) in each executor, which asks
 * nvidia-smi: the containers get a stand-in first on their PATH (src/test/resources/yarn/nvidia-smi, through
 * yarn.nodemanager.admin-env) that reports their NodeManager's GPUs, {@code i*K .. i*K+K-1} for NodeManager i, as
 * nvidia-smi reports a node's devices. A container's JVM is launched with the test JVM's Java (JAVA_HOME, also
 * through admin-env).
 *
 * <p>HDFS, the client configuration and the fake GPUs live under {@link #dir()}; the NodeManagers' logs and local
 * dirs under MiniYARNCluster's work dir (target/test/data/yarn-NAME/, kept after close for post-mortems).
 * {@link ResourceUtils} keeps the resource types and a node's resources in static fields of this JVM: the constructor
 * resets them to this cluster's, so clusters with and without GPUs can follow each other in one JVM (not overlap).
 */
final class YarnCluster implements AutoCloseable {
    static final String GPU = "yarn.io/gpu";
    /** Memory and vcores each NodeManager offers: an application master and one executor of the tests fit. */
    private static final int NODE_MEMORY_MB = 3072;
    private static final int NODE_VCORES = 4;
    /** How often NodeManagers heartbeat to the ResourceManager (YARN's default: 1000 ms). */
    private static final long NM_HEARTBEAT_MS = 200;

    private final Path dir;
    private final int nodeManagers;
    private final int gpusPerNode;
    private final MiniDFSCluster hdfs;
    private final MiniYARNCluster yarn;
    private final Path confDir;

    private YarnCluster(Path dir, int nodeManagers, int gpusPerNode, boolean withHdfs) throws IOException {
        this.dir = Files.createDirectories(dir.toAbsolutePath());
        this.nodeManagers = nodeManagers;
        this.gpusPerNode = gpusPerNode;
        MiniDFSCluster dfs = null;
        MiniYARNCluster y = null;
        try {
            Configuration base = new Configuration();
            if (withHdfs) {
                base.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, dir.resolve("hdfs").toString());
                dfs = new MiniDFSCluster.Builder(base).numDataNodes(1).build();
                dfs.waitActive();
                base.set("fs.defaultFS", dfs.getURI().toString());
            }
            YarnConfiguration conf = yarnConf(base, nodeManagers);
            ResourceUtils.resetResourceTypes(conf);
            ResourceUtils.resetNodeResources();
            // MiniYARNCluster's work dirs (NodeManager logs and local dirs): target/test/data/<name>/yarn-<n> of the
            // working directory.
            y = new MiniYARNCluster("yarn-" + dir.getFileName(), nodeManagers, 1, 1);
            y.init(conf);
            y.start();
            if (!y.waitForNodeManagersToConnect(Duration.ofSeconds(60).toMillis())) {
                throw new IllegalStateException(nodeManagers + " NodeManagers did not register in 60 s");
            }
            this.hdfs = dfs;
            this.yarn = y;
            writeFakeGpus();
            this.confDir = writeClientConf(base);
        } catch (IOException | RuntimeException e) {
            stopQuietly(y, dfs);
            throw e;
        } catch (Exception e) {
            stopQuietly(y, dfs);
            throw new IllegalStateException("YARN cluster in " + dir + " did not start: " + e, e);
        }
    }

    /** HDFS and a YARN cluster of {@code nodeManagers} nodes, each offering {@code gpusPerNode} yarn.io/gpu. */
    static YarnCluster withHdfs(Path dir, int nodeManagers, int gpusPerNode) throws IOException {
        return new YarnCluster(dir, nodeManagers, gpusPerNode, true);
    }

    /** A YARN cluster alone (local file system), {@code gpusPerNode} 0: no yarn.io/gpu resource type at all. */
    static YarnCluster withoutHdfs(Path dir, int nodeManagers, int gpusPerNode) throws IOException {
        return new YarnCluster(dir, nodeManagers, gpusPerNode, false);
    }

    private YarnConfiguration yarnConf(Configuration base, int nodeManagers) throws IOException {
        YarnConfiguration conf = new YarnConfiguration(base);
        if (gpusPerNode > 0) {
            conf.set(YarnConfiguration.RESOURCE_TYPES, GPU);
            conf.setInt(YarnConfiguration.NM_RESOURCES_PREFIX + GPU, gpusPerNode);
        }
        conf.setInt(YarnConfiguration.NM_PMEM_MB, NODE_MEMORY_MB);
        conf.setInt(YarnConfiguration.NM_VCORES, NODE_VCORES);
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, NODE_MEMORY_MB);
        // Memory and GPUs both count when placing a container (the default calculator counts memory only).
        conf.set("yarn.scheduler.capacity.resource-calculator",
                "org.apache.hadoop.yarn.util.resource.DominantResourceCalculator");
        conf.set("yarn.scheduler.capacity.root.queues", "default");
        conf.set("yarn.scheduler.capacity.root.default.capacity", "100");
        conf.set("yarn.scheduler.capacity.maximum-am-resource-percent", "1.0");
        // Containers share this machine with the test JVM: no virtual/physical memory policing, no disk-full
        // verdicts from a busy developer disk.
        conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
        conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
        conf.setFloat(YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 100.0f);
        conf.setLong(YarnConfiguration.NM_MIN_PER_DISK_FREE_SPACE_MB, 0);
        // Short waits: the scheduler places containers when a NodeManager heartbeats (default every 1 s), and a
        // finished container reaches the RM (and the application master) the same way. The container monitor
        // (every 3 s, /proc of each container) only serves the memory checks switched off above.
        conf.setLong(YarnConfiguration.RM_NM_HEARTBEAT_INTERVAL_MS, NM_HEARTBEAT_MS);
        conf.setBoolean(YarnConfiguration.NM_CONTAINER_MONITOR_ENABLED, false);
        // A finished application's container folders and logs stay (10 minutes) so a failure's message can show
        // them; without it the NodeManager deletes them while the message is being built.
        conf.setInt(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 600);
        // Every container: this JVM's Java, and the stand-in nvidia-smi first on the PATH.
        Path bin = Files.createDirectories(dir.resolve("fake-gpu/bin"));
        copyExecutable("yarn/nvidia-smi", bin.resolve("nvidia-smi"));
        conf.set(YarnConfiguration.NM_ADMIN_USER_ENV, String.join(",",
                "JAVA_HOME=" + System.getProperty("java.home"),
                "PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin",
                "MOESCORE_FAKE_GPUS=" + fakeGpuDir()));
        return conf;
    }

    private Path fakeGpuDir() {
        return dir.resolve("fake-gpu/nodes");
    }

    /** For NodeManager i, the file its containers' nvidia-smi reads: its GPU indices, one per line. */
    private void writeFakeGpus() throws IOException {
        Files.createDirectories(fakeGpuDir());
        for (int i = 0; i < nodeManagers(); i++) {
            List<String> gpus = gpuAddresses(i);
            if (!gpus.isEmpty()) {
                Files.write(fakeGpuDir().resolve(Integer.toString(nodeManagerPort(i))), gpus);
            }
        }
    }

    /**
     * What a client's configuration holds, as an administrator would hand it out: core-site.xml (fs.defaultFS) and
     * yarn-site.xml (the ResourceManager's addresses as bound, the resource types). Not the whole cluster
     * configuration: MiniYARNCluster's own test settings (a rack mapping class of Hadoop's tests) must not reach
     * the application.
     */
    private Path writeClientConf(Configuration base) throws IOException {
        Path conf = Files.createDirectories(dir.resolve("hadoop-conf"));
        Configuration core = new Configuration(false);
        core.set("fs.defaultFS", base.get("fs.defaultFS", "file:///"));
        try (OutputStream out = Files.newOutputStream(conf.resolve("core-site.xml"))) {
            core.writeXml(out);
        }
        Configuration site = new Configuration(false);
        for (Map.Entry<String, String> e : yarn.getConfig()) {
            if (e.getKey().startsWith("yarn.resourcemanager.") || e.getKey().equals(YarnConfiguration.RESOURCE_TYPES)) {
                site.set(e.getKey(), yarn.getConfig().get(e.getKey()));
            }
        }
        try (OutputStream out = Files.newOutputStream(conf.resolve("yarn-site.xml"))) {
            site.writeXml(out);
        }
        return conf;
    }

    private static void copyExecutable(String resource, Path to) throws IOException {
        try (InputStream in = YarnCluster.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("test resource " + resource + " is missing");
            }
            Files.copy(in, to, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** Copies a test resource to an executable file (the fake Spark distribution's bin/spark-submit). */
    static void installScript(String resource, Path to) throws IOException {
        Files.createDirectories(to.getParent());
        copyExecutable(resource, to);
    }

    Path dir() {
        return dir;
    }

    /** HADOOP_CONF_DIR for a client of this cluster. */
    Path hadoopConfDir() {
        return confDir;
    }

    /** The environment a submitter needs: HADOOP_CONF_DIR, and no YARN_CONF_DIR or SPARK_* of the developer's. */
    Map<String, String> clientEnv(Map<String, String> env) {
        env.keySet().removeIf(k -> k.startsWith("SPARK_") || k.equals("YARN_CONF_DIR") || k.startsWith("MOESCORE_"));
        env.put("HADOOP_CONF_DIR", confDir.toString());
        return env;
    }

    int nodeManagers() {
        return nodeManagers;
    }

    /** The GPU addresses NodeManager {@code i} offers ("0", "1", ...); empty without GPUs. */
    List<String> gpuAddresses(int i) {
        List<String> out = new ArrayList<>();
        for (int a = i * gpusPerNode; a < (i + 1) * gpusPerNode; a++) {
            out.add(Integer.toString(a));
        }
        return out;
    }

    /** The RPC port of NodeManager {@code i} (NM_PORT in its containers). */
    int nodeManagerPort(int i) {
        NodeManager nm = yarn.getNodeManager(i);
        return nm.getNMContext().getNodeId().getPort();
    }

    /** The NodeManager whose RPC port this is, or -1. */
    int nodeManagerOfPort(int port) {
        for (int i = 0; i < nodeManagers(); i++) {
            if (nodeManagerPort(i) == port) {
                return i;
            }
        }
        return -1;
    }

    /** The default file system (HDFS when started with it). */
    FileSystem fileSystem() throws IOException {
        return hdfs != null ? hdfs.getFileSystem() : FileSystem.getLocal(new Configuration());
    }

    /** The client Hadoop configuration (HDFS and YARN), for reading results in the test JVM. */
    Configuration conf() {
        return new Configuration(yarn.getConfig());
    }

    /** hdfs://host:port (no trailing slash). */
    String hdfsUri() {
        if (hdfs == null) {
            throw new IllegalStateException("started without HDFS");
        }
        return hdfs.getURI().toString();
    }

    /** The state and final status of every application the ResourceManager knows, for assertions and messages. */
    List<String> applications() {
        return yarn.getResourceManager().getRMContext().getRMApps().values().stream()
                .map(a -> a.getApplicationId() + " " + a.getName() + " queue=" + a.getQueue() + " " + a.getState()
                        + " " + a.getFinalApplicationStatus())
                .collect(Collectors.toList());
    }

    /**
     * The executor JVMs of this application alive now: descendants of this JVM (NodeManagers launch containers as
     * child processes; the shells that launch them name the same class, but are not {@code java}).
     */
    static List<ProcessHandle> executorProcesses(String applicationId) {
        return ProcessHandle.current().descendants()
                .filter(h -> h.isAlive() && h.info().command().orElse("").endsWith("/java"))
                .filter(h -> {
                    String cmd = commandLine(h);
                    return cmd.contains("YarnCoarseGrainedExecutorBackend") && cmd.contains(applicationId);
                })
                .collect(Collectors.toList());
    }

    /** The one RUNNING application's id, or null when none runs. */
    String runningApplication() {
        List<String> running = yarn.getResourceManager().getRMContext().getRMApps().values().stream()
                .filter(a -> a.getState() == org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMAppState.RUNNING)
                .map(a -> a.getApplicationId().toString()).toList();
        if (running.size() > 1) {
            throw new IllegalStateException("more than one application runs: " + running);
        }
        return running.isEmpty() ? null : running.get(0);
    }

    /** The ids of every application the ResourceManager has seen. */
    List<String> applicationIds() {
        return yarn.getResourceManager().getRMContext().getRMApps().keySet().stream().map(Object::toString)
                .sorted().toList();
    }

    static String commandLine(ProcessHandle h) {
        try {
            byte[] raw = Files.readAllBytes(Path.of("/proc", Long.toString(h.pid()), "cmdline"));
            return new String(raw, StandardCharsets.UTF_8).replace('\0', ' ');
        } catch (IOException | RuntimeException e) {
            return h.info().commandLine().orElse("");
        }
    }

    /**
     * The last lines of every container log of the NodeManagers (stdout, stderr), for a failure's message. The
     * NodeManagers may be cleaning up an application's folders while this walks them: a file or folder that is gone
     * by the time it is read is skipped, never an exception that would hide the failure being reported.
     */
    String containerLogs(int linesEach) {
        StringBuilder sb = new StringBuilder();
        Path root = yarn.getTestWorkDir().toPath().toAbsolutePath();
        if (!Files.isDirectory(root)) {
            return "(no YARN work dir at " + root + ")";
        }
        List<Path> logs = new ArrayList<>();
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) {
                    String name = f.getFileName().toString();
                    if (f.toString().contains("container_") && (name.equals("stderr") || name.equals("stdout"))) {
                        logs.add(f);
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path f, IOException e) {
                    return FileVisitResult.CONTINUE;   // removed or unreadable while walking
                }
            });
        } catch (IOException | RuntimeException e) {
            sb.append("(walking ").append(root).append(" stopped: ").append(e).append(")\n");
        }
        for (Path f : logs.stream().sorted().toList()) {
            try {
                List<String> lines = Files.readAllLines(f, StandardCharsets.ISO_8859_1);
                sb.append("==== ").append(f).append('\n');
                lines.subList(Math.max(0, lines.size() - linesEach), lines.size())
                        .forEach(l -> sb.append(l).append('\n'));
            } catch (IOException | RuntimeException e) {
                sb.append("==== ").append(f).append(" (cannot read: ").append(e).append(")\n");
            }
        }
        return sb.toString();
    }

    @Override
    public void close() {
        stopQuietly(yarn, hdfs);
    }

    private static void stopQuietly(MiniYARNCluster y, MiniDFSCluster dfs) {
        if (y != null) {
            try {
                y.stop();
            } catch (RuntimeException e) {
                System.err.println("YarnCluster: stopping YARN: " + e);
            }
        }
        if (dfs != null) {
            dfs.shutdown();
        }
    }

    @Override
    public String toString() {
        return "YarnCluster(" + nodeManagers + " NodeManagers, " + gpusPerNode + " GPU(s) each, " + dir + ")";
    }
}
