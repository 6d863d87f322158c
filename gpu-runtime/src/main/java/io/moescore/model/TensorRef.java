package io.moescore.model;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/** One tensor of a checkpoint: where it lives and how to read (part of) it. */
public final class TensorRef {
    private final SafeTensorsFile file;
    private final SafeTensorsFile.Entry entry;

    TensorRef(SafeTensorsFile file, SafeTensorsFile.Entry entry) {
        this.file = file;
        this.entry = entry;
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
        return file.map(entry, first * dtype().bytes(), count * dtype().bytes());
    }

    /** {@code count} elements starting at element {@code first}, converted to fp32. */
    public float[] toFloats(long first, int count) {
        if (first < 0 || count < 0 || first + count > elementCount()) {
            throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") outside tensor "
                    + name() + " of " + elementCount());
        }
        ByteBuffer bytes = bytes(first, count);
        float[] out = new float[count];
        DType t = dtype();
        for (int i = 0; i < count; i++) {
            out[i] = t.read(bytes, i);
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
