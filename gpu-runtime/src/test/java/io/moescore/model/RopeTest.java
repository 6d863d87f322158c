package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/**
 * Rotary inverse frequencies against values derived by hand from the formulas of transformers'
 * modeling_rope_utils ({@code _compute_default_rope_parameters}, {@code _compute_yarn_parameters}).
 */
class RopeTest {
    @Test
    void plainFrequenciesArePowersOfTheta() {
        // theta^(-2i/d) for d = 8, theta = 10^4: 10^0, 10^-1, 10^-2, 10^-3
        assertArrayEquals(new float[] {1f, 0.1f, 0.01f, 0.001f}, Rope.plain(10000, 8).inverseFrequencies(), 1e-9f);
        assertEquals(1f, Rope.plain(10000, 8).attentionFactor());
    }

    /**
     * _compute_yarn_parameters with dim 8, base 10^4, factor 4, original context 64, beta_fast 32, beta_slow 1:
     * find_correction_dim(r) = 8 ln(64 / (2 pi r)) / (2 ln 10^4): r = 32 gives -0.497 (floor -1, clamped to 0),
     * r = 1 gives 1.008 (ceil 2). The ramp (i - 0) / (2 - 0) over i = 0..3 is 0, 0.5, 1, 1, so the share kept
     * extrapolated (1 - ramp) is 1, 0.5, 0, 0, and inv_freq_i = 10^(-i) (share + (1 - share) / 4):
     * 1, 0.1 (0.5 + 0.125) = 0.0625, 0.01 / 4 = 0.0025, 0.001 / 4 = 0.00025.
     */
    @Test
    void yarnFrequenciesByHand() {
        Rope rope = new Rope(10000, 8, true, new Rope.Yarn(4, 64, 32, 1, 1.0, true));
        assertArrayEquals(new float[] {1f, 0.0625f, 0.0025f, 0.00025f}, rope.inverseFrequencies(), 1e-8f);
    }

    /** Without truncation (truncate false) the range is [0, 1.008...]: ramp i / 1.008, share 1, 1 - 1/1.008, 0, 0. */
    @Test
    void yarnFrequenciesUntruncated() {
        double high = 8 * Math.log(64 / (2 * Math.PI)) / (2 * Math.log(10000));
        double share1 = 1 - 1 / high;
        float[] expected = {1f, (float) (0.1 * share1 + 0.025 * (1 - share1)), 0.0025f, 0.00025f};
        Rope rope = new Rope(10000, 8, false, new Rope.Yarn(4, 64, 32, 1, 1.0, false));
        assertArrayEquals(expected, rope.inverseFrequencies(), 2e-7f);
    }

    /** A factor of 1 interpolates by 1: YaRN's frequencies are the plain ones. */
    @Test
    void yarnWithFactorOneIsPlain() {
        Rope yarn = new Rope(500000, 64, false, new Rope.Yarn(1, 4096, 32, 1, 1.0, true));
        assertArrayEquals(Rope.plain(500000, 64).inverseFrequencies(), yarn.inverseFrequencies(), 1e-7f,
                "the same up to the last bit of fp32 rounding");
    }

    @Test
    void mscaleIsOneAtOrBelowAFactorOfOne() {
        assertEquals(1.0, Rope.Yarn.mscale(1, 0.707));
        assertEquals(1.0, Rope.Yarn.mscale(0.5, 1));
        assertEquals(0.1 * Math.log(40) + 1, Rope.Yarn.mscale(40, 1), 1e-15);
    }

    @Test
    void badSettingsAreRefusedByName() {
        assertThrows(ModelFormatException.class, () -> new Rope(10000, 7, false, null));
        assertThrows(ModelFormatException.class, () -> new Rope(0, 8, false, null));
        assertThrows(ModelFormatException.class, () -> new Rope.Yarn(0, 64, 32, 1, 1, true));
        assertThrows(ModelFormatException.class, () -> new Rope.Yarn(4, 0, 32, 1, 1, true));
    }
}
