package io.moescore.batch;

import java.nio.IntBuffer;

/**
 * Sequences of token ids packed end to end, with no padding: sequence i is
 * {@code tokens[offsets[i] .. offsets[i+1])}. Both buffers may be views of someone else's memory (an Arrow
 * vector's data and offset buffers, for instance); the engine only reads them, by absolute index.
 */
public final class TokenBatch {
    private final IntBuffer tokens;
    private final IntBuffer offsets;
    private final int numSequences;

    public TokenBatch(IntBuffer tokens, IntBuffer offsets, int numSequences) {
        if (offsets.limit() < numSequences + 1) {
            throw new IllegalArgumentException("offsets hold " + offsets.limit() + " entries, need " + (numSequences + 1));
        }
        this.tokens = tokens;
        this.offsets = offsets;
        this.numSequences = numSequences;
        for (int i = 0; i < numSequences; i++) {
            int start = offsets.get(i);
            int end = offsets.get(i + 1);
            if (start < 0 || end < start || end > tokens.limit()) {
                throw new IllegalArgumentException("sequence " + i + " spans [" + start + ", " + end
                        + ") outside the " + tokens.limit() + " packed tokens");
            }
        }
    }

    /** A batch over plain Java arrays of sequences (tests, JSON input). */
    public static TokenBatch of(int[]... sequences) {
        int total = 0;
        for (int[] s : sequences) {
            total += s.length;
        }
        int[] tokens = new int[total];
        int[] offsets = new int[sequences.length + 1];
        for (int i = 0; i < sequences.length; i++) {
            System.arraycopy(sequences[i], 0, tokens, offsets[i], sequences[i].length);
            offsets[i + 1] = offsets[i] + sequences[i].length;
        }
        return new TokenBatch(IntBuffer.wrap(tokens), IntBuffer.wrap(offsets), sequences.length);
    }

    public int numSequences() {
        return numSequences;
    }

    public int length(int sequence) {
        return offsets.get(sequence + 1) - offsets.get(sequence);
    }

    public int token(int sequence, int position) {
        return tokens.get(offsets.get(sequence) + position);
    }

    /** Copies sequence {@code sequence} into {@code dest} at {@code destOffset}. */
    public void copySequence(int sequence, int[] dest, int destOffset) {
        tokens.get(offsets.get(sequence), dest, destOffset, length(sequence));
    }

    public long totalTokens() {
        long n = 0;
        for (int i = 0; i < numSequences; i++) {
            n += length(i);
        }
        return n;
    }
}
