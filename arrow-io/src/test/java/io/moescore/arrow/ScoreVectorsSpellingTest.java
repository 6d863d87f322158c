package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Arrow results spell the numbers as every output does (SequenceScore): an overflowing perplexity is the largest
 * finite double with mean_nll exact, a row flagged non-finite and a one-token row get nulls, never NaN or inf.
 */
class ScoreVectorsSpellingTest {
    private BufferAllocator allocator;

    @BeforeEach
    void openAllocator() {
        allocator = new RootAllocator();
    }

    @AfterEach
    void closeAllocator() {
        allocator.close(); // throws if a test leaked Arrow memory
    }

    @Test
    void overflowNonFiniteAndOneTokenRows() {
        ScoreBatch batch = new ScoreBatch(List.of(
                SequenceScore.scored(3, new float[] {-800f, -700f}, 0, false, null),
                SequenceScore.scored(3, new float[] {-1f, Float.NaN}, 0, false, null),
                SequenceScore.scored(1, new float[0], 0, false, null)), new ExpertLoad(1, 1), 0);
        try (VectorSchemaRoot root = VectorSchemaRoot.create(ArrowSchemas.results(IdType.INT64, false, false),
                allocator)) {
            ScoreVectors.fill(root, new long[] {1, 2, 3}, batch);
            Float8Vector meanNll = (Float8Vector) root.getVector(Columns.MEAN_NLL);
            Float8Vector perplexity = (Float8Vector) root.getVector(Columns.PERPLEXITY);
            Float8Vector sum = (Float8Vector) root.getVector(Columns.SUM_LOGPROB);
            assertEquals(750.0, meanNll.get(0));
            assertEquals(Double.MAX_VALUE, perplexity.get(0));
            assertEquals(-1500.0, sum.get(0));
            assertTrue(sum.isNull(1) && meanNll.isNull(1) && perplexity.isNull(1));
            assertTrue(root.getVector(Columns.ERROR).getObject(1).toString().contains("position 2"));
            assertEquals(0.0, sum.get(2));
            assertTrue(meanNll.isNull(2) && perplexity.isNull(2));
        }
    }
}
