package io.moescore.model;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * One tensor of a checkpoint: where it lives and how to read (part of) it. A reference made with
 * {@link #checkingFinite()} refuses NaN and infinite values as it reads them ({@link NonFiniteWeightException}),
 * so the check costs no pass of its own: it runs on the bytes or floats the reader was reading anyway.
 */
public final class TensorRef {
    /** Elements scanned per mapping when looking for the first non-finite one (a mapping holds at most 2 GiB). */
    private static final int SCAN_CHUNK = 1 << 24;

    private final SafeTensorsFile file;
    private final SafeTensorsFile.Entry entry;
    private final boolean checkFinite;

    TensorRef(SafeTensorsFile file, SafeTensorsFile.Entry entry) {
        this(file, entry, false);
    }

    private TensorRef(SafeTensorsFile file, SafeTensorsFile.Entry entry, boolean checkFinite) {
        this.file = file;
        this.entry = entry;
        this.checkFinite = checkFinite;
    }

    /** This tensor, read so that every value read must be finite (the weight loader's default). */
    public TensorRef checkingFinite() {
        return checkFinite ? this : new TensorRef(file, entry, true);
    }

    public String name() {
        return entry.name();
    }

    public DType dtype() {
        return entry.dtype();
    }

    public long[] shape() {
        return entry.shape().clone();
    }

    public long elementCount() {
        return entry.elementCount();
    }

    public Path file() {
        return file.path();
    }

    /** Raw little-endian bytes of {@code count} elements starting at element {@code first}. */
    public ByteBuffer bytes(long first, long count) {
        ByteBuffer bytes = file.map(entry, first * dtype().bytes(), count * dtype().bytes());
        if (checkFinite && dtype().firstNonFinite(bytes, (int) count) >= 0) {
            throw nonFinite();
        }
        return bytes;
    }

    /** The flat index of the tensor's first NaN or infinite element, or -1 (integer tensors: always -1). */
    public long firstNonFinite() {
        if (!dtype().isFloat()) {
            return -1;
        }
        for (long first = 0; first < elementCount(); first += SCAN_CHUNK) {
            int n = (int) Math.min(SCAN_CHUNK, elementCount() - first);
            int bad = dtype().firstNonFinite(file.map(entry, first * dtype().bytes(), (long) n * dtype().bytes()), n);
            if (bad >= 0) {
                return first + bad;
            }
        }
        return -1;
    }

    /** The error for a non-finite value found while reading: names the tensor's first one, wherever it is. */
    private NonFiniteWeightException nonFinite() {
        long at = firstNonFinite();
        long[] shape = entry.shape();
        long[] index = new long[shape.length];
        long rest = at;
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = shape[d] == 0 ? 0 : rest % shape[d];
            rest = shape[d] == 0 ? 0 : rest / shape[d];
        }
        float value = dtype().read(file.map(entry, at * dtype().bytes(), dtype().bytes()), 0);
        return new NonFiniteWeightException(name(), file(), at, index, value);
    }

    /** {@code count} elements starting at element {@code first}, converted to fp32. */
    public float[] toFloats(long first, int count) {
        if (first < 0 || count < 0 || first + count > elementCount()) {
            throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") outside tensor "
                    + name() + " of " + elementCount());
        }
        ByteBuffer bytes = file.map(entry, first * dtype().bytes(), (long) count * dtype().bytes());
        float[] out = new float[count];
        DType t = dtype();
        boolean finite = true;
        for (int i = 0; i < count; i++) {
            float v = t.read(bytes, i);
            out[i] = v;
            finite &= Float.isFinite(v);
        }
        if (checkFinite && !finite) {
            throw nonFinite();
        }
        return out;
    }

    /** The whole tensor as int32 (sparsity metadata). */
    public int[] toInts() {
        if (dtype() != DType.I32) {
            throw new ModelFormatException("tensor " + name() + " in " + file() + " is " + dtype() + ", expected I32");
        }
        ByteBuffer bytes = bytes(0, elementCount());
        int[] out = new int[(int) elementCount()];
        bytes.asIntBuffer().get(out);
        return out;
    }

    /** The whole tensor as unsigned bytes (128:2:8 row choices). */
    public byte[] toBytes() {
        if (dtype() != DType.U8) {
            throw new ModelFormatException("tensor " + name() + " in " + file() + " is " + dtype() + ", expected U8");
        }
        ByteBuffer bytes = bytes(0, elementCount());
        byte[] out = new byte[(int) elementCount()];
        bytes.get(out);
        return out;
    }

    /** The whole tensor in fp32. */
    public float[] toFloats() {
        if (elementCount() > Integer.MAX_VALUE - 8) {
            throw new ModelFormatException("tensor " + name() + " in " + file() + " has " + elementCount()
                    + " elements, more than one Java array holds; read it in slices");
        }
        return toFloats(0, (int) elementCount());
    }
}
