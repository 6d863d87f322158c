package io.moescore.score;

import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * The output file of one score-local run and its summary, made visible only when the run succeeds.
 *
 * <p>{@link #open} refuses (a {@link Refused}: exit 2) before anything is written: an output, summary or lock
 * that is the input file or lies inside the model directory (real paths, so links and {@code ./x} spellings are
 * caught), an existing output without {@code overwrite}, and a second run on the same output while one runs.
 * One run per output at a time: an exclusive OS lock on {@code .NAME.lock} beside the output, which the OS
 * releases when the process dies (even by {@code kill -9}), so a stale lock never blocks. The lock file stays
 * after the run, holding the last holder's process id (deleting it would let a run waiting on the old file and
 * one creating a new file both win).
 *
 * <p>Rows go to {@code .NAME.<16 hex>.tmp} beside the output. {@link #commit} syncs it, writes the summary to
 * {@code .NAME.<16 hex>.summary.tmp}, removes an earlier summary, renames the rows over the output and then the
 * summary into place, each rename atomic: a reader sees the old pair, the old output alone, the new output
 * alone or the new pair, never an output with another run's summary. {@link #close} without a commit deletes
 * the temporary files; those of a killed run are deleted by the next run on the same output once it holds the
 * lock (no live run can own them then).
 */
final class AtomicOutput implements Closeable {
    /** The run must not write: the message names the paths. Nothing was written. */
    static final class Refused extends IOException {
        Refused(String message) {
            super(message);
        }
    }

    /** Lock files this JVM holds: a second channel on a locked file would release the lock when closed (POSIX). */
    private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();

    private final Path output;
    private final Path summary;
    private final Path heldKey;
    private final FileChannel lockChannel;
    private final boolean overwrite;
    private final Path rowsTemp;
    private final FileChannel rowsChannel;
    private Path summaryTemp;
    private boolean committed;

    private AtomicOutput(Path output, Path summary, Path heldKey, FileChannel lockChannel, boolean overwrite,
                         Path rowsTemp, FileChannel rowsChannel) {
        this.output = output;
        this.summary = summary;
        this.heldKey = heldKey;
        this.lockChannel = lockChannel;
        this.overwrite = overwrite;
        this.rowsTemp = rowsTemp;
        this.rowsChannel = rowsChannel;
    }

    /**
     * The refusals of {@link #open} that need no lock, writing nothing (not even the lock file): a run calls this
     * before it loads the model, so an unusable model too leaves no trace.
     */
    static void check(Path output, Path summary, Path input, Path model, boolean overwrite) throws IOException {
        Path out = output.toAbsolutePath();
        if (out.getFileName() == null) {
            throw new Refused("--output " + output + " is not a file name: refused, nothing written");
        }
        refuseUnsafe(output, List.of(out, summary.toAbsolutePath(), lockPath(out)), input, model);
        refuseExisting(output, out, overwrite);
    }

    /** Checks, locks and opens the output of a run reading {@code input} with the model in {@code model}. */
    static AtomicOutput open(Path output, Path summary, Path input, Path model, boolean overwrite)
            throws IOException {
        check(output, summary, input, model, overwrite);
        Path out = output.toAbsolutePath();
        Path lockPath = lockPath(out);
        Files.createDirectories(out.getParent());
        Path heldKey = out.getParent().toRealPath().resolve(lockPath.getFileName());
        if (!HELD.add(heldKey)) {
            throw busy(output, lockPath, "");
        }
        FileChannel channel = null;
        try {
            channel = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            if (tryLock(channel) == null) {
                throw busy(output, lockPath, holder(channel));
            }
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)));
            refuseExisting(output, out, overwrite);  // again under the lock: a run that just finished wrote it
            deleteStaleTemps(out);
            Path rowsTemp = newTemp(out, ".tmp");
            FileChannel rows = FileChannel.open(rowsTemp, StandardOpenOption.WRITE);
            return new AtomicOutput(out, summary.toAbsolutePath(), heldKey, channel, overwrite, rowsTemp, rows);
        } catch (IOException | RuntimeException e) {
            if (channel != null) {
                channel.close();  // releases the lock if taken
            }
            HELD.remove(heldKey);
            throw e;
        }
    }

    /** Where the rows go until {@link #commit}; closing it does nothing ({@link #close} closes the file). */
    OutputStream rows() {
        OutputStream file = Channels.newOutputStream(rowsChannel);
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                file.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                file.write(b, off, len);
            }

            @Override
            public void close() {
            }
        };
    }

    /** Makes the rows and then {@code summaryJson} visible as the output and its summary (see the class note). */
    void commit(byte[] summaryJson) throws IOException {
        rowsChannel.force(true);
        rowsChannel.close();
        summaryTemp = newTemp(output, ".summary.tmp");
        try (FileChannel s = FileChannel.open(summaryTemp, StandardOpenOption.WRITE)) {
            s.write(ByteBuffer.wrap(summaryJson));
            s.force(true);
        }
        refuseExisting(output, output, overwrite);  // another program (not a moescore run) may have made it since
        Files.deleteIfExists(summary);
        Files.move(rowsTemp, output, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Files.move(summaryTemp, summary, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
        syncDirectory(output.getParent());
    }

    /** Deletes the temporary files unless committed, then releases the lock. */
    @Override
    public void close() throws IOException {
        try {
            rowsChannel.close();
            if (!committed) {
                Files.deleteIfExists(rowsTemp);
                if (summaryTemp != null) {
                    Files.deleteIfExists(summaryTemp);
                }
            }
        } finally {
            lockChannel.close();  // releases the lock
            HELD.remove(heldKey);
        }
    }

    private static Path lockPath(Path out) {
        return out.resolveSibling("." + out.getFileName() + ".lock");
    }

    /** Refuses an output, summary or lock path that is the input or lies inside the model directory. */
    private static void refuseUnsafe(Path output, List<Path> writes, Path input, Path model) throws IOException {
        Path realModel = Files.exists(model) ? model.toRealPath() : null;
        for (Path w : writes) {
            String what = w.equals(output.toAbsolutePath()) ? "--output " + output
                    : "--output " + output + " (its " + w.getFileName() + ")";
            if (Files.exists(w) && Files.exists(input) && Files.isSameFile(w, input)) {
                throw new Refused(what + " is the input file " + input + ": refused, nothing written");
            }
            if (realModel != null) {
                Path where = landing(w);
                Path target = Files.exists(w) ? w.toRealPath() : where;
                if (where.startsWith(realModel) || target.startsWith(realModel)) {
                    throw new Refused(what + (target.equals(where) ? "" : " (a link to " + target + ")")
                            + " lies inside the model directory " + model
                            + (realModel.equals(model.toAbsolutePath().normalize()) ? "" : " (" + realModel + ")")
                            + ": refused, nothing written");
                }
            }
        }
        if (Files.isDirectory(output)) {
            throw new Refused("--output " + output + " is a directory: refused, nothing written");
        }
        if (Files.exists(output) && !Files.isRegularFile(output)) {
            throw new Refused("--output " + output + " is not a regular file (a device, pipe or socket): refused, "
                    + "nothing written");
        }
    }

    /** The real path {@code p} would have once created: its nearest existing ancestor's real path, then the rest. */
    private static Path landing(Path p) throws IOException {
        Path existing = p.getParent();
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return p.normalize();
        }
        Path rest = existing.relativize(p.getParent()).resolve(p.getFileName());
        return existing.toRealPath().resolve(rest).normalize();
    }

    private static void refuseExisting(Path output, Path out, boolean overwrite) throws Refused {
        if (!overwrite && Files.exists(out, LinkOption.NOFOLLOW_LINKS)) {
            throw new Refused("--output " + output + " exists: pass --overwrite to replace it; nothing written");
        }
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) {
            return null;
        }
    }

    private static Refused busy(Path output, Path lockPath, String holder) {
        return new Refused("another score-local run is writing --output " + output + " (it holds " + lockPath
                + holder + "): refused, nothing written");
    }

    /** ", process N" from a held lock file, or nothing. */
    private static String holder(FileChannel channel) {
        try {
            ByteBuffer b = ByteBuffer.allocate(24);
            channel.read(b, 0);
            String pid = new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII).trim();
            return pid.matches("[0-9]+") ? ", process " + pid : "";
        } catch (IOException e) {
            return "";
        }
    }

    private static Path newTemp(Path out, String suffix) throws IOException {
        String hex = HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        Path temp = out.resolveSibling("." + out.getFileName() + "." + hex + suffix);
        Files.createFile(temp);
        return temp;
    }

    /** Removes the temporary files of earlier runs on this output (called holding the lock). */
    private static void deleteStaleTemps(Path out) throws IOException {
        Pattern stale = Pattern.compile(Pattern.quote("." + out.getFileName() + ".") + "[0-9a-f]{16}(\\.summary)?\\.tmp");
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> dir = Files.newDirectoryStream(out.getParent(),
                p -> stale.matcher(p.getFileName().toString()).matches())) {
            dir.forEach(found::add);
        }
        for (Path p : found) {
            Files.deleteIfExists(p);
        }
    }

    /** Makes the renames durable where the platform allows syncing a directory (Linux does). */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // not supported here (e.g. Windows): the renames are atomic, only their durability is the OS's
        }
    }
}
