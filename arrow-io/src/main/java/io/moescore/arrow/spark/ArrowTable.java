package io.moescore.arrow.spark;

import java.util.EnumSet;
import java.util.Set;

import org.apache.spark.sql.connector.catalog.Column;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** Arrow files at one or more paths, read by {@link ArrowScan} and written by {@link ArrowBatchWrite}. */
final class ArrowTable implements SupportsRead, SupportsWrite {
    private final StructType schema;
    private final ArrowOptions options;

    ArrowTable(StructType schema, ArrowOptions options) {
        this.schema = schema;
        this.options = options;
    }

    @Override
    public String name() {
        return "arrow " + String.join(", ", options.paths());
    }

    /**
     * The schema as connector columns, through the public {@code Column.create} (Spark's internal
     * {@code CatalogV2Util.structTypeToV2Columns} changed its signature in 4.2).
     */
    @Override
    public Column[] columns() {
        StructField[] fields = schema.fields();
        Column[] columns = new Column[fields.length];
        for (int i = 0; i < fields.length; i++) {
            StructField f = fields[i];
            String metadata = f.metadata().equals(Metadata.empty()) ? null : f.metadata().json();
            columns[i] = Column.create(f.name(), f.dataType(), f.nullable(), null, metadata);
        }
        return columns;
    }

    @Override
    public Set<TableCapability> capabilities() {
        return EnumSet.of(TableCapability.BATCH_READ, TableCapability.BATCH_WRITE, TableCapability.TRUNCATE);
    }

    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap ignored) {
        return new ArrowScan(schema, options);
    }

    @Override
    public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
        return new ArrowWriteBuilder(options, info);
    }
}
