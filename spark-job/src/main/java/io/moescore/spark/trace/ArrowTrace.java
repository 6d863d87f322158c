package io.moescore.spark.trace;

import io.moescore.arrow.ArrowIpcReader;
import io.moescore.arrow.IpcFormat;
import io.moescore.placement.RoutingRecord;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.impl.UnionListWriter;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.sql.util.ArrowUtils;

/** {@link TraceFormat#ARROW}: an Arrow IPC file, record batches of up to {@link #BATCH_ROWS} rows. */
final class ArrowTrace {
    static final int BATCH_ROWS = 4096;
    static final Schema SCHEMA = new Schema(List.of(
            Field.notNullable(TraceFormat.EXECUTOR, ArrowType.Utf8.INSTANCE),
            Field.notNullable(TraceFormat.DEVICE, new ArrowType.Int(32, true)),
            Field.notNullable(TraceFormat.PARTITION, new ArrowType.Int(32, true)),
            Field.notNullable(TraceFormat.BATCH, new ArrowType.Int(64, true)),
            Field.notNullable(TraceFormat.LAYER, new ArrowType.Int(32, true)),
            new Field(TraceFormat.TOKENS, FieldType.notNullable(ArrowType.List.INSTANCE),
                    List.of(Field.notNullable("element", new ArrowType.Int(64, true))))));

    private ArrowTrace() {
    }

    /** A writer into {@code out}, which it owns, with its own child of Spark's Arrow allocator. */
    static TraceWriter writer(OutputStream out) {
        BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore routing trace", 0,
                Long.MAX_VALUE);
        VectorSchemaRoot root = VectorSchemaRoot.create(SCHEMA, allocator);
        ArrowWriter writer;
        try {
            writer = IpcFormat.FILE.newWriter(root, Channels.newChannel(out));
        } catch (RuntimeException e) {
            root.close();
            allocator.close();
            throw e;
        }
        return new TraceWriter() {
            private final List<RoutingRecord> pending = new ArrayList<>();
            private boolean started;

            @Override
            public void write(RoutingRecord r) throws IOException {
                pending.add(r);
                if (pending.size() == BATCH_ROWS) {
                    flush();
                }
            }

            private void flush() throws IOException {
                if (!started) {
                    writer.start();
                    started = true;
                }
                if (pending.isEmpty()) {
                    return;
                }
                root.allocateNew();
                VarCharVector executor = (VarCharVector) root.getVector(TraceFormat.EXECUTOR);
                IntVector device = (IntVector) root.getVector(TraceFormat.DEVICE);
                IntVector partition = (IntVector) root.getVector(TraceFormat.PARTITION);
                BigIntVector batch = (BigIntVector) root.getVector(TraceFormat.BATCH);
                IntVector layer = (IntVector) root.getVector(TraceFormat.LAYER);
                UnionListWriter tokens = ((ListVector) root.getVector(TraceFormat.TOKENS)).getWriter();
                for (int i = 0; i < pending.size(); i++) {
                    RoutingRecord r = pending.get(i);
                    executor.setSafe(i, r.executor().getBytes(StandardCharsets.UTF_8));
                    device.setSafe(i, r.device());
                    partition.setSafe(i, r.partition());
                    batch.setSafe(i, r.batch());
                    layer.setSafe(i, r.layer());
                    tokens.setPosition(i);
                    tokens.startList();
                    for (long t : r.tokens()) {
                        tokens.writeBigInt(t);
                    }
                    tokens.endList();
                }
                root.setRowCount(pending.size());
                writer.writeBatch();
                pending.clear();
            }

            @Override
            public void close() throws IOException {
                try (allocator; root; writer) {
                    flush();
                    writer.end();
                }
            }
        };
    }

    static List<RoutingRecord> read(java.nio.file.Path file) {
        List<RoutingRecord> out = new ArrayList<>();
        try (BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore routing trace "
                + file, 0, Long.MAX_VALUE);
             ArrowIpcReader reader = ArrowIpcReader.open(file, allocator)) {
            checkSchema(reader.schema(), file);
            VectorSchemaRoot root = reader.root();
            long row = 0;
            while (reader.loadNextBatch()) {
                VarCharVector executor = (VarCharVector) root.getVector(TraceFormat.EXECUTOR);
                IntVector device = (IntVector) root.getVector(TraceFormat.DEVICE);
                IntVector partition = (IntVector) root.getVector(TraceFormat.PARTITION);
                BigIntVector batch = (BigIntVector) root.getVector(TraceFormat.BATCH);
                IntVector layer = (IntVector) root.getVector(TraceFormat.LAYER);
                ListVector tokens = (ListVector) root.getVector(TraceFormat.TOKENS);
                BigIntVector values = (BigIntVector) tokens.getDataVector();
                for (int i = 0; i < root.getRowCount(); i++, row++) {
                    for (FieldVector v : root.getFieldVectors()) {
                        if (v.isNull(i)) {
                            throw new IllegalArgumentException(file + ", row " + row + ": column '" + v.getName()
                                    + "' is null");
                        }
                    }
                    int from = tokens.getElementStartIndex(i);
                    long[] counts = new long[tokens.getElementEndIndex(i) - from];
                    for (int e = 0; e < counts.length; e++) {
                        counts[e] = values.get(from + e);
                    }
                    try {
                        out.add(new RoutingRecord(new String(executor.get(i), StandardCharsets.UTF_8), device.get(i),
                                partition.get(i), batch.get(i), layer.get(i), counts));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException(file + ", row " + row + ": " + e.getMessage(), e);
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(e.getMessage().startsWith(file.toString()) ? e.getMessage()
                    : file + ": " + e.getMessage(), e);
        }
        return out;
    }

    private static void checkSchema(Schema schema, java.nio.file.Path file) {
        for (Field expected : SCHEMA.getFields()) {
            Field found = schema.getFields().stream().filter(f -> f.getName().equals(expected.getName())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException(file + " has no column '" + expected.getName()
                            + "': not a routing trace (columns " + schema.getFields().stream().map(Field::getName)
                            .toList() + ")"));
            boolean same = found.getType().equals(expected.getType()) && (expected.getChildren().isEmpty()
                    || found.getChildren().size() == 1 && found.getChildren().get(0).getType()
                            .equals(expected.getChildren().get(0).getType()));
            if (!same) {
                throw new IllegalArgumentException(file + ": column '" + expected.getName() + "' is " + found
                        + ", expected " + expected);
            }
        }
    }
}
