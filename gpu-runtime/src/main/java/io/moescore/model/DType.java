package io.moescore.model;

import java.nio.ByteBuffer;

/** The tensor element types a checkpoint may store, with their safetensors names. */
public enum DType {
    F32("F32", 4),
    F16("F16", 2),
    BF16("BF16", 2),
    /** 32-bit integers: only for 2:4 sparsity metadata, never for weights. */
    I32("I32", 4),
    /** Unsigned bytes: only for 128:2:8 sparsity's row choices, never for weights. */
    U8("U8", 1);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    /** The type named in a safetensors header, or null when safetensors names it but we cannot compute with it. */
    static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** Reads element {@code index} of a little-endian buffer of this type as a float. */
    public float read(ByteBuffer buffer, int index) {
        switch (this) {
            case F32:
                return buffer.getFloat(index * 4);
            case BF16:
                return Float.intBitsToFloat((buffer.getShort(index * 2) & 0xffff) << 16);
            case F16:
                return halfToFloat(buffer.getShort(index * 2));
            case I32:
                throw new IllegalStateException("I32 tensors hold metadata, not values: read them with toInts");
            case U8:
                throw new IllegalStateException("U8 tensors hold metadata, not values: read them with toBytes");
            default:
                throw new IllegalStateException("unsupported dtype " + this);
        }
    }

    /** True for the types that hold real values (F32, F16, BF16), whose elements can be NaN or infinite. */
    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16;
    }

    /**
     * The index of the first NaN or infinite element among the first {@code count} of a little-endian buffer of
     * this type, or -1 (always -1 for the integer types). Reads the bits, converting nothing, 8 bytes at a time.
     */
    public int firstNonFinite(ByteBuffer buffer, int count) {
        return switch (this) {
            case F32 -> firstAllOnes(buffer, count, 2, 0x7f800000_7f800000L, 0x00000001_00000001L,
                    0x80000000_80000000L);
            case BF16 -> firstAllOnes(buffer, count, 4, 0x7f80_7f80_7f80_7f80L, 0x0001_0001_0001_0001L,
                    0x8000_8000_8000_8000L);
            case F16 -> firstAllOnes(buffer, count, 4, 0x7c00_7c00_7c00_7c00L, 0x0001_0001_0001_0001L,
                    0x8000_8000_8000_8000L);
            default -> -1;
        };
    }

    /**
     * The first element whose exponent bits ({@code mask}, repeated in each of the {@code lanes} elements of a
     * long) are all ones: infinity or NaN. A long at a time: (x &amp; mask) ^ mask has a zero lane exactly where
     * an element is non-finite, and the classic zero-lane test finds one ((v - ones) &amp; ~v &amp; high; every
     * lane's top bit of v is 0, the sign being outside the mask); the element is then found one by one.
     */
    private int firstAllOnes(ByteBuffer buffer, int count, int lanes, long mask, long ones, long high) {
        int words = count / lanes;
        for (int w = 0; w < words; w++) {
            long v = (buffer.getLong(w * 8) & mask) ^ mask;
            if (((v - ones) & ~v & high) != 0) {
                return firstAllOnesOneByOne(buffer, w * lanes, count, mask);
            }
        }
        return firstAllOnesOneByOne(buffer, words * lanes, count, mask);
    }

    private int firstAllOnesOneByOne(ByteBuffer buffer, int from, int count, long mask) {
        long lane = bytes == 4 ? 0xffff_ffffL : 0xffffL;
        long exponent = mask & lane;
        for (int i = from; i < count; i++) {
            long bits = bytes == 4 ? buffer.getInt(i * 4) : buffer.getShort(i * 2);
            if ((bits & exponent) == exponent) {
                return i;
            }
        }
        return -1;
    }

    /** IEEE 754 binary16 to binary32, subnormals, infinities and NaN included. */
    public static float halfToFloat(short half) {
        int h = half & 0xffff;
        int sign = (h >>> 15) << 31;
        int exponent = (h >>> 10) & 0x1f;
        int mantissa = h & 0x3ff;
        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    /**
     * IEEE 754 binary32 to binary16, rounding to nearest even: magnitudes from 65520 up become infinity (the caller
     * decides whether that is an error), below 2^-24 / 2 zero; NaN stays NaN.
     */
    public static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7fffffff;
        if (abs > 0x7f800000) {
            return (short) (sign | 0x7e00);
        }
        if (abs >= 0x477ff000) {  // 65520: halfway between 65504, the largest half, and 65536
            return (short) (sign | 0x7c00);
        }
        int exponent = abs >>> 23;
        int mantissa = (abs & 0x7fffff) | 0x800000;
        // normal halves keep 10 of the 23 fraction bits; subnormal ones count units of 2^-24
        int shift = exponent >= 113 ? 13 : 126 - exponent;
        if (exponent == 0 || shift > 24) {
            return (short) sign;
        }
        int kept = exponent >= 113 ? ((exponent - 112) << 10) | ((abs & 0x7fffff) >>> 13) : mantissa >>> shift;
        int rest = mantissa & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (rest > halfway || (rest == halfway && (kept & 1) == 1)) {
            kept++;  // a carry out of the fraction moves into the exponent, as it should
        }
        return (short) (sign | kept);
    }
}
