package io.moescore.model;

/** A model directory, config or weight file that cannot be used; the message names the file and tensor or field. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
