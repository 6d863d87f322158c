package io.moescore.spark.trace;

import io.moescore.placement.RoutingRecord;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.hadoop.util.HadoopOutputFile;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.apache.parquet.schema.Type;

/** {@link TraceFormat#PARQUET}: Parquet's example Group API (what Spark reads as the same columns). */
final class ParquetTrace {
    static final MessageType SCHEMA = MessageTypeParser.parseMessageType("message routing_trace {\n"
            + "  required binary executor (STRING);\n"
            + "  required int32 device;\n"
            + "  required int32 partition;\n"
            + "  required int64 batch;\n"
            + "  required int32 layer;\n"
            + "  required group tokens (LIST) { repeated group list { required int64 element; } }\n"
            + "}");

    private ParquetTrace() {
    }

    static TraceWriter writer(Configuration conf, Path file) throws IOException {
        ParquetWriter<Group> writer = ExampleParquetWriter.builder(HadoopOutputFile.fromPath(file, conf))
                .withType(SCHEMA).withConf(conf).withCompressionCodec(CompressionCodecName.SNAPPY)
                .withRowGroupSize(8L << 20).build();
        SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
        return new TraceWriter() {
            @Override
            public void write(RoutingRecord r) throws IOException {
                Group g = groups.newGroup().append(TraceFormat.EXECUTOR, r.executor())
                        .append(TraceFormat.DEVICE, r.device()).append(TraceFormat.PARTITION, r.partition())
                        .append(TraceFormat.BATCH, r.batch()).append(TraceFormat.LAYER, r.layer());
                Group list = g.addGroup(TraceFormat.TOKENS);
                for (long t : r.tokens()) {
                    list.addGroup("list").append("element", t);
                }
                writer.write(g);
            }

            @Override
            public void close() throws IOException {
                writer.close();
            }
        };
    }

    static List<RoutingRecord> read(java.nio.file.Path file) {
        Configuration conf = TraceFormat.localConf();
        Path path = new Path(file.toAbsolutePath().toUri());
        MessageType fileSchema;
        try (ParquetFileReader footer = ParquetFileReader.open(HadoopInputFile.fromPath(path, conf))) {
            fileSchema = footer.getFileMetaData().getSchema();
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + " is not a readable Parquet file: " + e.getMessage(), e);
        }
        checkSchema(fileSchema, file);
        List<RoutingRecord> out = new ArrayList<>();
        try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), path).withConf(conf)
                .build()) {
            for (Group g = next(reader, file, out.size()); g != null; g = next(reader, file, out.size())) {
                Group list = g.getGroup(TraceFormat.TOKENS, 0);
                long[] tokens = new long[list.getFieldRepetitionCount("list")];
                for (int e = 0; e < tokens.length; e++) {
                    tokens[e] = list.getGroup("list", e).getLong("element", 0);
                }
                try {
                    out.add(new RoutingRecord(g.getString(TraceFormat.EXECUTOR, 0),
                            g.getInteger(TraceFormat.DEVICE, 0), g.getInteger(TraceFormat.PARTITION, 0),
                            g.getLong(TraceFormat.BATCH, 0), g.getInteger(TraceFormat.LAYER, 0), tokens));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(file + ", row " + out.size() + ": " + e.getMessage(), e);
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e, e);
        }
        return out;
    }

    /** The next row, or null at the end; a row that cannot be decoded is refused naming the file and row. */
    private static Group next(ParquetReader<Group> reader, java.nio.file.Path file, long row) {
        try {
            return reader.read();
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + ", row " + row + ": cannot read: " + e, e);
        }
    }

    /** Throws naming the file and the first column that is missing or of another type than {@link #SCHEMA}'s. */
    private static void checkSchema(MessageType fileSchema, java.nio.file.Path file) {
        for (Type expected : SCHEMA.getFields()) {
            if (!fileSchema.containsField(expected.getName())) {
                throw new IllegalArgumentException(file + " has no column '" + expected.getName()
                        + "': not a routing trace (columns " + names(fileSchema) + ")");
            }
            Type found = fileSchema.getType(expected.getName());
            if (!sameShape(expected, found)) {
                throw new IllegalArgumentException(file + ": column '" + expected.getName() + "' is " + found
                        + ", expected " + expected);
            }
        }
    }

    private static boolean sameShape(Type a, Type b) {
        if (a.isPrimitive() != b.isPrimitive() || a.getRepetition() != b.getRepetition()) {
            return false;
        }
        if (a.isPrimitive()) {
            return a.asPrimitiveType().getPrimitiveTypeName() == b.asPrimitiveType().getPrimitiveTypeName();
        }
        GroupType ga = a.asGroupType();
        GroupType gb = b.asGroupType();
        if (ga.getFieldCount() != gb.getFieldCount()) {
            return false;
        }
        for (int i = 0; i < ga.getFieldCount(); i++) {
            if (!ga.getType(i).getName().equals(gb.getType(i).getName()) || !sameShape(ga.getType(i), gb.getType(i))) {
                return false;
            }
        }
        return true;
    }

    private static List<String> names(MessageType schema) {
        return schema.getFields().stream().map(Type::getName).toList();
    }
}
