package io.moescore.score;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The lines of a JSON-lines file, each decoded on its own, so that a line that is not UTF-8 (or too long) is
 * that line's error and the next line reads as usual. Lines end at {@code \n}; a {@code \r} before it is
 * dropped (JSON Lines allows {@code \r\n}). A UTF-8 byte order mark before line 1 is skipped.
 */
final class Utf8Lines implements Closeable {
    /** Line {@code number} (1-based): its text, or why it has none. */
    record Line(long number, String text, String error) {
    }

    /** The longest line a Java array holds. */
    static final int MAX_LINE_BYTES = Integer.MAX_VALUE - 16;
    private static final byte[] BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

    private final InputStream in;
    private final int maxLineBytes;
    private final byte[] buffer = new byte[1 << 16];
    private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    private int position;
    private int limit;
    private boolean eof;
    private long number;
    private byte[] line = new byte[256];

    Utf8Lines(InputStream in) {
        this(in, MAX_LINE_BYTES);
    }

    /** Lines longer than {@code maxLineBytes} become errors (a test sets it low). */
    Utf8Lines(InputStream in, int maxLineBytes) {
        this.in = in;
        this.maxLineBytes = maxLineBytes;
    }

    /** The next line, or null after the last. */
    Line next() throws IOException {
        int length = 0;
        boolean tooLong = false;
        boolean sawAny = false;
        while (true) {
            if (position == limit && !fill()) {
                if (!sawAny) {
                    return null;
                }
                break;
            }
            sawAny = true;
            int end = position;
            while (end < limit && buffer[end] != '\n') {
                end++;
            }
            int n = end - position;
            if (!tooLong && (long) length + n > maxLineBytes) {
                tooLong = true;
            }
            if (!tooLong) {
                if (length + n > line.length) {
                    line = Arrays.copyOf(line, (int) Math.min(maxLineBytes, Math.max(length + n, 2L * line.length)));
                }
                System.arraycopy(buffer, position, line, length, n);
                length += n;
            }
            position = end;
            if (end < limit) {
                position++;  // the '\n'
                break;
            }
        }
        number++;
        if (tooLong) {
            return new Line(number, null, "longer than " + maxLineBytes + " bytes");
        }
        if (length > 0 && line[length - 1] == '\r') {
            length--;
        }
        int start = 0;
        if (number == 1 && length >= 3 && Arrays.equals(line, 0, 3, BOM, 0, 3)) {
            start = 3;
        }
        return decode(start, length);
    }

    private Line decode(int start, int end) {
        ByteBuffer bytes = ByteBuffer.wrap(line, start, end - start);
        CharBuffer chars = CharBuffer.allocate(end - start);
        decoder.reset();
        CoderResult result = decoder.decode(bytes, chars, true);
        if (!result.isError()) {
            result = decoder.flush(chars);
        }
        if (result.isError()) {
            int at = bytes.position();
            return new Line(number, null, String.format("not valid UTF-8: byte 0x%02X at byte %d of the line",
                    line[at] & 0xFF, at + 1));
        }
        return new Line(number, chars.flip().toString(), null);
    }

    private boolean fill() throws IOException {
        if (eof) {
            return false;
        }
        int n = in.read(buffer);
        if (n < 0) {
            eof = true;
            return false;
        }
        position = 0;
        limit = n;
        return true;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
