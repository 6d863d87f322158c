package io.moescore.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.spark.internal.io.FileCommitProtocol.TaskCommitMessage;
import org.apache.spark.internal.io.FileNameSpec;
import org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol;
import scala.Option;

/**
 * Spark's file commit protocol plus one step per task: once Spark has allowed a task attempt to commit (one attempt
 * per partition, whatever the retries and speculative copies) and its files are in the staging folder, they are
 * moved into the resumable output as the committed split of that partition ({@link ResumableOutput#commitSplit}).
 * Installed for a write through {@code spark.sql.sources.commitProtocolClass}; the split ids of the write's
 * partitions and the resumable output come through the write options (which Spark puts into the task's Hadoop
 * conf), and the commit algorithm is version 2, which moves a task's files at task commit.
 */
public final class SplitCommitProtocol extends SQLHadoopMapReduceCommitProtocol {
    static final String OUTPUT_OPTION = "moescore.resume.output";
    static final String SPLIT_IDS_OPTION = "moescore.resume.splitids";

    private final String stagingPath;
    private final List<String> taskFileNames = new ArrayList<>();

    public SplitCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        super(jobId, path, dynamicPartitionOverwrite);
        this.stagingPath = path;
    }

    @Override
    public String newTaskTempFile(TaskAttemptContext task, Option<String> dir, FileNameSpec spec) {
        if (dir.isDefined()) {
            throw new IllegalStateException("a resumable output is not partitioned by columns");
        }
        String file = super.newTaskTempFile(task, dir, spec);
        taskFileNames.add(new Path(file).getName());
        return file;
    }

    @Override
    public TaskCommitMessage commitTask(TaskAttemptContext task) {
        TaskCommitMessage message = super.commitTask(task);  // throws CommitDeniedException for a losing attempt
        Configuration conf = task.getConfiguration();
        String[] splitIds = conf.get(SPLIT_IDS_OPTION).split(",");
        String splitId = splitIds[task.getTaskAttemptID().getTaskID().getId()];
        List<Path> files = new ArrayList<>();
        for (String name : taskFileNames) {
            files.add(new Path(stagingPath, name));
        }
        try {
            new ResumableOutput(conf.get(OUTPUT_OPTION)).commitSplit(splitId, task.getTaskAttemptID().toString(),
                    files, SplitRowCounter.ofCurrentTask(), conf);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot commit split " + splitId + " to " + conf.get(OUTPUT_OPTION), e);
        }
        return message;
    }
}
