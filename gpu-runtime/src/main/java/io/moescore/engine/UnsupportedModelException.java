package io.moescore.engine;

/**
 * A model the chosen backend cannot run (its family needs ops the backend has no kernels for), refused before any
 * weight is loaded. Like a malformed model, it is the user's to fix (another backend or model): exit code 2.
 */
public final class UnsupportedModelException extends UnsupportedOperationException {
    public UnsupportedModelException(String message) {
        super(message);
    }
}
