package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.moescore.batch.ScoreBatch;

/**
 * Result files our writer produced, committed in src/test/resources/ours/ so that
 * src/test/python/check_our_arrow.py can prove pyarrow reads them. With {@code -Dmoescore.regenerateFixtures=true}
 * this test rewrites them; otherwise it checks that the committed files (when present) still read back equal to
 * what the writer makes now.
 */
class OurArrowFixturesTest {
    static final String INT64_FILE = "results_int64_ids.arrow";
    static final String UTF8_STREAM = "results_utf8_ids.arrows";
    static final String[] UTF8_IDS = {"row-10", "row-11", "row-12", "row-13-é"};

    @TempDir
    Path fresh;

    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    static boolean regenerate() {
        return Boolean.parseBoolean(System.getProperty("moescore.regenerateFixtures", "false"));
    }

    /** src/test/resources/ours in the source tree (surefire sets the property; the fallback suits an IDE). */
    static Path fixtureDir() {
        return Path.of(System.getProperty("moescore.fixtureDir", "src/test/resources/ours"));
    }

    @Test
    void committedResultFilesMatchTheWriter() throws IOException {
        writeResultFiles(fresh);
        Path committed = fixtureDir();
        if (regenerate()) {
            Files.createDirectories(committed);
            writeResultFiles(committed);
        }
        assumeTrue(Files.exists(committed.resolve(INT64_FILE)), "no committed files in " + committed);
        for (String name : new String[] {INT64_FILE, UTF8_STREAM}) {
            assertEquals(contents(fresh.resolve(name)), contents(committed.resolve(name)), name);
        }
        checkValues(committed);
    }

    /** Two files covering both id types, both IPC formats, and with and without the optional columns. */
    void writeResultFiles(Path dir) throws IOException {
        ScoreBatch scores = TestData.fourScores();
        try (ArrowScoreWriter out = ArrowScoreWriter.open(dir.resolve(INT64_FILE),
                ArrowSchemas.results(IdType.INT64, true, true), allocator)) {
            out.write(new long[] {10, 11}, TestData.slice(scores, 0, 2));
            out.write(new long[] {12, 13}, TestData.slice(scores, 2, 4));
        }
        try (ArrowScoreWriter out = ArrowScoreWriter.open(dir.resolve(UTF8_STREAM),
                ArrowSchemas.results(IdType.UTF8, false, false), allocator)) {
            out.write(UTF8_IDS, scores);
        }
    }

    private void checkValues(Path dir) throws IOException {
        try (ArrowIpcReader in = ArrowIpcReader.open(dir.resolve(INT64_FILE), allocator)) {
            int i = 0;
            while (in.loadNextBatch()) {
                for (int r = 0; r < in.root().getRowCount(); r++, i++) {
                    ResultAssertions.assertFourScoresRow(in.root(), r, i, 10L + i);
                }
            }
            assertEquals(4, i);
        }
        try (ArrowIpcReader in = ArrowIpcReader.open(dir.resolve(UTF8_STREAM), allocator)) {
            in.loadNextBatch();
            for (int r = 0; r < 4; r++) {
                ResultAssertions.assertFourScoresRow(in.root(), r, r, UTF8_IDS[r]);
            }
        }
    }

    /** The schema and then every batch's rows, as plain values. */
    private List<Object> contents(Path file) throws IOException {
        List<Object> contents = new ArrayList<>();
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            Schema schema = in.schema();
            contents.add(in.format());
            contents.add(schema);
            while (in.loadNextBatch()) {
                contents.add(ResultAssertions.rows(in.root()));
            }
        }
        return contents;
    }
}
