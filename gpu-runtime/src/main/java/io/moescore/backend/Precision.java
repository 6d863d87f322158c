package io.moescore.backend;

import java.util.Locale;

/**
 * How the GPU multiplies: fp32 accumulation always; what differs is how much of each input the tensor cores
 * see. The CPU backend computes in fp32 whatever this says.
 */
public enum Precision {
    /** One bf16 product per multiply: weights and GEMM inputs rounded to bf16 (8 significant bits). */
    BF16("bf16"),
    /**
     * One fp16 product per multiply: weights and GEMM inputs rounded to fp16 (11 significant bits), at bf16's speed.
     * fp16 checkpoints keep their weights exactly; a weight beyond fp16's range (+-65504) is refused at load, and
     * GEMM inputs beyond it saturate to +-65504 instead of becoming infinite.
     */
    FP16("fp16"),
    /**
     * Each GEMM input split into two bf16 numbers (hi + lo), and fp32 or fp16 weights too, so the products keep
     * about 16 significant bits: near-fp32 log-probs for two (bf16 checkpoints) or three times the GEMM work.
     */
    SPLIT_BF16("split-bf16");

    private final String userName;

    Precision(String userName) {
        this.userName = userName;
    }

    public String userName() {
        return userName;
    }

    /** @throws IllegalArgumentException naming the accepted values */
    public static Precision parse(String name) {
        for (Precision p : values()) {
            if (p.userName.equals(name.toLowerCase(Locale.ROOT))) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown precision '" + name + "' (use bf16, fp16 or split-bf16)");
    }
}
