package io.moescore.arrow.spark;

import org.apache.spark.sql.connector.write.WriterCommitMessage;

/** What one committed task wrote: its temporary file, and the name the job commit gives it. */
public record ArrowCommitMessage(String temporaryFile, String finalName, long rows) implements WriterCommitMessage {
}
