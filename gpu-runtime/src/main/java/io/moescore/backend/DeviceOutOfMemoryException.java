package io.moescore.backend;

/** A backend could not allocate device memory for a batch; the engine splits the batch and retries. */
public class DeviceOutOfMemoryException extends RuntimeException {
    public DeviceOutOfMemoryException(String message) {
        super(message);
    }
}
