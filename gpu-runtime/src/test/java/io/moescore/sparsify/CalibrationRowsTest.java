package io.moescore.sparsify;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationRowsTest {
    @TempDir
    Path dir;

    @Test
    void readsEveryRowOrThoseOfAnIdPrefixSkippingBlankLines() throws Exception {
        Path f = dir.resolve("c.jsonl");
        Files.writeString(f, "{\"id\": \"code-1\", \"tokens\": [1, 2, 3]}\n\n{\"id\": \"prose-1\", \"tokens\": [4]}\n"
                + "{\"id\": \"code-2\", \"tokens\": []}\n");
        List<int[]> all = CalibrationRows.read(f);
        assertEquals(3, all.size());
        assertArrayEquals(new int[] {1, 2, 3}, all.get(0));
        assertArrayEquals(new int[] {4}, all.get(1));
        List<int[]> code = CalibrationRows.read(f, "code-");
        assertEquals(2, code.size());
        assertArrayEquals(new int[0], code.get(1));
    }

    @Test
    void aBadRowNamesTheFileAndLine() throws Exception {
        Path f = dir.resolve("bad.jsonl");
        for (String[] c : new String[][] {{"{\"tokens\": [1, 2.5]}", "tokens[1] = 2.5 is not a 32-bit integer"},
            {"{\"id\": 3}", "no \"tokens\" list"}, {"{\"tokens\": [1,", "not valid JSON"}}) {
            Files.writeString(f, "{\"tokens\": [7]}\n" + c[0] + "\n");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CalibrationRows.read(f));
            assertTrue(e.getMessage().startsWith(f + " line 2: "), e.getMessage());
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
