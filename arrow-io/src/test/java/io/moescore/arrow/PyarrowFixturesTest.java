package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.moescore.batch.TokenBatch;

/** Files written by pyarrow 25 (src/test/python/make_arrow_fixtures.py) read exactly in ours. */
class PyarrowFixturesTest {
    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    static Path fixture(String name) {
        try {
            return Path.of(PyarrowFixturesTest.class.getResource("/pyarrow/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** expected_rows.json: [{"id": 10, "tokens": [...]}, ...]. */
    static List<ExpectedRow> expectedRows() throws IOException {
        try (InputStream in = PyarrowFixturesTest.class.getResourceAsStream("/pyarrow/expected_rows.json")) {
            List<ExpectedRow> rows = new ArrayList<>();
            for (JsonNode row : new ObjectMapper().readTree(in)) {
                int[] tokens = new int[row.get("tokens").size()];
                for (int i = 0; i < tokens.length; i++) {
                    tokens[i] = row.get("tokens").get(i).intValue();
                }
                rows.add(new ExpectedRow(row.get("id").longValue(), tokens));
            }
            return rows;
        }
    }

    record ExpectedRow(long id, int[] tokens) {
        List<Integer> tokenList() {
            return Arrays.stream(tokens).boxed().toList();
        }
    }

    @Test
    void ipcFileWithInt64IdsInTwoBatches() throws IOException {
        List<ExpectedRow> expected = expectedRows();
        List<Long> ids = new ArrayList<>();
        List<List<Integer>> tokens = new ArrayList<>();
        int batches = 0;
        try (ArrowTokenReader in = ArrowTokenReader.open(fixture("tokens_int64_ids.arrow"), allocator)) {
            assertEquals(IpcFormat.FILE, in.format());
            assertEquals(IdType.INT64, in.idType());
            assertNull(in.text());
            while (in.loadNextBatch()) {
                batches++;
                collect(in, tokens);
                for (int r = 0; r < in.rowCount(); r++) {
                    ids.add((Long) in.ids().getObject(r));
                }
            }
        }
        assertEquals(2, batches);
        assertEquals(expected.stream().map(ExpectedRow::id).toList(), ids);
        assertEquals(expected.stream().map(ExpectedRow::tokenList).toList(), tokens);
    }

    @Test
    void ipcStreamWithUtf8IdsAndText() throws IOException {
        List<ExpectedRow> expected = expectedRows();
        List<String> ids = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        List<List<Integer>> tokens = new ArrayList<>();
        try (ArrowTokenReader in = ArrowTokenReader.open(fixture("tokens_utf8_ids.arrows"), allocator)) {
            assertEquals(IpcFormat.STREAM, in.format());
            assertEquals(IdType.UTF8, in.idType());
            while (in.loadNextBatch()) {
                collect(in, tokens);
                for (int r = 0; r < in.rowCount(); r++) {
                    ids.add(in.ids().getObject(r).toString());
                    texts.add(in.text().isNull(r) ? null : in.text().getObject(r).toString());
                }
            }
        }
        assertEquals(expected.stream().map(r -> "row-" + r.id()).toList(), ids);
        assertEquals(Arrays.asList("def f(x):", null, "import numpy as np", "x = 1"), texts);
        assertEquals(expected.stream().map(ExpectedRow::tokenList).toList(), tokens);
    }

    private static void collect(ArrowTokenReader in, List<List<Integer>> out) {
        TokenBatch batch = in.tokenBatch();
        for (int s = 0; s < batch.numSequences(); s++) {
            List<Integer> seq = new ArrayList<>();
            for (int p = 0; p < batch.length(s); p++) {
                seq.add(batch.token(s, p));
            }
            out.add(seq);
        }
    }
}
