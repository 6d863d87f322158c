package io.moescore.sparse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Pruning keeps 2 of every 4; packing and decompressing give back the pruned matrix exactly. */
class Sparse24Test {
    @Test
    void pruneKeepsTheTwoLargestOfEveryFourAndPackRoundTrips() {
        Random random = new Random(3);
        int rows = 16;
        int cols = 96;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        float[] pruned = Sparse24.pruneMagnitude(w, rows, cols);
        for (int g = 0; g < w.length; g += 4) {
            int zeros = 0;
            for (int j = 0; j < 4; j++) {
                zeros += pruned[g + j] == 0f ? 1 : 0;
                if (pruned[g + j] != 0f) {
                    int larger = 0;
                    for (int o = 0; o < 4; o++) {
                        larger += Math.abs(w[g + o]) > Math.abs(w[g + j]) ? 1 : 0;
                    }
                    assertEquals(true, larger <= 1, "kept value is among the two largest");
                }
            }
            assertEquals(2, zeros);
        }
        Sparse24.Packed packed = Sparse24.pack(pruned, rows, cols);
        assertEquals(rows * cols / 2, packed.values().length);
        assertEquals(rows * cols / 32, packed.meta().length);
        assertArrayEquals(pruned, Sparse24.decompress(packed));
    }

    @Test
    void metadataNibblesHoldTheKeptPositions() {
        float[] w = new float[32];
        w[1] = 5f;   // group 0 keeps 1 and 3
        w[3] = -2f;
        w[4] = 1f;   // group 1 keeps 0 and 2
        w[6] = 1f;
        Sparse24.Packed p = Sparse24.pack(w, 1, 32);
        assertEquals(1 | 3 << 2, p.meta()[0] & 0xf);
        assertEquals(0 | 2 << 2, (p.meta()[0] >>> 4) & 0xf);
        assertEquals(5f, p.values()[0]);
        assertEquals(-2f, p.values()[1]);
    }

    @Test
    void denseInputIsRefused() {
        float[] w = new float[32];
        java.util.Arrays.fill(w, 1f);
        assertThrows(IllegalArgumentException.class, () -> Sparse24.pack(w, 1, 32));
    }
}
