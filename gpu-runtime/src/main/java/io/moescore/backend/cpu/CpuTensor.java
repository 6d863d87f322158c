package io.moescore.backend.cpu;

import io.moescore.backend.IntTensor;
import io.moescore.backend.Tensor;

/** A tensor in a Java array; the garbage collector owns its memory, so close() has nothing to release. */
final class CpuTensor implements Tensor {
    final int rows;
    final int cols;
    final float[] data;

    CpuTensor(int rows, int cols, float[] data) {
        if ((long) rows * cols != data.length) {
            throw new IllegalArgumentException(rows + " x " + cols + " tensor over " + data.length + " floats");
        }
        this.rows = rows;
        this.cols = cols;
        this.data = data;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public void close() {
    }

    static CpuTensor of(Tensor t) {
        if (t instanceof CpuTensor c) {
            return c;
        }
        throw new IllegalArgumentException("tensor " + t + " does not belong to the CPU backend");
    }

    record Ints(int[] values) implements IntTensor {
        @Override
        public int length() {
            return values.length;
        }

        @Override
        public void close() {
        }

        static int[] of(IntTensor t) {
            if (t instanceof Ints i) {
                return i.values;
            }
            throw new IllegalArgumentException("int tensor " + t + " does not belong to the CPU backend");
        }
    }
}
