package io.moescore.arrow.spark;

import java.util.EnumSet;
import java.util.Set;

import org.apache.spark.sql.connector.catalog.CatalogV2Util;
import org.apache.spark.sql.connector.catalog.Column;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.WriteBuilder;
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

    @Override
    public Column[] columns() {
        return CatalogV2Util.structTypeToV2Columns(schema);
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
