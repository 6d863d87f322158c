package io.moescore.backend.cuda;

import io.moescore.backend.Precision;

/**
 * The 16-bit type the tensor cores multiply (common.cuh's T): bf16 at bf16 and split-bf16 precision, fp16 at fp16.
 * Every kernel that reads or writes it exists once per type, named after it (linear_bf16, linear_f16, ...).
 */
enum HalfType {
    BF16("bf16", "embed_bf16", "to_bf16_parts", "to_half_bf16", "rmsnorm_rows_bf16", "rope_half_bf16",
            "rmsnorm_rope_bf16"),
    F16("f16", "embed_f16", "to_f16_parts", "to_half_f16", "rmsnorm_rows_f16", "rope_half_f16", "rmsnorm_rope_f16");

    /** How kernel names spell the type. */
    final String spelling;
    /** The embedding lookup over rows of this type (elementwise.cu). */
    final String embedKernel;
    /** fp32 activations to GEMM input rows of this type (gemm.cu). */
    final String toPartsKernel;
    /** fp32 values to this type, 4 per thread (attention_fa.cu): the copies of q, k, v its kernels read. */
    final String toHalfKernel;
    /** Whole-row RMSNorm, optionally after the residual add, writing fp32 and/or this type (elementwise.cu). */
    final String normKernel;
    /** RoPE in place, also writing the rotated values in this type (elementwise.cu): attention's q and k. */
    final String ropeKernel;
    /** RMSNorm then RoPE in one pass, in place, also writing this type (elementwise.cu): attention's q and k. */
    final String normRopeKernel;

    HalfType(String spelling, String embedKernel, String toPartsKernel, String toHalfKernel, String normKernel,
             String ropeKernel, String normRopeKernel) {
        this.spelling = spelling;
        this.embedKernel = embedKernel;
        this.toPartsKernel = toPartsKernel;
        this.toHalfKernel = toHalfKernel;
        this.normKernel = normKernel;
        this.ropeKernel = ropeKernel;
        this.normRopeKernel = normRopeKernel;
    }

    static HalfType of(Precision precision) {
        return precision == Precision.FP16 ? F16 : BF16;
    }
}
