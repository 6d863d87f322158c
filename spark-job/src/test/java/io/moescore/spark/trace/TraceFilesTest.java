package io.moescore.spark.trace;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.placement.RoutingRecord;
import io.moescore.placement.RoutingTrace;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.util.ArrowUtils;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our trace files, Parquet and Arrow IPC: what is written is read back (more rows than one Arrow batch), a file of
 * another shape is refused naming the file and the column, no Arrow memory is left allocated, and {@link TraceInputs}
 * finds the files of a job's trace folder and SmartMoE's files alike.
 */
class TraceFilesTest {
    @TempDir
    Path dir;

    @AfterEach
    void noArrowMemoryLeft() {
        assertEquals(0, ArrowUtils.rootAllocator().getAllocatedMemory(), "Arrow memory still allocated");
    }

    private static List<RoutingRecord> records(long seed, int count) {
        System.out.println("TraceFilesTest seed " + seed);
        Random random = new Random(seed);
        List<RoutingRecord> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long[] tokens = new long[6];
            for (int e = 0; e < tokens.length; e++) {
                tokens[e] = random.nextInt(1000) + (random.nextInt(50) == 0 ? (1L << 40) : 0);
            }
            out.add(new RoutingRecord("exec-" + random.nextInt(3) + " \u00e9", random.nextInt(4), random.nextInt(100),
                    i / 3, i % 3 + 1, tokens));
        }
        return out;
    }

    private Path write(TraceFormat format, List<RoutingRecord> records) throws IOException {
        Path file = dir.resolve("loads").resolve("part-0" + format.extension());
        FileSystem fs = FileSystem.getLocal(new Configuration());
        try (TraceWriter w = format.open(fs, new org.apache.hadoop.fs.Path(file.toUri()))) {
            for (RoutingRecord r : records) {
                w.write(r);
            }
        }
        return file;
    }

    @Test
    void roundTripBothFormats() throws IOException {
        List<RoutingRecord> written = records(System.nanoTime(), 2 * ARROW_BATCH + 17);
        for (TraceFormat format : TraceFormat.values()) {
            Path file = write(format, written);
            assertEquals(written, format.read(file), format.name());
            RoutingTrace trace = TraceInputs.read(dir);
            assertEquals(written, trace.records(), "the folder, through " + TraceFormat.LOADS_FOLDER + "/");
            Files.delete(file);
        }
    }

    private static final int ARROW_BATCH = ArrowTrace.BATCH_ROWS;

    @Test
    void anotherFileIsRefusedNamingFileAndColumn() throws IOException {
        Path arrow = dir.resolve("other.arrow");
        Schema schema = new Schema(List.of(Field.notNullable("layer", new ArrowType.Int(64, true))));
        try (BufferAllocator allocator = new RootAllocator();
             VectorSchemaRoot root = VectorSchemaRoot.create(schema, allocator);
             ArrowFileWriter w = new ArrowFileWriter(root, null, Files.newByteChannel(arrow,
                     java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE))) {
            w.start();
            w.end();
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TraceInputs.read(arrow));
        assertEquals(arrow + " has no column 'executor': not a routing trace (columns [layer])", e.getMessage());

        Path parquet = write(TraceFormat.PARQUET, records(1, 3));
        Path renamed = dir.resolve("t.arrow");
        Files.move(parquet, renamed);
        e = assertThrows(IllegalArgumentException.class, () -> TraceInputs.read(renamed));
        assertTrue(e.getMessage().startsWith(renamed + ": ") && e.getMessage().contains("not an Arrow IPC file"),
                e.getMessage());

        Path text = dir.resolve("t.parquet");
        Files.writeString(text, "not parquet");
        e = assertThrows(IllegalArgumentException.class, () -> TraceInputs.read(text));
        assertTrue(e.getMessage().startsWith(text + " is not a readable Parquet file"), e.getMessage());

        Path other = dir.resolve("notes.txt");
        Files.writeString(other, "x");
        e = assertThrows(IllegalArgumentException.class, () -> TraceInputs.read(other));
        assertTrue(e.getMessage().startsWith(other + " is not a routing trace"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TraceInputs.read(dir.resolve("missing")));
        assertEquals(dir.resolve("missing") + " does not exist", e.getMessage());
    }

    @Test
    void smartMoeFilesAndOursTogether() throws IOException {
        Path log = dir.resolve("table_iter7_rank2.log");
        Files.writeString(log, "0:[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]\n");
        Path ours = write(TraceFormat.PARQUET, records(2, 5));
        RoutingTrace both = TraceInputs.read(List.of(log, ours));
        assertEquals(6, both.records().size());
        assertEquals(new RoutingRecord("rank 2", 2, 0, 7, 0, new long[] {1, 2, 3, 4, 5, 6}), both.records().get(0));
        Path three = dir.resolve("table_iter8_rank2.log");
        Files.writeString(three, "0:[[1.0, 2.0, 3.0]]\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TraceInputs.read(List.of(ours, three)));
        assertTrue(e.getMessage().contains("has 3 experts, the first record 6"), e.getMessage());
    }
}
