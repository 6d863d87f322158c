package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The host reading of the expert intermediate (no GPU needed): buffers laid out as the kernels' epilogues store them,
 * written here from their addressing in gemm.cu (store_parts) and gemm_sm90.cu (epi_swiglu_tiled), read back per
 * expert, with experts of no entries, of several 128-entry work items, and an ffn width that pads the last stage.
 */
class ExpertIntermediateTest {
    private static final int[] COUNTS = {0, 130, 5, 300, 0, 1};
    private static final int FFN = 96;

    @Test
    void plainRowsAtEveryPrecision() {
        float[][] values = values();
        for (int aParts = 1; aParts <= 3; aParts++) {
            short[] inter = new short[entries() * FFN * aParts];
            int entry = 0;
            for (float[] expert : values) {
                for (int i = 0; i < expert.length / FFN; i++, entry++) {
                    for (int f = 0; f < FFN; f++) {
                        storeParts(inter, entry * FFN * aParts, f, expert[i * FFN + f], aParts);
                    }
                }
            }
            float[][] read = ExpertIntermediate.swiglu(inter, COUNTS, FFN, aParts, false, false);
            for (int e = 0; e < COUNTS.length; e++) {
                for (int i = 0; i < values[e].length; i++) {
                    float hi = round(values[e][i]);
                    float expected = aParts == 1 ? hi : hi + round(values[e][i] - hi);
                    assertEquals(expected, read[e][i], 0f, "aParts " + aParts + ", expert " + e + " value " + i);
                }
            }
        }
    }

    /** bf16 and fp16 values (fp16 precision stores its intermediate in fp16). */
    @Test
    void tiledWorkItemsWithSwizzledRows() {
        tiledWorkItems(false);
        tiledWorkItems(true);
    }

    private void tiledWorkItems(boolean fp16) {
        float[][] values = values();
        int stages = (FFN + 63) / 64;
        int items = 0;
        for (int c : COUNTS) {
            items += (c + 127) / 128;
        }
        byte[] bytes = new byte[items * stages * 128 * 128];
        int item = 0;
        for (int e = 0; e < COUNTS.length; e++) {
            for (int m0 = 0; m0 < COUNTS[e]; m0 += 128, item++) {
                for (int r = 0; r < 128 && m0 + r < COUNTS[e]; r++) {
                    for (int f = 0; f < FFN; f++) {
                        // epi_swiglu_tiled: item + (f / 64) * S90_A_BYTES + swizzled(r, (f & 63) >> 3) + (f & 7) * 2
                        int at = item * stages * 16384 + (f / 64) * 16384 + r * 128 + (((f & 63) >> 3 ^ (r & 7)) << 4)
                                + (f & 7) * 2;
                        float v = values[e][(m0 + r) * FFN + f];
                        short b = fp16 ? DType.floatToHalf(v) : SafeTensorsWriter.toBf16(v);
                        bytes[at] = (byte) b;
                        bytes[at + 1] = (byte) (b >> 8);
                    }
                }
            }
        }
        short[] inter = new short[bytes.length / 2];
        for (int i = 0; i < inter.length; i++) {
            inter[i] = (short) ((bytes[2 * i] & 0xff) | (bytes[2 * i + 1] << 8));
        }
        float[][] read = ExpertIntermediate.swiglu(inter, COUNTS, FFN, 1, true, fp16);
        for (int e = 0; e < COUNTS.length; e++) {
            assertEquals(values[e].length, read[e].length);
            for (int i = 0; i < values[e].length; i++) {
                float expected = fp16 ? DType.halfToFloat(DType.floatToHalf(values[e][i])) : round(values[e][i]);
                assertEquals(expected, read[e][i], 0f, (fp16 ? "fp16" : "bf16") + " expert " + e + " value " + i);
            }
        }
    }

    /** store_parts: hi, then lo (aParts 2) or hi, hi, lo (aParts 3), each K values apart. */
    private static void storeParts(short[] row, int at, int k, float v, int aParts) {
        short hi = SafeTensorsWriter.toBf16(v);
        row[at + k] = hi;
        if (aParts == 1) {
            return;
        }
        short lo = SafeTensorsWriter.toBf16(v - ExpertIntermediate.bf16(hi));
        if (aParts == 2) {
            row[at + FFN + k] = lo;
        } else {
            row[at + FFN + k] = hi;
            row[at + 2 * FFN + k] = lo;
        }
    }

    private static float round(float v) {
        return ExpertIntermediate.bf16(SafeTensorsWriter.toBf16(v));
    }

    private static int entries() {
        int n = 0;
        for (int c : COUNTS) {
            n += c;
        }
        return n;
    }

    private static float[][] values() {
        Random random = new Random(10);
        float[][] v = new float[COUNTS.length][];
        for (int e = 0; e < COUNTS.length; e++) {
            v[e] = new float[COUNTS[e] * FFN];
            for (int i = 0; i < v[e].length; i++) {
                v[e][i] = (float) random.nextGaussian();
            }
        }
        return v;
    }
}
