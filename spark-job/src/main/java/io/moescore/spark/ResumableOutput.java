package io.moescore.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The hidden folder of an output written with {@code --resume}, {@code OUTPUT/_moescore_resume/} (Spark's and
 * Parquet's readers skip names starting with an underscore):
 * <pre>
 *   manifest.json        what the output was started with ({@link ResumeManifest})
 *   splits/ID/           one committed input split: its part files and _rows.json (rows, error rows, tokens)
 *   pending/ID-ATTEMPT/  a split being committed (moved to splits/ID by one rename)
 *   write/               the staging folder of the current run's Spark write
 * </pre>
 * When every split of the input is committed, {@link #promote} moves the part files into OUTPUT, writes _SUCCESS and
 * deletes the folder.
 */
final class ResumableOutput {
    static final String FOLDER = "_moescore_resume";
    private static final String ROWS_FILE = "_rows.json";

    private final Path output;
    private final Path root;

    ResumableOutput(String output) {
        this.output = new Path(output);
        this.root = new Path(this.output, FOLDER);
    }

    Path manifest() {
        return new Path(root, "manifest.json");
    }

    Path staging() {
        return new Path(root, "write");
    }

    private Path splits() {
        return new Path(root, "splits");
    }

    /** The ids of the splits committed so far. */
    Set<String> committed(Configuration conf) throws IOException {
        FileSystem fs = splits().getFileSystem(conf);
        Set<String> ids = new TreeSet<>();
        if (fs.exists(splits())) {
            for (FileStatus s : fs.listStatus(splits())) {
                ids.add(s.getPath().getName());
            }
        }
        return ids;
    }

    /**
     * Commits one split's files: they move into a pending folder with their counts, which becomes splits/ID by one
     * rename. A split committed already (by an earlier attempt or run) keeps its files, and these are deleted.
     */
    void commitSplit(String splitId, String attempt, List<Path> files, SplitRowCounter.Counts counts,
                     Configuration conf) throws IOException {
        Path target = new Path(splits(), splitId);
        FileSystem fs = target.getFileSystem(conf);
        if (fs.exists(target)) {
            for (Path f : files) {
                fs.delete(f, false);
            }
            return;
        }
        Path pending = new Path(new Path(root, "pending"), splitId + "-" + attempt);
        fs.mkdirs(pending);
        for (Path f : files) {
            if (!fs.rename(f, new Path(pending, f.getName()))) {
                throw new IOException("cannot move " + f + " to " + pending);
            }
        }
        try (OutputStream out = fs.create(new Path(pending, ROWS_FILE), true)) {
            new ObjectMapper().writeValue(out, Map.of("rows", counts.rows(),
                    "error_rows", counts.errorRows(), "tokens", counts.tokens()));
        }
        fs.mkdirs(splits());
        // HDFS would move a folder into an existing one and the local file system copy it there: check first. Two
        // attempts of one split never get here together (Spark lets one attempt of a partition commit).
        if (fs.exists(target) || !fs.rename(pending, target)) {
            fs.delete(pending, true);
            if (!fs.exists(target)) {
                throw new IOException("cannot rename " + pending + " to " + target);
            }
        }
    }

    /** What a committed split holds. */
    SplitRowCounter.Counts counts(String splitId, Configuration conf) throws IOException {
        Path file = new Path(new Path(splits(), splitId), ROWS_FILE);
        try (InputStream in = file.getFileSystem(conf).open(file)) {
            JsonNode n = new ObjectMapper().readTree(in);
            return new SplitRowCounter.Counts(n.get("rows").asLong(), n.get("error_rows").asLong(),
                    n.get("tokens").asLong());
        }
    }

    /**
     * Moves the part files of the given splits (every split of this run's input) into OUTPUT, writes _SUCCESS and
     * deletes the hidden folder, with any split of an earlier plan that is not among them. Safe to repeat after a
     * crash part way: files moved already are in OUTPUT, the rest still in their split folder.
     */
    void promote(List<String> splitIds, Configuration conf) throws IOException {
        FileSystem fs = output.getFileSystem(conf);
        for (String id : splitIds) {
            Path dir = new Path(splits(), id);
            if (!fs.exists(dir)) {
                throw new IOException("split " + id + " was not committed to " + dir);
            }
            for (FileStatus f : fs.listStatus(dir)) {
                String name = f.getPath().getName();
                if (f.isFile() && !name.startsWith("_") && !name.startsWith(".")
                        && !fs.rename(f.getPath(), new Path(output, name))) {
                    throw new IOException("cannot move " + f.getPath() + " into " + output);
                }
            }
        }
        fs.create(new Path(output, "_SUCCESS"), true).close();
        fs.delete(root, true);
    }
}
