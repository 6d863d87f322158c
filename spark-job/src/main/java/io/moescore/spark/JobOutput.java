package io.moescore.spark;

import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.DataFrameWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/** How the scoring job writes its rows, in every mode and with {@code --resume}. */
final class JobOutput {
    private JobOutput() {
    }

    /**
     * A writer of {@code rows} in {@code format}. JSON keeps null fields ({@code "error": null}, as score-local
     * writes them), where Spark's default drops them.
     */
    static DataFrameWriter<Row> writer(Dataset<Row> rows, String format) {
        DataFrameWriter<Row> writer = rows.write().format(format);
        return format.equals("json") ? writer.option("ignoreNullFields", "false") : writer;
    }

    /**
     * Saves to {@code path}. An output that Spark finds existing where the job checked it was absent (a writer that
     * is not a moescore job created it meanwhile) is refused with {@link IllegalArgumentException}, naming it.
     */
    static void save(DataFrameWriter<Row> writer, String path) {
        try {
            writer.save(path);
        } catch (Exception e) {  // AnalysisException is checked in Java's eyes but undeclared
            if (e instanceof AnalysisException a && "PATH_ALREADY_EXISTS".equals(a.getCondition())) {
                throw alreadyExists(path, e);
            }
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
    }

    /** An output found existing when written, though the job checked it was absent (something else created it). */
    static IllegalArgumentException alreadyExists(String path, Exception cause) {
        return new IllegalArgumentException("output " + path + " already exists (something else created it after "
                + "this job checked): pass --mode overwrite to replace it or --mode append to add to it", cause);
    }
}
