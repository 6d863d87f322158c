package io.moescore.batch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The one place that decides how score numbers are written: null, exact, or the overflow spelling. */
class SequenceScoreTest {
    @Test
    void finiteLogProbsAreSummed() {
        float[] lp = {9, -1f, -2f, -0.5f, 9};
        SequenceScore s = SequenceScore.scored(4, lp, 1, true, new int[] {3});
        assertTrue(s.ok());
        assertEquals(-3.5, s.sumLogProbOrNull());
        assertEquals(3.5 / 3, s.meanNllOrNull(), 1e-15);
        assertEquals(Math.exp(3.5 / 3), s.perplexityOrNull(), 1e-12);
        assertArrayEquals(new float[] {-1f, -2f, -0.5f}, s.tokenLogProbs());
    }

    @Test
    void aNonFiniteLogProbFlagsTheRowAtItsFirstPosition() {
        for (float bad : new float[] {Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY}) {
            float[] lp = {-1f, -2f, bad, -0.5f, bad};
            SequenceScore s = SequenceScore.scored(6, lp, 0, true, new int[] {1});
            assertTrue(s.error().contains("position 3") && s.error().contains(Float.toString(bad)), s.error());
            assertNull(s.sumLogProbOrNull());
            assertNull(s.meanNllOrNull());
            assertNull(s.perplexityOrNull());
            assertNull(s.tokenLogProbs());
            assertNull(s.topTokens());
        }
    }

    @Test
    void anOverflowingPerplexityIsTheLargestFiniteDoubleAndTheMeanStaysExact() {
        float[] lp = {-800f, -700f};  // mean NLL 750 > ln(Double.MAX_VALUE) = 709.78
        SequenceScore s = SequenceScore.scored(3, lp, 0, false, null);
        assertEquals(750.0, s.meanNllOrNull());
        assertEquals(Double.MAX_VALUE, s.perplexityOrNull());
        assertEquals("1.7976931348623157E308", Double.toString(s.perplexityOrNull()));
        // just below the edge: an ordinary number
        SequenceScore edge = SequenceScore.scored(2, new float[] {-709f}, 0, false, null);
        assertEquals(Math.exp(709), edge.perplexityOrNull());
    }

    @Test
    void nullMeansNoNumber() {
        SequenceScore one = SequenceScore.scored(1, new float[0], 0, true, null);
        assertTrue(one.ok());
        assertEquals(0.0, one.sumLogProbOrNull());  // nothing to predict sums to 0
        assertNull(one.meanNllOrNull());          // no next token
        assertNull(one.perplexityOrNull());
        SequenceScore failed = SequenceScore.failed(3, "empty");
        assertNull(failed.sumLogProbOrNull());
        assertNull(failed.meanNllOrNull());
        assertNull(failed.perplexityOrNull());
    }
}
