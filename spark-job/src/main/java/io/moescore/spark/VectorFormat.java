package io.moescore.spark;

import io.moescore.arrow.ArrowScoreWriter;
import io.moescore.arrow.IpcFormat;
import io.moescore.arrow.JsonLinesWriter;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.RecordWriter;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.parquet.hadoop.ParquetOutputFormat;
import org.apache.spark.sql.execution.datasources.FileFormat;
import org.apache.spark.sql.execution.datasources.json.JsonFileFormat;
import org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat;

/**
 * The job's output formats as the direct writers write them: a file of the output vectors' batches
 * ({@link OutputVectors}), with no row objects. Arrow IPC writes the vectors' buffers as they are; JSON lines and
 * Parquet read each value from them once. Parquet and JSON take their settings (compression, Parquet's page and row
 * group sizes, its schema) from the conf Spark's own {@link FileFormat#prepareWrite} sets up on the driver.
 */
enum VectorFormat {
    ARROW {
        @Override
        Writer open(Path file, VectorSchemaRoot root, TaskAttemptContext task) throws IOException {
            ArrowScoreWriter out = ArrowScoreWriter.over(root, Channels.newChannel(
                    file.getFileSystem(task.getConfiguration()).create(file, false)), IpcFormat.FILE);
            return new Writer() {
                @Override
                public void write(VectorSchemaRoot batch) throws IOException {
                    out.writeBatch();
                }

                @Override
                public void close() {
                    out.close();
                }
            };
        }
    },
    JSON {
        @Override
        Writer open(Path file, VectorSchemaRoot root, TaskAttemptContext task) throws IOException {
            JsonLinesWriter out = new JsonLinesWriter(
                    org.apache.spark.sql.execution.datasources.CodecStreams.createOutputStreamWriter(task, file,
                            StandardCharsets.UTF_8));
            return new Writer() {
                @Override
                public void write(VectorSchemaRoot batch) throws IOException {
                    out.write(batch);
                }

                @Override
                public void close() throws IOException {
                    out.close();
                }
            };
        }

        @Override
        FileFormat sparkFormat() {
            return new JsonFileFormat();
        }
    },
    PARQUET {
        @Override
        Writer open(Path file, VectorSchemaRoot root, TaskAttemptContext task) throws IOException {
            RecordWriter<Void, Integer> out;
            try {
                out = new ParquetOutputFormat<>(new ParquetVectorWriteSupport(root)).getRecordWriter(task, file);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted opening " + file, e);
            }
            return new Writer() {
                @Override
                public void write(VectorSchemaRoot batch) throws IOException {
                    try {
                        for (int r = 0; r < batch.getRowCount(); r++) {
                            out.write(null, r);
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted writing " + file, e);
                    }
                }

                @Override
                public void close() throws IOException {
                    try {
                        out.close(task);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted closing " + file, e);
                    }
                }
            };
        }

        @Override
        FileFormat sparkFormat() {
            return new ParquetFileFormat();
        }
    };

    /** One task's file: each {@link #write} adds the root's current rows; {@link #close} ends the file. */
    interface Writer extends AutoCloseable {
        void write(VectorSchemaRoot batch) throws IOException;

        @Override
        void close() throws IOException;
    }

    /** Opens {@code file} for the rows of {@code root} (which each write's batch is). */
    abstract Writer open(Path file, VectorSchemaRoot root, TaskAttemptContext task) throws IOException;

    /** Spark's file format of the same output (its settings and file names), or null (Arrow: arrow-io's source). */
    FileFormat sparkFormat() {
        return null;
    }

    /** The format of {@code --output-format}. */
    static VectorFormat of(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT));
    }
}
