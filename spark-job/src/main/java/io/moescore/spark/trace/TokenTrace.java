package io.moescore.spark.trace;

import io.moescore.batch.TokenRouting;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.hadoop.util.HadoopOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/**
 * The per-token part of a routing trace ({@code --routing-trace-tokens}): Parquet files under {@code DIR/tokens/},
 * one record per (scored sequence, MoE layer): {@code partition}, {@code batch} (as in the loads files),
 * {@code row} (the sequence's ordinal in its task: the row's ordinal in the partition where each row is scored as
 * one sequence), {@code id} (the input row's value of the job's id column, int ids as int64, so that the records join
 * the scores; where the trace knows the id column: {@link Ids}), {@code layer}, and the sequence's tokens flattened: token at position p chose
 * {@code experts[offsets[p] .. offsets[p+1]-1]} (ascending ids) with {@code gates} at the same indices. One record
 * per (row, layer) rather than per token keeps the ids out of every token (a top-2 token costs two int32, two
 * float32 and one offset, before Parquet's encoding), and the columns are plain lists any reader takes.
 */
public final class TokenTrace {
    public static final String FOLDER = "tokens";
    public static final String ROW = "row";
    public static final String ID = "id";
    public static final String OFFSETS = "offsets";
    public static final String EXPERTS = "experts";
    public static final String GATES = "gates";
    public static final String EXTENSION = ".parquet";

    /** The {@code id} column of the token files: none (no id column known), int64 or string (nullable). */
    public enum Ids {
        NONE(""),
        INT64("  optional int64 id;\n"),
        STRING("  optional binary id (STRING);\n");

        private final String field;

        Ids(String field) {
            this.field = field;
        }

        /** The token files' columns, in order. */
        public List<String> columns() {
            return this == NONE ? List.of(TraceFormat.PARTITION, TraceFormat.BATCH, ROW, TraceFormat.LAYER, OFFSETS,
                    EXPERTS, GATES) : List.of(TraceFormat.PARTITION, TraceFormat.BATCH, ROW, ID, TraceFormat.LAYER,
                    OFFSETS, EXPERTS, GATES);
        }

        MessageType schema() {
            return MessageTypeParser.parseMessageType("message token_routing {\n"
                    + "  required int32 partition;\n"
                    + "  required int64 batch;\n"
                    + "  required int64 row;\n"
                    + field
                    + "  required int32 layer;\n"
                    + "  required group offsets (LIST) { repeated group list { required int32 element; } }\n"
                    + "  required group experts (LIST) { repeated group list { required int32 element; } }\n"
                    + "  required group gates (LIST) { repeated group list { required float element; } }\n"
                    + "}");
        }
    }

    private final ParquetWriter<Group> writer;
    private final Ids ids;
    private final SimpleGroupFactory groups;

    private TokenTrace(ParquetWriter<Group> writer, Ids ids) {
        this.writer = writer;
        this.ids = ids;
        this.groups = new SimpleGroupFactory(ids.schema());
    }

    /** A new file without ids (refused where it exists). */
    public static TokenTrace open(FileSystem fs, Path file) throws IOException {
        return open(fs, file, Ids.NONE);
    }

    /** A new file with an {@code id} column of this kind (refused where it exists). */
    public static TokenTrace open(FileSystem fs, Path file, Ids ids) throws IOException {
        return new TokenTrace(ExampleParquetWriter.builder(HadoopOutputFile.fromPath(fs.makeQualified(file),
                fs.getConf())).withType(ids.schema()).withConf(fs.getConf())
                .withCompressionCodec(CompressionCodecName.SNAPPY).withRowGroupSize(8L << 20).build(), ids);
    }

    /** A record without an id (a file of {@link Ids#NONE}, or a row whose id is null). */
    public void write(int partition, long batch, long row, int layer, TokenRouting.Choices c) throws IOException {
        write(partition, batch, row, null, layer, c);
    }

    /** A record; {@code id}: the row's id (a Long for int64 ids, a String for string ids), null for none. */
    public void write(int partition, long batch, long row, Object id, int layer, TokenRouting.Choices c)
            throws IOException {
        Group g = groups.newGroup().append(TraceFormat.PARTITION, partition).append(TraceFormat.BATCH, batch)
                .append(ROW, row);
        if (id != null && ids == Ids.INT64) {
            g.append(ID, (Long) id);
        } else if (id != null && ids == Ids.STRING) {
            g.append(ID, (String) id);
        }
        g.append(TraceFormat.LAYER, layer);
        Group offsets = g.addGroup(OFFSETS);
        for (int o : c.offsets()) {
            offsets.addGroup("list").append("element", o);
        }
        Group experts = g.addGroup(EXPERTS);
        for (int e : c.experts()) {
            experts.addGroup("list").append("element", e);
        }
        Group gates = g.addGroup(GATES);
        for (float w : c.gates()) {
            gates.addGroup("list").append("element", w);
        }
        writer.write(g);
    }

    public void close() throws IOException {
        writer.close();
    }

    /**
     * How many records the token files of a trace folder hold (from their footers), or -1 where it has no
     * {@code tokens/} folder.
     *
     * @throws IllegalArgumentException naming a file that is not readable Parquet
     */
    public static long records(java.nio.file.Path traceDir) {
        java.nio.file.Path dir = traceDir.resolve(FOLDER);
        if (!Files.isDirectory(dir)) {
            return -1;
        }
        Configuration conf = TraceFormat.localConf();
        long n = 0;
        try (Stream<java.nio.file.Path> list = Files.list(dir)) {
            for (java.nio.file.Path f : list.filter(f -> f.getFileName().toString().endsWith(EXTENSION)
                    && !f.getFileName().toString().startsWith(".")).sorted().toList()) {
                try (ParquetFileReader footer = ParquetFileReader.open(HadoopInputFile.fromPath(
                        new Path(f.toAbsolutePath().toUri()), conf))) {
                    n += footer.getRecordCount();
                } catch (IOException | RuntimeException e) {
                    throw new IllegalArgumentException(f + " is not a readable Parquet file: " + e.getMessage(), e);
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot list " + dir + ": " + e, e);
        }
        return n;
    }
}
