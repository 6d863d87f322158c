package io.moescore.spark.yarn;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.yarn.api.records.NodeReport;
import org.apache.hadoop.yarn.api.records.NodeState;
import org.apache.hadoop.yarn.api.records.QueueInfo;
import org.apache.hadoop.yarn.api.records.QueueState;
import org.apache.hadoop.yarn.api.records.ResourceTypeInfo;
import org.apache.hadoop.yarn.client.api.YarnClient;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.exceptions.YarnException;

/**
 * What a YARN submission needs of the cluster, checked before anything is submitted (submit-scripts/moescore runs
 * it for {@code --master yarn}), so that a setting the cluster cannot serve fails in seconds naming the setting,
 * instead of as an application master that dies after its retries or executors that never come:
 * <ul>
 *   <li>the ResourceManager answers (at the address of the client's yarn-site.xml, within a few seconds);</li>
 *   <li>the queue ({@code --queue}, else {@code spark.yarn.queue}, else {@code default}) exists, is a leaf and is
 *       RUNNING;</li>
 *   <li>when executors ask for GPUs ({@code spark.executor.resource.gpu.amount} &gt; 0): the YARN resource Spark
 *       asks for ({@code spark.yarn.resourceGpuDeviceName}, default {@code yarn.io/gpu}) is a resource type of the
 *       cluster and of the client configuration (resource-types.xml or yarn.resource-types, which the application
 *       master reads to ask for executors), and some RUNNING NodeManager offers that many.</li>
 * </ul>
 * The Spark settings come from the spark-submit options the launcher will pass ({@link Submission#parse}).
 */
public final class YarnSetupCheck {
    /** The YARN resource Spark maps its {@code gpu} resource to, unless spark.yarn.resourceGpuDeviceName says. */
    public static final String DEFAULT_GPU_RESOURCE = "yarn.io/gpu";
    private static final String RESOURCE_TYPES_FILE = "resource-types.xml";

    private YarnSetupCheck() {
    }

    /**
     * The settings of one spark-submit command line that matter here: {@code --queue}, {@code --conf k=v}, and the
     * properties file spark-submit would read ({@code --properties-file}, else {@code spark-defaults.conf} in
     * SPARK_CONF_DIR or SPARK_HOME/conf). Command-line values win over the file's, as in spark-submit.
     */
    public record Submission(String queue, Map<String, String> conf) {
        /** Parses spark-submit options; other options and the application's own arguments are ignored. */
        public static Submission parse(List<String> args, Map<String, String> env) {
            Map<String, String> cli = new LinkedHashMap<>();
            String queue = null;
            String propertiesFile = null;
            boolean loadDefaults = false;
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                String next = i + 1 < args.size() ? args.get(i + 1) : null;
                if ((a.equals("--conf") || a.equals("-c")) && next != null) {
                    putConf(cli, next);
                    i++;
                } else if (a.startsWith("--conf=")) {
                    putConf(cli, a.substring("--conf=".length()));
                } else if (a.equals("--queue") && next != null) {
                    queue = next;
                    i++;
                } else if (a.startsWith("--queue=")) {
                    queue = a.substring("--queue=".length());
                } else if (a.equals("--properties-file") && next != null) {
                    propertiesFile = next;
                    i++;
                } else if (a.equals("--load-spark-defaults")) {
                    loadDefaults = true;
                }
            }
            Map<String, String> conf = new TreeMap<>();
            Path defaults = defaultsFile(env);
            if ((propertiesFile == null || loadDefaults) && defaults != null) {
                conf.putAll(readProperties(defaults));
            }
            if (propertiesFile != null) {
                conf.putAll(readProperties(Path.of(propertiesFile)));
            }
            conf.putAll(cli);
            if (queue == null) {
                queue = conf.getOrDefault("spark.yarn.queue", "default");
            }
            return new Submission(queue, Map.copyOf(conf));
        }

