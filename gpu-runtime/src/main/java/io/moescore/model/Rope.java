package io.moescore.model;

/**
 * The rotary position embedding of a model: which columns of each head rotate, how pairs are formed, and the
 * inverse frequency of each pair, computed in float32 as transformers' rope init functions compute them.
 *
 * @param theta       rope_theta, the base of the inverse frequencies
 * @param rotaryDim   how many columns of each q/k head rotate (head_dim x partial_rotary_factor; MLA: qk_rope_head_dim)
 * @param interleaved pairs are adjacent columns (2i, 2i+1), as DeepSeek's rope_interleave; else (i, i + dim/2),
 *                    transformers' rotate_half
 * @param yarn        YaRN scaling of the frequencies and of cos/sin, or null for plain rotary embeddings
 */
public record Rope(double theta, int rotaryDim, boolean interleaved, Yarn yarn) {
    public Rope {
        if (!(theta > 0) || Double.isInfinite(theta)) {
            throw new ModelFormatException("config: rope_theta must be a positive number, found " + theta);
        }
        if (rotaryDim < 2 || rotaryDim % 2 != 0) {
            throw new ModelFormatException("config: the rotary dimension (head_dim x partial_rotary_factor, or "
                    + "qk_rope_head_dim) must be even and at least 2, found " + rotaryDim);
        }
    }

    /** Plain rotary embeddings over whole heads of {@code headDim}: Mixtral, Qwen2/3-MoE, OLMoE, Granite MoE. */
    public static Rope plain(double theta, int headDim) {
        return new Rope(theta, headDim, false, null);
    }

    /** Whether this is {@link #plain} over heads of {@code headDim}: every column, rotate-half, no scaling. */
    public boolean isPlain(int headDim) {
        return rotaryDim == headDim && !interleaved && yarn == null;
    }

    /** The multiplier transformers applies to cos and sin (YaRN's attention factor; 1 otherwise). */
    public float attentionFactor() {
        return yarn == null ? 1f : (float) yarn.attentionFactor();
    }

    /** The inverse frequency of each of the rotaryDim / 2 pairs. */
    public float[] inverseFrequencies() {
        if (yarn != null) {
            return yarn.inverseFrequencies(theta, rotaryDim);
        }
        float[] f = new float[rotaryDim / 2];
        for (int i = 0; i < f.length; i++) {
            // transformers' _compute_default_rope_parameters: theta^(-2i/d), the exponent in fp32
            f[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / rotaryDim));
        }
        return f;
    }

    /** "rotary 64 of 192 columns, interleaved, yarn factor 40". */
    public String describe() {
        return "rotary over " + rotaryDim + " columns (theta " + theta + (interleaved ? ", interleaved pairs" : "")
                + (yarn == null ? "" : ", yarn factor " + yarn.factor()) + ")";
    }

    /**
     * YaRN (Peng et al. 2023) as transformers' {@code _compute_yarn_parameters} computes it.
     *
     * @param factor                 scaling factor of the context
     * @param originalMaxPositions   original_max_position_embeddings: the pretrained context
     * @param betaFast               beta_fast (default 32)
     * @param betaSlow               beta_slow (default 1)
     * @param attentionFactor        the cos/sin multiplier (attention_factor, or derived from mscale / mscale_all_dim)
     * @param truncate               round the correction range outward to whole dimensions (default true)
     */
    public record Yarn(double factor, int originalMaxPositions, double betaFast, double betaSlow,
                       double attentionFactor, boolean truncate) {
        public Yarn {
            if (!(factor > 0) || Double.isInfinite(factor)) {
                throw new ModelFormatException("config: rope_scaling.factor must be a positive number, found "
                        + factor);
            }
            if (originalMaxPositions <= 0) {
                throw new ModelFormatException("config: rope_scaling.original_max_position_embeddings must be "
                        + "positive, found " + originalMaxPositions);
            }
            if (!(betaFast > 0) || !(betaSlow > 0) || Double.isInfinite(betaFast) || Double.isInfinite(betaSlow)) {
                throw new ModelFormatException("config: rope_scaling.beta_fast and beta_slow must be positive "
                        + "numbers, found " + betaFast + " and " + betaSlow);
            }
            if (!(attentionFactor > 0) || Double.isInfinite(attentionFactor)) {
                throw new ModelFormatException("config: rope_scaling.attention_factor must be a positive number, "
                        + "found " + attentionFactor);
            }
        }

        /** 0.1 mscale ln(scale) + 1 for scale > 1, else 1: transformers' get_mscale / DeepSeek's yarn_get_mscale. */
        public static double mscale(double scale, double mscale) {
            return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
        }

        /**
         * The frequencies: pair i keeps theta^(-2i/d) below the correction range (fast rotations, extrapolated),
         * takes theta^(-2i/d) / factor above it (interpolated), and a linear ramp between, all in fp32.
         */
        float[] inverseFrequencies(double theta, int dim) {
            double low = correctionDim(betaFast, dim, theta);
            double high = correctionDim(betaSlow, dim, theta);
            if (truncate) {
                low = Math.floor(low);
                high = Math.ceil(high);
            }
            low = Math.max(low, 0);
            high = Math.min(high, dim - 1);
            if (low == high) {
                high += 0.001;  // as transformers: no division by zero in the ramp
            }
            float base = (float) theta;
            float fac = (float) factor;
            float lowF = (float) low;
            float span = (float) (high - low);
            float[] f = new float[dim / 2];
            for (int i = 0; i < f.length; i++) {
                float posFreq = (float) Math.pow(base, (float) (2 * i) / dim);
                float extrapolated = 1f / posFreq;
                float interpolated = 1f / (fac * posFreq);
                float ramp = Math.min(1f, Math.max(0f, (i - lowF) / span));
                float extrapolationShare = 1f - ramp;
                f[i] = interpolated * (1f - extrapolationShare) + extrapolated * extrapolationShare;
            }
            return f;
        }

        /** The dimension whose wavelength fits {@code rotations} times into the original context. */
        private double correctionDim(double rotations, int dim, double theta) {
            return dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
        }
    }
}
