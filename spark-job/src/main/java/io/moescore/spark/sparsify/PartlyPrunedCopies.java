package io.moescore.spark.sparsify;

import io.moescore.sparsify.Sparsifier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;

/**
 * The models a sequential job calibrates its later layers through: the dense model with the layers pruned so far
 * replaced by their pruned weights (fp32), one copy per pass, in a work folder every executor can read: a local
 * folder (local mode, one host), or a folder of any Hadoop file system (written locally, then copied up).
 * Executors read a copy like any model ({@code ModelFiles}). Closing deletes every copy made, and the work folder
 * where this made it.
 */
final class PartlyPrunedCopies implements AutoCloseable {
    private final String workDir;
    private final Configuration hadoop;
    private final boolean local;
    private final boolean created;
    private final Set<String> written = new LinkedHashSet<>();

    PartlyPrunedCopies(String workDir, Configuration hadoop) throws IOException {
        this.workDir = workDir.replaceAll("/+$", "");
        this.hadoop = hadoop;
        String scheme = new org.apache.hadoop.fs.Path(this.workDir).toUri().getScheme();
        this.local = scheme == null || scheme.equals("file");
        org.apache.hadoop.fs.Path dir = new org.apache.hadoop.fs.Path(this.workDir);
        this.created = !dir.getFileSystem(hadoop).exists(dir);
    }

    /** Writes the copy after {@code layer}'s pass; returns its URI for the executors. */
    String write(Path model, Map<String, float[]> pruned, int layer) throws IOException {
        String name = "after-layer-" + layer;
        if (local) {
            Path dir = localDir().resolve(name);
            written.add(dir.toAbsolutePath().toString());
            Sparsifier.writeDenseCopy(model, pruned, dir);
            return dir.toAbsolutePath().toString();
        }
        Path staging = Files.createTempDirectory("moescore-sparsify-copy-");
        try {
            Sparsifier.writeDenseCopy(model, pruned, staging);
            org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(workDir + "/" + name);
            FileSystem fs = target.getFileSystem(hadoop);
            fs.delete(target, true);
            written.add(target.toString());
            fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(staging.toUri()), target);
            return target.toString();
        } finally {
            deleteLocal(staging);
        }
    }

    /** Deletes one copy (the pass after it is done). */
    void delete(String uri) throws IOException {
        written.remove(uri);
        if (local) {
            deleteLocal(Path.of(uri));
        } else {
            org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(uri);
            p.getFileSystem(hadoop).delete(p, true);
        }
    }

    private Path localDir() {
        return Path.of(workDir.startsWith("file:") ? java.net.URI.create(workDir).getPath() : workDir);
    }

    @Override
    public void close() {
        try {
            for (String uri : List.copyOf(written)) {
                delete(uri);
            }
            if (created) {
                org.apache.hadoop.fs.Path dir = new org.apache.hadoop.fs.Path(workDir);
                dir.getFileSystem(hadoop).delete(dir, true);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the partly pruned model copies in " + workDir, e);
        }
    }

    private static void deleteLocal(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) all.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }
}
