package io.moescore.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.time.Instant;
import java.util.Optional;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.util.ShutdownHookManager;

/**
 * One job's claim on an output path, so that two jobs never write one output at once: a marker file beside the
 * output ({@code PARENT/.NAME.moescore-lock}; beside, because {@code --mode overwrite} deletes the output folder
 * itself), created only if absent (atomically: O_EXCL on the local file system, {@code create} without overwrite
 * on HDFS), holding the job's application id, name, host, user, process and start time. The driver refreshes the
 * marker's modification time (its heartbeat) every {@code staleSeconds / 6}, and deletes it when the job ends
 * (normally, by an exception, or on JVM shutdown).
 *
 * <p>A marker is stale, and is taken over, when the job that left it is gone: its process is not running on this
 * host (same host name, process id not alive or started at another time), or its heartbeat is older than
 * {@code staleSeconds} (conf {@code spark.moescore.lockStaleSeconds}, default 300). Takeover renames the stale
 * marker to a name of its own first, so of two jobs taking over one stale marker only one succeeds. Otherwise the
 * job is refused naming the output, the marker and the job holding it.
 */
final class OutputLock implements AutoCloseable {
    static final String SUFFIX = ".moescore-lock";
    static final String STALE_CONF = MoeScoreJob.CONF_PREFIX + "lockStaleSeconds";
    static final long DEFAULT_STALE_SECONDS = 300;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final FileSystem fs;
    private final Path marker;
    private final String token;
    private final Thread heartbeat;
    private final Object hook = new Object();
    private final Runnable release = this::release;
    private volatile boolean closed;

    private OutputLock(FileSystem fs, Path marker, String token, long staleSeconds) {
        this.fs = fs;
        this.marker = marker;
        this.token = token;
        long intervalMillis = Math.max(200, staleSeconds * 1000 / 6);
        heartbeat = new Thread(() -> {
            while (!closed) {
                try {
                    Thread.sleep(intervalMillis);
                    if (!closed) {
                        fs.setTimes(marker, System.currentTimeMillis(), -1);
                    }
                } catch (InterruptedException e) {
                    return;
                } catch (IOException | RuntimeException e) {
                    // a missed heartbeat only ages the marker; the next one may succeed
                }
            }
        }, "moescore-output-lock");
        heartbeat.setDaemon(true);
    }

    /** The marker that guards the (qualified) output {@code out}. */
    static Path markerOf(Path out) {
        Path parent = out.getParent();
        if (parent == null) {
            throw new IllegalArgumentException("output " + out + " is the root of its file system: choose a folder");
        }
        return new Path(parent, "." + out.getName() + SUFFIX);
    }

    /** Claims {@code output} for the application {@code sc} runs (see {@link #claim(String, ObjectNode, long, Configuration)}). */
    static OutputLock claim(String output, org.apache.spark.SparkContext sc) {
        ObjectNode holder = JSON.createObjectNode().put("app_id", sc.applicationId())
                .put("app_name", sc.appName());
        return claim(output, holder, sc.getConf().getLong(STALE_CONF, DEFAULT_STALE_SECONDS), sc.hadoopConfiguration());
    }

