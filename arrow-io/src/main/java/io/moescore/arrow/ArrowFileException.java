package io.moescore.arrow;

import java.io.IOException;

/** An Arrow IPC file or stream that cannot be read (truncated, corrupt, not Arrow); the message names it first. */
public final class ArrowFileException extends IOException {
    public ArrowFileException(String source, String problem, Throwable cause) {
        super(source + ": " + problem + (cause == null || cause.getMessage() == null ? "" : " (" + cause + ")"), cause);
    }

    public ArrowFileException(String source, String problem) {
        this(source, problem, null);
    }
}
