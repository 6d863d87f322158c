package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;

/** Reads result rows back as plain Java values and checks them against {@link TestData#fourScores()}. */
final class ResultAssertions {
    private ResultAssertions() {
    }

    /** Every column of every row of {@code root}, as getObject gives them (Text ids as strings). */
    static List<List<Object>> rows(VectorSchemaRoot root) {
        List<List<Object>> rows = new ArrayList<>();
        for (int r = 0; r < root.getRowCount(); r++) {
            List<Object> row = new ArrayList<>();
            for (FieldVector v : root.getFieldVectors()) {
                Object value = v.getObject(r);
                row.add(value instanceof org.apache.arrow.vector.util.Text ? value.toString() : value);
            }
            rows.add(row);
        }
        return rows;
    }

    /** Row {@code i} of fourScores(), in a result root with or without the optional columns. */
    static void assertFourScoresRow(VectorSchemaRoot root, int r, int i, Object expectedId) {
        boolean optional = root.getVector(Columns.TOKEN_LOGPROBS) != null;
        Object id = root.getVector(Columns.ID).getObject(r);
        assertEquals(expectedId, id instanceof org.apache.arrow.vector.util.Text ? id.toString() : id);
        Object numTokens = root.getVector(Columns.NUM_TOKENS).getObject(r);
        Object sum = root.getVector(Columns.SUM_LOGPROB).getObject(r);
        Object meanNll = root.getVector(Columns.MEAN_NLL).getObject(r);
        Object perplexity = root.getVector(Columns.PERPLEXITY).getObject(r);
        Object error = root.getVector(Columns.ERROR).getObject(r);
        Object logProbs = optional ? root.getVector(Columns.TOKEN_LOGPROBS).getObject(r) : null;
        Object top = optional ? root.getVector(Columns.TOP_TOKENS).getObject(r) : null;
        switch (i) {
            case 0 -> {
                assertEquals(3, numTokens);
                assertEquals(-1.5, sum);
                assertEquals(0.75, meanNll);
                assertEquals(Math.exp(0.75), perplexity);
                assertNull(error);
                if (optional) {
                    assertEquals(List.of(-0.5f, -1.0f), logProbs);
                    assertEquals(List.of(7, 3), top);
                }
            }
            case 1 -> {
                assertEquals(1, numTokens);
                assertEquals(0.0, sum);
                assertNull(meanNll, "one token: no next token, no mean NLL");
                assertNull(perplexity);
                assertNull(error);
                if (optional) {
                    assertEquals(List.of(), logProbs);
                    assertEquals(List.of(5, 9), top);
                }
            }
            case 2 -> {
                assertEquals(0, numTokens);
                assertNull(sum);
                assertNull(meanNll);
                assertNull(perplexity);
                assertEquals("empty sequence", error.toString());
                assertNull(logProbs);
                assertNull(top);
            }
            case 3 -> {
                assertEquals(5, numTokens);
                assertEquals(-2.0, sum);
                assertEquals(0.5, meanNll);
                assertEquals(Math.exp(0.5), perplexity);
                assertNull(error);
                if (optional) {
                    assertEquals(List.of(-0.25f, -0.75f, -0.5f, -0.5f), logProbs);
                    assertEquals(List.of(4095, 0), top);
                }
            }
            default -> assertTrue(false, "no score " + i);
        }
    }
}
