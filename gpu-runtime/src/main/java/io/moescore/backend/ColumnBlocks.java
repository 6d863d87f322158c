package io.moescore.backend;

/**
 * {@code count} blocks of {@code width} columns in every row of a tensor, block b starting at column
 * {@code first + b * stride}: the heads of a projection, a part of each head, or (stride 0) one block read by every b.
 */
public record ColumnBlocks(int first, int stride, int count, int width) {
    public ColumnBlocks {
        if (first < 0 || stride < 0 || count < 1 || width < 1) {
            throw new IllegalArgumentException("column blocks: first " + first + ", stride " + stride + ", count "
                    + count + ", width " + width);
        }
    }

    /** {@code count} whole heads of {@code width} columns side by side. */
    public static ColumnBlocks heads(int count, int width) {
        return new ColumnBlocks(0, width, count, width);
    }

    /** The columns [first, first + width) of every row, as one block. */
    public static ColumnBlocks span(int first, int width) {
        return new ColumnBlocks(first, width, 1, width);
    }

    /** The first column of block b. */
    public int start(int block) {
        return first + block * stride;
    }

    /** One past the last column any block reaches. */
    public int end() {
        return first + (count - 1) * stride + width;
    }

    /** Whether these are the whole rows of a tensor of {@code cols} columns, cut into heads. */
    public boolean wholeHeadsOf(int cols) {
        return first == 0 && stride == width && (long) count * width == cols;
    }
}
