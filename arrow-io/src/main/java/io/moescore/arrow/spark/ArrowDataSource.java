package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The Spark data source {@code "arrow"}: Arrow IPC files ({@code .arrow}) and streams ({@code .arrows}) on any
 * Hadoop file system.
 *
 * <pre>{@code
 * Dataset<Row> rows = spark.read().format("arrow").load("hdfs:///in");       // a file, or a directory of them
 * results.write().format("arrow").mode(SaveMode.Overwrite).save("hdfs:///out");  // one file per task
 * }</pre>
 *
 * <p>Reading is columnar, one input partition per file, with the schema of the first file (by name) unless one
 * is given; every other file must have the same columns and types. A directory is read one level deep, skipping
 * names that start with {@code _} or {@code .}. Writing goes through Spark's commit protocol
 * ({@link ArrowBatchWrite}); modes Append and Overwrite are supported. Spark itself refuses the default mode
 * (ErrorIfExists) and Ignore for every DataSource V2 table of this kind: name a mode.
 *
 * <p>Options: {@code maxRecordsPerBatch} (writing; default Spark's
 * {@code spark.sql.execution.arrow.maxRecordsPerBatch}); any other option is passed to the Hadoop configuration
 * (e.g. {@code fs.s3a.endpoint}).
 */
public final class ArrowDataSource implements TableProvider, DataSourceRegister {
    public static final String SHORT_NAME = "arrow";

    @Override
    public String shortName() {
        return SHORT_NAME;
    }

    @Override
    public StructType inferSchema(CaseInsensitiveStringMap options) {
        ArrowOptions arrowOptions = ArrowOptions.of(options.asCaseSensitiveMap());
        Configuration conf = arrowOptions.hadoopConf();
        try {
            List<String> files = HadoopFiles.listArrowFiles(arrowOptions.paths(), conf);
            return HadoopFiles.sparkSchema(HadoopFiles.readSchema(files.get(0), conf), files.get(0));
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    @Override
    public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
        if (partitioning.length > 0) {
            throw new IllegalArgumentException("the arrow data source does not partition its output by columns");
        }
        return new ArrowTable(schema, ArrowOptions.of(properties));
    }

    /** True: a schema given by the reader, or the DataFrame being written, is used instead of inferring one. */
    @Override
    public boolean supportsExternalMetadata() {
        return true;
    }
}
