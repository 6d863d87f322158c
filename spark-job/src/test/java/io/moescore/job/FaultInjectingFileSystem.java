package io.moescore.job;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * The local file system under the scheme {@code faulty:}, with faults a test asks for through Hadoop conf keys
 * (set as {@code spark.hadoop.faulty.*}, so they reach every task):
 * <ul>
 *   <li>{@code faulty.failOnce}: the first open of a file whose name contains this fails (an IOException, as a
 *       lost datanode would give); later opens succeed. "First" is per {@code faulty.stateDir}, across JVMs.</li>
 *   <li>{@code faulty.slowOnce} / {@code faulty.slowOnceMillis}: the first open of a matching file waits until
 *       another attempt has opened it too (an {@code opened-NAME-*} marker of {@code faulty.taskDelayMillis}), at
 *       most slowOnceMillis: a speculative copy then always has a slow original, however loaded the machine.</li>
 *   <li>{@code faulty.failCreateOnce}: the first create, in a scoring task, of a file whose name contains this fails
 *       (an IOException); once in all (per {@code faulty.stateDir}), whatever the file.</li>
 *   <li>{@code faulty.delayMillis}: every open sleeps this long (stretches a job for a test to act meanwhile).</li>
 *   <li>{@code faulty.taskDelayMillis}: the same, and each open also leaves a marker {@code opened-NAME-NANOS} in
 *       the state folder, so a test sees tasks start.</li>
 *   <li>{@code faulty.holdUntil}: every open waits until this file exists (at most 5 minutes): holds a job in its
 *       scoring stage until the test lets it go.</li>
 *   <li>{@code faulty.mkdirOnOpen}: any open, in any job (schema passes included), first creates this folder
 *       (another writer creating a job's output while the job runs).</li>
 * </ul>
 * Faults happen only inside the job's scoring tasks (Spark job description "moescore scoring ..."), never in
 * schema inference, listing or footer reads. Register with {@code fs.faulty.impl} and
 * {@code fs.faulty.impl.disable.cache=true}.
 */
public class FaultInjectingFileSystem extends RawLocalFileSystem {
    private Configuration conf;

    @Override
    public void initialize(URI uri, Configuration conf) throws IOException {
        super.initialize(uri, conf);
        this.conf = conf;
    }

    @Override
    public URI getUri() {
        return URI.create("faulty:///");
    }

    @Override
    public String getScheme() {
        return "faulty";
    }

    @Override
    public FSDataInputStream open(org.apache.hadoop.fs.Path f, int bufferSize) throws IOException {
        String name = f.getName();
        String mkdir = conf.get("faulty.mkdirOnOpen");
        if (mkdir != null) {
            Files.createDirectories(Path.of(mkdir));
        }
        if (!inScoringTask()) {
            return super.open(f, bufferSize);
        }
        sleep(conf.getLong("faulty.delayMillis", 0));
        String holdUntil = conf.get("faulty.holdUntil");
        long holdDeadline = System.nanoTime() + 300_000_000_000L;
        while (holdUntil != null && !Files.exists(Path.of(holdUntil)) && System.nanoTime() < holdDeadline) {
            sleep(50);
        }
        if (conf.getLong("faulty.taskDelayMillis", 0) > 0) {
            Files.createFile(Path.of(conf.get("faulty.stateDir")).resolve("opened-" + name + "-" + System.nanoTime()));
            sleep(conf.getLong("faulty.taskDelayMillis", 0));
        }
        String failOnce = conf.get("faulty.failOnce");
        if (failOnce != null && name.contains(failOnce) && firstTime("failed-" + name)) {
            throw new IOException("injected fault: first read of " + f + " fails");
        }
        String slowOnce = conf.get("faulty.slowOnce");
        if (slowOnce != null && name.contains(slowOnce) && firstTime("slowed-" + name)) {
            long deadline = System.nanoTime() + conf.getLong("faulty.slowOnceMillis", 0) * 1_000_000;
            while (System.nanoTime() < deadline && openedCount(name) < 2) {
                sleep(100);
            }
        }
        return super.open(f, bufferSize);
    }

    @Override
    public FSDataOutputStream create(org.apache.hadoop.fs.Path f, FsPermission permission, boolean overwrite,
                                     int bufferSize, short replication, long blockSize, Progressable progress)
            throws IOException {
        failCreateOnce(f);
        return super.create(f, permission, overwrite, bufferSize, replication, blockSize, progress);
    }

    @Override
    public FSDataOutputStream create(org.apache.hadoop.fs.Path f, boolean overwrite, int bufferSize,
                                     short replication, long blockSize, Progressable progress) throws IOException {
        failCreateOnce(f);
        return super.create(f, overwrite, bufferSize, replication, blockSize, progress);
    }

    private void failCreateOnce(org.apache.hadoop.fs.Path f) throws IOException {
        String failCreateOnce = conf.get("faulty.failCreateOnce");
        if (failCreateOnce != null && f.getName().contains(failCreateOnce) && inScoringTask()
                && firstTime("failed-create-" + failCreateOnce)) {
            throw new IOException("injected fault: creating " + f + " fails");
        }
    }

    private static boolean inScoringTask() {
        org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
        String description = task == null ? null : task.getLocalProperty("spark.job.description");
        return description != null && description.startsWith("moescore scoring");
    }

    /** True for the first caller of this key (a marker file created atomically in the state folder). */
    private boolean firstTime(String key) throws IOException {
        Path marker = Path.of(conf.get("faulty.stateDir")).resolve(key);
        try {
            Files.createFile(marker);
            return true;
        } catch (java.nio.file.FileAlreadyExistsException e) {
            return false;
        }
    }

    /** How many attempts have opened the file so far (their {@code opened-NAME-*} markers). */
    private long openedCount(String name) throws IOException {
        try (var files = Files.list(Path.of(conf.get("faulty.stateDir")))) {
            return files.filter(p -> p.getFileName().toString().startsWith("opened-" + name + "-")).count();
        }
    }

    private static void sleep(long millis) {
        if (millis <= 0) {
            return;
        }
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