        /** spark.executor.resource.gpu.amount (0 when unset). */
        public long executorGpus() {
            String v = conf.getOrDefault("spark.executor.resource.gpu.amount", "0").trim();
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("spark.executor.resource.gpu.amount=" + v
                        + " is not a whole number of GPUs");
            }
        }

        /** The YARN resource name Spark asks for GPUs with. */
        public String gpuResource() {
            return conf.getOrDefault("spark.yarn.resourceGpuDeviceName", DEFAULT_GPU_RESOURCE);
        }

        private static void putConf(Map<String, String> conf, String kv) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                conf.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
            }
        }

        private static Path defaultsFile(Map<String, String> env) {
            String confDir = env.get("SPARK_CONF_DIR");
            if (confDir == null && env.get("SPARK_HOME") != null) {
                confDir = Path.of(env.get("SPARK_HOME"), "conf").toString();
            }
            Path f = confDir == null ? null : Path.of(confDir, "spark-defaults.conf");
            return f != null && Files.isRegularFile(f) ? f : null;
        }

        private static Map<String, String> readProperties(Path file) {
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(file)) {
                p.load(in);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the Spark properties file " + file, e);
            }
            Map<String, String> out = new TreeMap<>();
            p.stringPropertyNames().forEach(k -> out.put(k.trim(), p.getProperty(k).trim()));
            return out;
        }
    }

    /** What was found: the problems (empty: the submission can go ahead) and a line describing the cluster. */
    public record Result(List<String> problems, String cluster) {
        public boolean ok() {
            return problems.isEmpty();
        }
    }

    /**
     * Asks the ResourceManager named by {@code conf} (the client's yarn-site.xml) about {@code submission}. Waits
     * at most about 10 s for an unreachable ResourceManager.
     */
    public static Result check(Configuration conf, Submission submission) {
        YarnConfiguration yarn = new YarnConfiguration(conf);
        yarn.addResource(RESOURCE_TYPES_FILE);
        // Fail in seconds, not after the client's default 15 minutes of retries (each of which the IPC client
        // itself retries 10 times a second apart).
        yarn.setLong(YarnConfiguration.RESOURCEMANAGER_CONNECT_MAX_WAIT_MS, 10_000);
        yarn.setLong(YarnConfiguration.RESOURCEMANAGER_CONNECT_RETRY_INTERVAL_MS, 2_000);
        yarn.setInt("ipc.client.connect.max.retries", 0);
        yarn.setInt("ipc.client.connect.max.retries.on.timeouts", 0);
        yarn.setInt("ipc.client.connect.timeout", 5_000);
        String rm = yarn.get(YarnConfiguration.RM_ADDRESS, YarnConfiguration.DEFAULT_RM_ADDRESS);
        List<String> problems = new ArrayList<>();
        try (YarnClient client = YarnClient.createYarnClient()) {
            client.init(yarn);
            client.start();
            List<String> types = new ArrayList<>();
            for (ResourceTypeInfo t : client.getResourceTypeInfo()) {
                types.add(t.getName());
            }
            checkQueue(client, submission.queue(), rm, problems);
            String gpus = "";
            long wanted = submission.executorGpus();
            if (wanted > 0) {
                gpus = checkGpus(client, yarn, submission.gpuResource(), wanted, types, rm, problems);
            }
            return new Result(List.copyOf(problems), "YARN ResourceManager " + rm + ": resource types " + types
                    + ", queue " + submission.queue() + gpus);
        } catch (YarnException | IOException e) {
            problems.add("cannot ask the YARN ResourceManager at " + rm + " (yarn.resourcemanager.address of the "
                    + "client's yarn-site.xml, from HADOOP_CONF_DIR or YARN_CONF_DIR): " + e.getMessage());
            return new Result(List.copyOf(problems), "YARN ResourceManager " + rm + " (no answer)");
        }
    }

    private static void checkQueue(YarnClient client, String queue, String rm, List<String> problems)
            throws YarnException, IOException {
        QueueInfo info;
        try {
            info = client.getQueueInfo(queue);
        } catch (YarnException | IOException e) {
            info = null;   // a scheduler may answer an unknown queue with an error rather than nothing
        }
        if (info == null) {
            List<String> leaves = new ArrayList<>();
            for (QueueInfo q : client.getAllQueues()) {
                if (q.getChildQueues() == null || q.getChildQueues().isEmpty()) {
                    leaves.add(q.getQueueName());
                }
            }
            problems.add("YARN queue '" + queue + "' (--queue / spark.yarn.queue) does not exist on the cluster of "
                    + "ResourceManager " + rm + "; its leaf queues: " + leaves);
            return;
        }
        if (!client.getChildQueueInfos(queue).isEmpty()) {
            problems.add("YARN queue '" + queue + "' (--queue / spark.yarn.queue) is a parent queue; applications go "
                    + "to one of its leaf queues");
        } else if (info.getQueueState() != null && info.getQueueState() != QueueState.RUNNING) {
            problems.add("YARN queue '" + queue + "' (--queue / spark.yarn.queue) is " + info.getQueueState()
                    + ", not RUNNING: it accepts no applications");
        }
    }

    /** Checks the GPU resource type on both sides and the nodes' offers; returns a description for the summary. */
    private static String checkGpus(YarnClient client, Configuration clientConf, String resource, long wanted,
                                    List<String> clusterTypes, String rm, List<String> problems)
            throws YarnException, IOException {
        String asked = "spark.executor.resource.gpu.amount=" + wanted + " asks each executor for " + wanted + " "
                + resource;
        boolean problem = false;
        if (!clusterTypes.contains(resource)) {
            problems.add("the YARN cluster has no resource type " + resource + " (ResourceManager " + rm
                    + " declares " + clusterTypes + "), but " + asked + ": declare " + resource + " on the cluster "
                    + "(yarn.resource-types in resource-types.xml, NodeManagers with yarn.nodemanager.resource-plugins="
                    + "yarn.io/gpu or yarn.nodemanager.resource-type." + resource + "), or run without GPUs "
                    + "(spark.executor.resource.gpu.amount=0, --backend cpu)");
            problem = true;
        }
        List<String> clientTypes = List.of(clientConf.getTrimmedStrings(YarnConfiguration.RESOURCE_TYPES));
        if (!clientTypes.contains(resource)) {
            problems.add("the client's YARN configuration (HADOOP_CONF_DIR or YARN_CONF_DIR) declares no resource "
                    + "type " + resource + " (yarn.resource-types: " + clientTypes + "), but " + asked + ": the "
                    + "Spark application master reads that configuration to ask for executors; add " + resource
                    + " to yarn.resource-types in its resource-types.xml or yarn-site.xml, as on the cluster");
            problem = true;
        }
        if (problem) {
            return "";
        }
        List<String> offers = new ArrayList<>();
        long most = 0;
        for (NodeReport node : client.getNodeReports(NodeState.RUNNING)) {
            long gpus = node.getCapability().getResourceValue(resource);
            offers.add(node.getNodeId() + "=" + gpus);
            most = Math.max(most, gpus);
        }
        if (most < wanted) {
            problems.add("no RUNNING NodeManager of the YARN cluster offers " + wanted + " " + resource + " ("
                    + (offers.isEmpty() ? "no RUNNING NodeManager" : String.join(", ", offers)) + "), but " + asked);
        }
        return ", " + resource + " per RUNNING NodeManager " + offers;
    }
}
