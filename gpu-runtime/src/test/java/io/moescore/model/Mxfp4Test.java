package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** MXFP4 decoding against values computed by hand from the OCP spec's E2M1 and E8M0 definitions. */
class Mxfp4Test {
    /** A block of 16 bytes, every byte {@code b}, under one scale byte. */
    private static float[] block(int b, int scale) {
        byte[] blocks = new byte[16];
        java.util.Arrays.fill(blocks, (byte) b);
        return Mxfp4.dequantize(blocks, new byte[] {(byte) scale}, "w");
    }

    @Test
    void everyNibbleAtScaleOneIsItsE2M1Value() {
        // nibble: sign bit 3, exponent bits 2-1, mantissa bit 0; value (-1)^s x (e == 0 ? m/2 : 2^(e-1)(1 + m/2))
        float[] expected = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f};
        for (int n = 0; n < 16; n++) {
            assertEquals(expected[n], Mxfp4.value(n, 127), 0.0, "nibble " + n);
            // low nibble first, the high one second
            float[] v = block(n | (((n + 1) & 15) << 4), 127);
            assertEquals(expected[n], v[0], 0.0);
            assertEquals(expected[(n + 1) & 15], v[1], 0.0);
            assertEquals(expected[n], v[30], 0.0);
            assertEquals(expected[(n + 1) & 15], v[31], 0.0);
        }
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(Mxfp4.value(8, 127)), "nibble 8 is -0");
    }

    @Test
    void scalesArePowersOfTwoExactToTheExtremes() {
        float[] v = block(0x7B, 130);  // low nibble 0xB = -1.5, high 0x7 = 6; x 2^3
        assertEquals(-12f, v[0], 0.0);
        assertEquals(48f, v[1], 0.0);
        // scale 0: 2^-127; 0.5 x 2^-127 = 2^-128, a float subnormal, still exact
        assertEquals(Math.scalb(1.0, -128), Mxfp4.value(1, 0), 0.0);
        assertEquals(-6 * Math.scalb(1.0, -127), Mxfp4.value(15, 0), 0.0);
        assertTrue(Mxfp4.value(1, 0) > 0);
        // scale 254: 2^127; 1.5 x 2^127 is still a float, 2 x 2^127 = 2^128 is not: such a block is refused
        assertEquals(-1.5 * Math.scalb(1.0, 127), Mxfp4.value(11, 254), 0.0);
        assertEquals(1.5 * Math.scalb(1.0, 127), block(0x33, 254)[31], 0.0);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> block(0x34, 254));
        assertTrue(e.getMessage().contains("w_blocks") && e.getMessage().contains("block 0"), e.getMessage());
        assertThrows(ModelFormatException.class, () -> block(0x07, 253));  // 6 x 2^126 = 1.5 x 2^128
        assertEquals(4 * Math.scalb(1.0, 125), block(0x66, 252)[0], 0.0);
    }

    @Test
    void blocksFollowTheirOwnScales() {
        byte[] blocks = new byte[32];
        blocks[0] = 0x21;   // block 0: 0.5, 1.0
        blocks[16] = 0x21;  // block 1: the same nibbles
        float[] v = Mxfp4.dequantize(blocks, new byte[] {(byte) 126, (byte) 128}, "w");
        assertArrayEquals(new float[] {0.25f, 0.5f, 1f, 2f}, new float[] {v[0], v[1], v[32], v[33]});
        assertEquals(64, v.length);
    }

    @Test
    void malformedInputIsRefusedByName() {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> Mxfp4.dequantize(new byte[15], new byte[1], "model.layers.0.mlp.experts.down_proj"));
        assertTrue(e.getMessage().contains("model.layers.0.mlp.experts.down_proj_blocks"), e.getMessage());
        e = assertThrows(ModelFormatException.class,
                () -> Mxfp4.dequantize(new byte[32], new byte[] {0, (byte) 255}, "w"));
        assertTrue(e.getMessage().contains("w_scales") && e.getMessage().contains("block 1"), e.getMessage());
    }
}
