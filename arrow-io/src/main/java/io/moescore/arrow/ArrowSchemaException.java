package io.moescore.arrow;

/** An Arrow schema that is not the one moescore expects; the message names the source, the column and both types. */
public final class ArrowSchemaException extends IllegalArgumentException {
    public ArrowSchemaException(String message) {
        super(message);
    }
}
