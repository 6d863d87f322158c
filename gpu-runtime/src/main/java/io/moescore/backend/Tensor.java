package io.moescore.backend;

/**
 * A row-major 2-D array owned by a backend (host memory for the CPU backend, device memory for CUDA).
 * Vectors are 1 x n. The engine never looks inside; it passes tensors back to the backend that made them.
 */
public interface Tensor extends AutoCloseable {
    int rows();

    int cols();

    @Override
    void close();
}
