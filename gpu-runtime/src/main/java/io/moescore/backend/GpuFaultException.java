package io.moescore.backend;

/**
 * An unrecoverable device error (illegal address, launch failure, uncorrectable ECC error, ...): the device's
 * context is unusable for the rest of the process, and every later call on it fails with this exception naming the
 * first error. Out of memory is not one ({@link DeviceOutOfMemoryException}: the batch is split and retried).
 */
public class GpuFaultException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public GpuFaultException(String message, Throwable cause) {
        super(message, cause);
    }

    public GpuFaultException(String message) {
        super(message);
    }
}
