package io.moescore.arrow;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.apache.arrow.vector.ipc.ArrowStreamWriter;
import org.apache.arrow.vector.ipc.ArrowWriter;

/**
 * The two Arrow IPC formats: FILE ({@code .arrow}, random access, a footer indexes the batches) and STREAM
 * ({@code .arrows}, batches one after another). Readers tell them apart by their first bytes, not by name.
 * Streams in the format before Arrow 0.15 (no continuation marker; no current writer makes them) are not read.
 */
public enum IpcFormat {
    FILE(".arrow"),
    STREAM(".arrows");

    private static final byte[] FILE_MAGIC = "ARROW1".getBytes(StandardCharsets.US_ASCII);
    private static final int CONTINUATION = 0xFFFFFFFF;

    private final String extension;

    IpcFormat(String extension) {
        this.extension = extension;
    }

    public String extension() {
        return extension;
    }

    /** STREAM for names ending in {@code .arrows}, FILE for any other. */
    public static IpcFormat forFileName(String name) {
        return name.toLowerCase(Locale.ROOT).endsWith(STREAM.extension) ? STREAM : FILE;
    }

    /** Whether a directory listing should read {@code name}: {@code .arrow} or {@code .arrows}, not hidden. */
    public static boolean isArrowFileName(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        return !lower.startsWith(".") && !lower.startsWith("_")
                && (lower.endsWith(FILE.extension) || lower.endsWith(STREAM.extension));
    }

    /** A writer of this format over {@code out}; closing the writer closes {@code out}. */
    public ArrowWriter newWriter(VectorSchemaRoot root, WritableByteChannel out) {
        return this == FILE ? new ArrowFileWriter(root, null, out) : new ArrowStreamWriter(root, null, out);
    }

    /**
     * Reads the first bytes of {@code in} to tell the format, and leaves it at position 0.
     *
     * @throws ArrowFileException when the bytes are neither format's, naming {@code source}
     */
    public static IpcFormat detect(SeekableByteChannel in, String source) throws IOException {
        long size = in.size();
        ByteBuffer head = ByteBuffer.allocate((int) Math.min(8, size)).order(ByteOrder.LITTLE_ENDIAN);
        in.position(0);
        while (head.hasRemaining()) {
            if (in.read(head) < 0) {
                break;
            }
        }
        in.position(0);
        head.flip();
        if (startsWith(head, FILE_MAGIC)) {
            return FILE;
        }
        if (head.remaining() == 8 && head.getInt(0) == CONTINUATION) {
            return STREAM;
        }
        throw new ArrowFileException(source, size == 0 ? "empty, not an Arrow IPC file or stream"
                : "not an Arrow IPC file or stream (" + size + " bytes, starting " + hex(head) + ")");
    }

    private static boolean startsWith(ByteBuffer head, byte[] magic) {
        if (head.remaining() < magic.length) {
            return false;
        }
        for (int i = 0; i < magic.length; i++) {
            if (head.get(i) != magic[i]) {
                return false;
            }
        }
        return true;
    }

    private static String hex(ByteBuffer head) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < head.remaining(); i++) {
            s.append(i == 0 ? "" : " ").append(String.format("%02x", head.get(i)));
        }
        return s.toString();
    }
}
