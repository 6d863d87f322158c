package io.moescore.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The one way a file of a model directory is found before it is opened (config.json, tokenizer.json, the
 * safetensors index and shards, sparsity.json). A name is accepted only where
 * <ul>
 *   <li>its real path (every symbolic link resolved, {@code ..} removed) lies inside the directory's real path, so
 *       neither a name like {@code ../x}, an absolute name, a linked folder ({@code sub -> /etc}) nor a linked
 *       file can reach a file elsewhere. One exception: a Hugging Face hub cache snapshot
 *       ({@code .../models--ORG--NAME/snapshots/REVISION}) links its files into the repository's own
 *       {@code blobs} folder beside it, which is accepted;</li>
 *   <li>it is a regular file: a directory, FIFO, device or socket is refused by its attributes, before anything
 *       opens it (opening a FIFO would wait for a writer forever).</li>
 * </ul>
 * Messages name paths and file types, never a byte of a file's content.
 */
public final class ModelDirectory {
    /** The file-type bits of {@code unix:mode} (stat's st_mode) and what each type is called in messages. */
    private static final int S_IFMT = 0170000;

    private ModelDirectory() {
    }

    /**
     * The file {@code name} of the model directory (relative, as a config or index names it), checked as the
     * class describes, or null where the directory holds nothing of that name. The path returned is the
     * directory's path joined with the name, so messages show the name the user knows.
     */
    public static Path find(Path directory, String name) {
        Path file = directory.resolve(name).normalize();
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            return null;
        }
        Path real;
        try {
            real = file.toRealPath();
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + " is a symbolic link to a file that does not exist");
        } catch (IOException e) {
            throw new ModelFormatException("cannot resolve " + file + ": " + e, e);
        }
        if (!inside(real, directory)) {
            throw new ModelFormatException(name + " in model directory " + directory + " resolves to " + real
                    + ", outside the model directory: refused");
        }
        requireRegularFile(file);
        return file;
    }

    /** As {@link #find}, but a missing file is an error naming it and the directory. */
    public static Path require(Path directory, String name) {
        Path file = find(directory, name);
        if (file == null) {
            throw new ModelFormatException("model " + directory + " has no " + name);
        }
        return file;
    }

    /**
     * Throws naming the file and its type unless it is a regular file (links followed). Reads attributes only,
     * so a FIFO is refused at once instead of blocking the open that would follow.
     */
    public static void requireRegularFile(Path file) {
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + " does not exist");
        } catch (IOException e) {
            throw new ModelFormatException("cannot read the attributes of " + file + ": " + e, e);
        }
        if (!attributes.isRegularFile()) {
            throw new ModelFormatException(file + " is " + typeOf(file, attributes)
                    + ", not a regular file: only regular files of a model are read");
        }
    }

    /** True where {@code real} lies in the directory's real path (or its hub cache's blobs folder). */
    private static boolean inside(Path real, Path directory) {
        Path root;
        try {
            root = directory.toRealPath();
        } catch (IOException e) {
            throw new ModelFormatException("model directory " + directory + " cannot be resolved: " + e, e);
        }
        if (real.startsWith(root) && !real.equals(root)) {
            return true;
        }
        Path snapshots = root.getParent();
        Path repository = snapshots == null ? null : snapshots.getParent();
        return repository != null && snapshots.getFileName().toString().equals("snapshots")
                && repository.getFileName().toString().startsWith("models--")
                && real.startsWith(repository.resolve("blobs"));
    }

    private static String typeOf(Path file, BasicFileAttributes attributes) {
        if (attributes.isDirectory()) {
            return "a directory";
        }
        try {
            int type = ((Integer) Files.getAttribute(file, "unix:mode")) & S_IFMT;
            switch (type) {
                case 0010000: return "a FIFO (named pipe)";
                case 0020000: return "a character device";
                case 0060000: return "a block device";
                case 0140000: return "a socket";
                default: break;
            }
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
            // no unix view here: the generic description below
        }
        return "a FIFO, device or socket";
    }
}
