package io.moescore.spark;

import io.moescore.model.ModelDirectory;
import io.moescore.model.ModelFormatException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * Brings a model directory from any Hadoop file system (HDFS, S3, ...) to local disk, once per host and
 * version: the copy goes into a folder named by a hash of the URI and of every file's size and modification
 * time, written under a temporary name and renamed into place, so concurrent executors on one host never
 * see half a copy; only plain files are copied (links, folders and anything else are left out). Local paths are
 * used where they are: the model loader checks their files (ModelDirectory).
 */
public final class ModelFiles {
    private ModelFiles() {
    }

    /** The driver's Hadoop settings as entries ({@link ScoringSpec#hadoopConf}), for executors to read the model. */
    public static Map<String, String> hadoopEntries(org.apache.spark.SparkContext sc) {
        Map<String, String> entries = new java.util.HashMap<>();
        for (Map.Entry<String, String> e : sc.hadoopConfiguration()) {
            entries.put(e.getKey(), e.getValue());
        }
        return entries;
    }

    public static Configuration hadoopConf(Map<String, String> entries) {
        Configuration conf = new Configuration();
        entries.forEach(conf::set);
        return conf;
    }

    /** True where the URI names a path on this machine's file system. */
    static boolean isLocal(String uri) {
        String scheme = URI.create(uri.replace(" ", "%20")).getScheme();
        return scheme == null || scheme.equals("file");
    }

    /**
     * The URI executors can use: a relative local path becomes absolute against the driver's working directory
     * (executors run in folders of their own, where it would name nothing); anything else is left as it is.
     */
    public static String forExecutors(String uri) {
        if (!isLocal(uri) || uri.startsWith("file:")) {
            return uri;
        }
        return Path.of(uri).toAbsolutePath().normalize().toString();
    }

    /**
     * The bytes of one small file of a model directory (config.json, tokenizer.json) read where the driver is, or
     * null where the model has no such file. A local model goes through {@link ModelDirectory}: a name whose real
     * path leaves the folder, or anything but a regular file (a FIFO would block the read forever), is refused by
     * name before anything is opened. On any other file system only a plain file is read.
     */
    public static byte[] readModelFile(String modelUri, String name, Configuration conf) {
        try {
            if (isLocal(modelUri)) {
                Path file = ModelDirectory.find(localize(modelUri, conf), name);
                return file == null ? null : Files.readAllBytes(file);
            }
            org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(modelUri.replaceAll("/+$", "") + "/" + name);
            FileSystem fs = path.getFileSystem(conf);
            if (!fs.exists(path)) {
                return null;
            }
            FileStatus status = fs.getFileStatus(path);
            if (!status.isFile() || status.isSymlink()) {
                throw new IllegalArgumentException(path + " is not a plain file: only plain files of a model are read");
            }
            try (InputStream in = fs.open(path)) {
                return in.readAllBytes();
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + name + " of model " + modelUri + ": " + e.getMessage(), e);
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** The model directory on local disk. */
    public static Path localize(String uri, Configuration conf) {
        if (isLocal(uri)) {
            return Path.of(uri.startsWith("file:") ? URI.create(uri).getPath() : uri);
        }
        try {
            org.apache.hadoop.fs.Path dir = new org.apache.hadoop.fs.Path(uri);
            FileSystem fs = dir.getFileSystem(conf);
            FileStatus[] files = fs.listStatus(dir);
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            digest.update(uri.getBytes(StandardCharsets.UTF_8));
            for (FileStatus f : files) {
                digest.update((f.getPath().getName() + ":" + f.getLen() + ":" + f.getModificationTime() + ";")
                        .getBytes(StandardCharsets.UTF_8));
            }
            String key = HexFormat.of().formatHex(digest.digest()).substring(0, 16);
            Path cacheRoot = Path.of(System.getProperty("java.io.tmpdir"), "moescore-models");
            Path target = cacheRoot.resolve(key);
            if (Files.isDirectory(target)) {
                return target;
            }
            Files.createDirectories(cacheRoot);
            Path partial = Files.createTempDirectory(cacheRoot, key + ".partial-");
            try {
                for (FileStatus f : files) {
                    if (f.isFile() && !f.isSymlink()) {  // plain files only: no links, folders or devices
                        try (InputStream in = fs.open(f.getPath())) {
                            Files.copy(in, partial.resolve(f.getPath().getName()));
                        }
                    }
                }
                Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
                deleteTree(partial); // another executor on this host finished first
            } catch (IOException e) {
                if (!Files.isDirectory(target)) {
                    deleteTree(partial);
                    throw e;
                }
                deleteTree(partial);
            }
            return target;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot copy model " + uri + " to local disk: " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a leftover partial folder in tmp is harmless
        }
    }
}
