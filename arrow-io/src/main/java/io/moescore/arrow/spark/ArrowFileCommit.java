package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import io.moescore.arrow.IpcFormat;

/**
 * The commit protocol of an Arrow IPC output folder, for the {@code arrow} data source ({@link ArrowBatchWrite}) and
 * for writers that make their files from vectors themselves: each task writes
 * {@code DIR/_temporary/QUERY/part-P-TASK-cNNN.arrow}; {@link #commit} moves each committed task's files to
 * {@code DIR/part-P-QUERY-cNNN.arrow} and deletes {@code _temporary/QUERY}, so readers see no file of a job that
 * failed or was aborted. {@code NNN} counts a task's files from 000, as Spark's row writer names the files it rolls
 * over to with {@code maxRecordsPerFile}; the arrow source writes one file per task (c000), the job's direct writers
 * roll over. With truncate (SaveMode.Overwrite) the {@code .arrow}/{@code .arrows} files already in {@code DIR} are
 * deleted at commit, just before the moves; other files are left alone. The moves are not atomic as a whole: a commit
 * that fails half-way leaves the files already moved. Serializable (plain values), so tasks name their files with it.
 */
public final class ArrowFileCommit implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final String TEMPORARY = "_temporary";

    private final String outputDir;
    private final String queryId;
    private final boolean truncate;

    ArrowFileCommit(String outputDir, String queryId, boolean truncate) {
        this.outputDir = outputDir;
        this.queryId = queryId;
        this.truncate = truncate;
    }

    /** A new write into {@code outputDir} (its query id a random UUID); {@code truncate}: replace its Arrow files. */
    public static ArrowFileCommit start(String outputDir, boolean truncate) {
        return new ArrowFileCommit(outputDir, UUID.randomUUID().toString(), truncate);
    }

    public String outputDir() {
        return outputDir;
    }

    public boolean truncate() {
        return truncate;
    }

    /** Where task attempt {@code taskId} of partition {@code partitionId} writes its file number {@code file}. */
    public String temporaryFile(int partitionId, long taskId, int file) {
        return jobTemporaryDir() + "/" + String.format(Locale.ROOT, "part-%05d-%d%s.arrow", partitionId, taskId, counter(file));
    }

    /** The name a committed file number {@code file} of partition {@code partitionId} gets in the output folder. */
    public String finalName(int partitionId, int file) {
        return String.format(Locale.ROOT, "part-%05d-%s%s.arrow", partitionId, queryId, counter(file));
    }

    /** A task's file number as Spark's file writers suffix it: {@code -c000}, {@code -c001}, ... */
    public static String counter(int file) {
        return String.format(Locale.ROOT, "-c%03d", file);
    }

    /** Makes the files of {@code tasks} (one message per file, of the attempts that succeeded) the output's. */
    public void commit(List<ArrowCommitMessage> tasks, Configuration conf) throws IOException {
        Path dir = new Path(outputDir);
        FileSystem fs = dir.getFileSystem(conf);
        fs.mkdirs(dir);
        if (truncate) {
            for (FileStatus old : fs.listStatus(dir)) {
                if (old.isFile() && IpcFormat.isArrowFileName(old.getPath().getName())) {
                    fs.delete(old.getPath(), false);
                }
            }
        }
        for (ArrowCommitMessage task : tasks) {
            Path from = new Path(task.temporaryFile());
            Path to = new Path(dir, task.finalName());
            if (!fs.rename(from, to)) {
                throw new IOException("arrow data source: could not move " + from + " to " + to);
            }
        }
        deleteJobTemporaryDir(fs);
    }

    /** Deletes every task's file: none was moved, since moving happens only in {@link #commit}. */
    public void abort(Configuration conf) throws IOException {
        deleteJobTemporaryDir(new Path(outputDir).getFileSystem(conf));
    }

    String jobTemporaryDir() {
        return new Path(new Path(outputDir, TEMPORARY), queryId).toString();
    }

    private void deleteJobTemporaryDir(FileSystem fs) throws IOException {
        Path job = new Path(jobTemporaryDir());
        fs.delete(job, true);
        Path parent = job.getParent();
        if (fs.exists(parent) && fs.listStatus(parent).length == 0) {
            fs.delete(parent, false);
        }
    }
}