    /**
     * Claims {@code output} for the application {@code holder} describes (its {@code app_id}, {@code app_name}).
     * Throws {@link IllegalArgumentException} naming the output and the job holding it when another job does.
     */
    static OutputLock claim(String output, ObjectNode holder, long staleSeconds, Configuration conf) {
        Path marker = null;
        try {
            FileSystem fs = new Path(output).getFileSystem(conf);
            Path out = fs.makeQualified(new Path(output));
            marker = markerOf(out);
            String token = UUID.randomUUID().toString();
            ObjectNode content = holder.deepCopy();
            content.put("token", token);
            content.put("output", out.toString());
            content.put("host", hostName());
            content.put("user", System.getProperty("user.name"));
            content.put("pid", ProcessHandle.current().pid());
            content.put("process_start", processStart(ProcessHandle.current()));
            content.put("started", Instant.now().toString());
            byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(content);
            fs.mkdirs(marker.getParent());
            for (int attempt = 0; attempt < 3; attempt++) {
                if (createIfAbsent(fs, marker, bytes)) {
                    OutputLock lock = new OutputLock(fs, marker, token, staleSeconds);
                    lock.heartbeat.start();
                    ShutdownHookManager.get().addShutdownHook(lock.release, FileSystem.SHUTDOWN_HOOK_PRIORITY + 1);
                    return lock;
                }
                Holder held = Holder.read(fs, marker);
                if (held == null) {
                    continue;  // released meanwhile
                }
                String staleWhy = held.staleBecause(staleSeconds);
                if (staleWhy == null || !takeOver(fs, marker, held, token)) {
                    throw new IllegalArgumentException("output " + content.get("output").asText() + " is being "
                            + "written by another moescore job: " + held.describe() + " (lock " + marker + "). Wait "
                            + "for it to finish or choose another output; a lock whose job is gone is taken over "
                            + "(its process not running on this host, or no heartbeat for " + staleSeconds + " s, "
                            + "conf " + STALE_CONF + "), or delete the lock file once you are sure that job is gone");
                }
                System.err.println("moescore: took over the lock of " + output + " from a job that is gone ("
                        + staleWhy + "): " + held.describe());
            }
            throw new IllegalArgumentException("cannot claim output " + output + ": its lock " + marker
                    + " keeps changing hands");
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot claim output " + output + " (lock " + marker + "): "
                    + e.getMessage(), e);
        }
    }

    Path marker() {
        return marker;
    }

    /** Deletes the marker if it is still this job's. */
    @Override
    public void close() {
        release();
        try {
            ShutdownHookManager.get().removeShutdownHook(release);
        } catch (IllegalStateException e) {
            // shutting down: the hook runs or ran
        }
    }

    private void release() {
        synchronized (hook) {
            if (closed) {
                return;
            }
            closed = true;
        }
        heartbeat.interrupt();
        try {
            Holder held = Holder.read(fs, marker);
            if (held != null && token.equals(held.json().path("token").asText())) {
                fs.delete(marker, false);
            }
        } catch (IOException e) {
            System.err.println("moescore: could not remove the output lock " + marker + " (delete it by hand): " + e);
        }
    }

    /** Creates {@code marker} holding {@code bytes} unless it exists: false where it does. */
    static boolean createIfAbsent(FileSystem fs, Path marker, byte[] bytes) throws IOException {
        RawLocalFileSystem raw = fs instanceof LocalFileSystem local ? (RawLocalFileSystem) local.getRaw()
                : fs instanceof RawLocalFileSystem r ? r : null;
        if (raw != null) {
            java.nio.file.Path file = raw.pathToFile(marker).toPath();
            try {
                Files.createFile(file);  // O_CREAT | O_EXCL
            } catch (FileAlreadyExistsException e) {
                return false;
            }
            Files.write(file, bytes);
            return true;
        }
        try (OutputStream out = fs.create(marker, false)) {
            out.write(bytes);
            return true;
        } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
            return false;
        } catch (IOException e) {
            // HDFS: AlreadyBeingCreatedException (a RemoteException) while another client creates it
            if (fs.exists(marker)) {
                return false;
            }
            throw e;
        }
    }

    /**
     * Moves the stale marker {@code held} aside and deletes it. False where the marker found there is not the one
     * judged stale (another job took it over meanwhile): it is put back, and the caller is refused.
     */
    private static boolean takeOver(FileSystem fs, Path marker, Holder held, String token) throws IOException {
        Path aside = new Path(marker.getParent(), marker.getName() + ".stale-" + token);
        if (!fs.rename(marker, aside)) {
            return !fs.exists(marker);  // false: taken meanwhile; true: gone, try to create it again
        }
        Holder moved = Holder.read(fs, aside);
        if (moved != null && !moved.sameClaim(held)) {
            fs.rename(aside, marker);  // someone else's fresh claim: give it back (fails only if a third exists)
            return false;
        }
        fs.delete(aside, false);
        return true;
    }

    static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static String processStart(ProcessHandle p) {
        return p.info().startInstant().map(Instant::toString).orElse("");
    }

    /** A marker as found: its content (empty while its creator is still writing it) and modification time. */
    record Holder(JsonNode json, long modifiedMillis) {
        static Holder read(FileSystem fs, Path marker) throws IOException {
            FileStatus status;
            byte[] bytes;
            try {
                status = fs.getFileStatus(marker);
                try (InputStream in = fs.open(marker)) {
                    bytes = in.readAllBytes();
                }
            } catch (FileNotFoundException e) {
                return null;
            }
            JsonNode json;
            try {
                json = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
            } catch (IOException e) {
                json = null;
            }
            return new Holder(json == null ? JSON.createObjectNode() : json, status.getModificationTime());
        }

        boolean sameClaim(Holder other) {
            return json.path("token").asText().equals(other.json.path("token").asText());
        }

        /** Why the job that left this marker is gone, or null while it may be running. */
        String staleBecause(long staleSeconds) {
            long age = (System.currentTimeMillis() - modifiedMillis) / 1000;
            if (age > staleSeconds) {
                return "no heartbeat for " + age + " s";
            }
            if (json.has("pid") && hostName().equals(json.path("host").asText())) {
                Optional<ProcessHandle> p = ProcessHandle.of(json.path("pid").asLong());
                if (p.isEmpty() || !p.get().isAlive()) {
                    return "process " + json.path("pid").asLong() + " is not running on " + hostName();
                }
                String start = processStart(p.get());
                if (!start.isEmpty() && !start.equals(json.path("process_start").asText())) {
                    return "process " + json.path("pid").asLong() + " on " + hostName() + " is another process now";
                }
            }
            return null;
        }

        String describe() {
            if (!json.has("app_id")) {
                return "a job still writing its lock (modified " + Instant.ofEpochMilli(modifiedMillis) + ")";
            }
            StringBuilder sb = new StringBuilder("application ").append(json.path("app_id").asText());
            appendIf(sb, " ('%s')", "app_name");
            appendIf(sb, " of %s", "user");
            appendIf(sb, " on %s", "host");
            appendIf(sb, ", process %s", "pid");
            appendIf(sb, ", started %s", "started");
            return sb.append(", last heartbeat ").append(Instant.ofEpochMilli(modifiedMillis)).toString();
        }

        private void appendIf(StringBuilder sb, String format, String field) {
            String value = json.path(field).asText("");
            if (!value.isEmpty()) {
                sb.append(String.format(format, value));
            }
        }
    }
}
