package io.moescore.model;

/**
 * MXFP4 (OCP microscaling FP4) as the released gpt-oss checkpoints store their experts: a weight NAME is stored as
 * NAME_blocks, U8 [..., G, 16], and NAME_scales, U8 [..., G]. Each row of 16 bytes holds a block of 32 FP4 E2M1
 * values, two per byte, the LOW nibble first (value 2b from byte b's bits 0-3, value 2b+1 from its bits 4-7); the
 * block shares the E8M0 scale 2^(scale - 127). Dequantized, the tensor is [..., G x 32] (the blocks of a row
 * side by side).
 * <p>
 * This is transformers' {@code convert_moe_packed_tensors} (integrations/mxfp4.py) up to its last step: that
 * function returns {@code out.view(*prefix, G * 32).transpose(1, 2)}, so gate_up_proj_blocks [E, 2F, H/32, 16]
 * becomes gate_up_proj [E, H, 2F] and down_proj_blocks [E, H, F/32, 16] becomes down_proj [E, F, H]: the blocks run
 * along the INPUT dimension of each product (hidden for gate_up, ffn for down), and the dequantized rows here are
 * output features. Points where the layout could be read otherwise, to check against transformers on the GPU
 * machine (make_gptoss_fixtures.py compares both): (1) the nibble order (low first, as FP4_VALUES[blk &amp; 0x0F] goes
 * to the even column); (2) that the gate/up interleave (gate = columns ::2 of gate_up_proj) applies to the
 * dequantized row index, i.e. rows 0, 2, 4, ... of the [2F, H] matrix are gate; (3) the scale bias 127, applied
 * by ldexp. Values are exact in fp32 (and in bf16, same exponent range): an E2M1 value times a power of two,
 * subnormal in fp32 at the smallest scales but still exact (0.5 x 2^-127 = 2^-128 &gt; 2^-149). At the largest
 * scales a value can pass fp32's range (2 x 2^127 = 2^128): transformers' ldexp then gives infinity; here the load
 * is refused, naming the tensor and block, as any non-finite weight is. Scale byte 255 is NaN in the OCP spec: also
 * refused by name.
 */
public final class Mxfp4 {
    /** FP4 E2M1 by nibble: sign bit 3, two exponent bits, one mantissa bit (transformers' FP4_VALUES). */
    static final float[] E2M1 = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    /** Values per block (one scale each). */
    public static final int BLOCK = 32;
    /** Bytes per block. */
    public static final int BLOCK_BYTES = BLOCK / 2;
    /** E8M0's bias. */
    static final int SCALE_BIAS = 127;

    private Mxfp4() {
    }

    /** The value of one FP4 nibble under one scale byte (0..254). */
    public static float value(int nibble, int scaleByte) {
        return Math.scalb(E2M1[nibble & 0x0F], (scaleByte & 0xFF) - SCALE_BIAS);
    }

    /**
     * Dequantizes packed bytes: blocks [rows x G x 16], scales [rows x G] into [rows, G x 32], row-major.
     * {@code name} (the weight's) is named in errors.
     */
    public static float[] dequantize(byte[] blocks, byte[] scales, String name) {
        if (blocks.length != (long) scales.length * BLOCK_BYTES) {
            throw new ModelFormatException("tensor " + name + "_blocks has " + blocks.length + " bytes but "
                    + name + "_scales has " + scales.length + " scales: expected " + BLOCK_BYTES + " bytes a scale");
        }
        float[] out = new float[Math.multiplyExact(scales.length, BLOCK)];
        for (int g = 0; g < scales.length; g++) {
            int s = scales[g] & 0xFF;
            if (s == 0xFF) {
                throw new ModelFormatException("tensor " + name + "_scales holds 255 (NaN in E8M0) at block " + g);
            }
            for (int b = 0; b < BLOCK_BYTES; b++) {
                int packed = blocks[g * BLOCK_BYTES + b] & 0xFF;
                float lo = value(packed & 0x0F, s);
                float hi = value(packed >>> 4, s);
                if (!Float.isFinite(lo) || !Float.isFinite(hi)) {
                    throw new ModelFormatException("tensor " + name + "_blocks: block " + g + " byte " + b
                            + " under scale " + s + " (2^" + (s - SCALE_BIAS) + ") is beyond fp32's range");
                }
                out[g * BLOCK + 2 * b] = lo;
                out[g * BLOCK + 2 * b + 1] = hi;
            }
        }
        return out;
    }

    /**
     * A checkpoint's MXFP4 weight NAME of [experts, rows, cols]: NAME_blocks must be U8 [experts, rows, cols / 32,
     * 16] and NAME_scales U8 [experts, rows, cols / 32], or this fails naming the tensor and its shape. Row r of
     * an expert is output feature r (see the class comment). Experts are dequantized one at a time
     * ({@link Weight#expert}), so no array holds more than one expert.
     */
    public static Weight read(Checkpoint ckpt, String name, ConfigDim experts, ConfigDim rows, ConfigDim cols) {
        String blocksName = name + "_blocks";
        String scalesName = name + "_scales";
        if (!ckpt.has(scalesName)) {
            throw new ModelFormatException("model " + ckpt.directory() + " has " + blocksName + " but no "
                    + scalesName + ": MXFP4 blocks need their scales");
        }
        if (cols.size() % BLOCK != 0) {
            throw new ModelFormatException("tensor " + blocksName + ": " + cols.describe() + " is not a multiple of "
                    + BLOCK + ", the MXFP4 block");
        }
        ConfigDim groups = cols.divide(BLOCK);
        TensorRef blocks = ckpt.get(blocksName, experts, rows, groups, new ConfigDim(BLOCK_BYTES, "16 bytes"));
        TensorRef scales = ckpt.get(scalesName, experts, rows, groups);
        for (TensorRef t : new TensorRef[] {blocks, scales}) {
            if (t.dtype() != DType.U8) {
                throw new ModelFormatException("tensor " + t.name() + " in " + t.file() + " is " + t.dtype()
                        + ", expected U8 (MXFP4)");
            }
        }
        return new Weight(name, blocks, scales, rows.intSize(), cols.intSize());
    }

    /** One MXFP4 weight of a checkpoint, dequantized an expert at a time. */
    public record Weight(String name, TensorRef blocks, TensorRef scales, int rows, int cols) {
        /** Expert {@code e}'s [rows, cols], row-major. */
        public float[] expert(int e) {
            long groups = (long) rows * (cols / BLOCK);
            byte[] b = new byte[Math.toIntExact(groups * BLOCK_BYTES)];
            byte[] s = new byte[Math.toIntExact(groups)];
            blocks.bytes(e * groups * BLOCK_BYTES, b.length).get(b);
            scales.bytes(e * groups, s.length).get(s);
            try {
                return dequantize(b, s, name);
            } catch (ModelFormatException ex) {
                throw new ModelFormatException(ex.getMessage() + " of expert " + e + " (blocks counted from its first)");
            }
        }
    }
}
