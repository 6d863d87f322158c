package io.moescore.backend.cuda;

/** The CUDA backend cannot run here: no driver, no device, or a build without kernels. The message says which. */
public class CudaUnavailableException extends RuntimeException {
    public CudaUnavailableException(String message) {
        super(message);
    }

    public CudaUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
