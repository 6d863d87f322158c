package io.moescore.backend;

/** A vector of int32 owned by a backend: token ids, positions, sequence offsets. */
public interface IntTensor extends AutoCloseable {
    int length();

    @Override
    void close();
}
