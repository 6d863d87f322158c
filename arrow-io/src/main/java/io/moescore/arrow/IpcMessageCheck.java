package io.moescore.arrow;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;

import org.apache.arrow.flatbuf.Block;
import org.apache.arrow.flatbuf.Buffer;
import org.apache.arrow.flatbuf.DictionaryBatch;
import org.apache.arrow.flatbuf.FieldNode;
import org.apache.arrow.flatbuf.Footer;
import org.apache.arrow.flatbuf.Message;
import org.apache.arrow.flatbuf.MessageHeader;
import org.apache.arrow.flatbuf.RecordBatch;

/**
 * Checks the framing and metadata of every message of an Arrow IPC file or stream before Arrow Java reads it.
 *
 * <p>Arrow Java allocates a message's body before it parses the message's metadata, and does not free that
 * body when the metadata turns out to be corrupt: a corrupt file would leak off-heap memory on every attempt to
 * read it. Checked here first, reading only metadata (hundreds of bytes per batch, no body), it fails cleanly
 * with the file's name and the message's byte position, and Arrow then parses only metadata known to be sound.
 * Bodies are checked after loading ({@link ArrowIpcReader}).
 */
final class IpcMessageCheck {
    private static final int CONTINUATION = 0xFFFFFFFF;
    private static final byte[] MAGIC = "ARROW1".getBytes(StandardCharsets.US_ASCII);
    /** Real metadata is kilobytes; a length beyond this is corruption, and is not worth allocating. */
    private static final int MAX_METADATA_BYTES = 64 << 20;

    private final SeekableByteChannel in;
    private final String source;
    private final long size;

    private IpcMessageCheck(SeekableByteChannel in, String source) throws IOException {
        this.in = in;
        this.source = source;
        this.size = in.size();
    }

    /** Checks {@code in} (of the format {@link IpcFormat#detect} found) and leaves it at position 0. */
    static void check(SeekableByteChannel in, IpcFormat format, String source) throws IOException {
        IpcMessageCheck check = new IpcMessageCheck(in, source);
        if (format == IpcFormat.FILE) {
            check.checkFile();
        } else {
            check.checkStream();
        }
        in.position(0);
    }

    private void checkStream() throws IOException {
        long position = 0;
        boolean first = true;
        while (position < size) { // a stream may end without its end-of-stream marker
            if (size - position < 8) {
                throw fail(position, "ends inside a message's length prefix");
            }
            if (readInt(position) != CONTINUATION) {
                throw fail(position, "no message starts here (no continuation marker)");
            }
            int length = readInt(position + 4);
            if (length == 0) {
                return; // end-of-stream marker
            }
            long metadataStart = position + 8;
            Message message = message(position, metadataStart, length);
            byte type = message.headerType();
            boolean expected = first ? type == MessageHeader.Schema
                    : type == MessageHeader.RecordBatch || type == MessageHeader.DictionaryBatch;
            if (!expected) {
                throw fail(position, "a message of type " + typeName(type) + " where "
                        + (first ? "the schema" : "a record or dictionary batch") + " belongs");
            }
            long bodyStart = metadataStart + length;
            long bodyLength = message.bodyLength();
            if (bodyLength < 0 || bodyLength > size - bodyStart || (first && bodyLength != 0)) {
                throw fail(position, "truncated or corrupt: the message's body claims " + bodyLength + " bytes, "
                        + (size - bodyStart) + " follow");
            }
            if (!first) {
                checkBatch(message, type, bodyLength, position);
            }
            position = bodyStart + bodyLength;
            first = false;
        }
    }

    private void checkFile() throws IOException {
        int tail = MAGIC.length + Integer.BYTES;
        if (size < 8 + tail || !hasMagic(size - MAGIC.length)) {
            throw fail(size, "truncated: the file does not end with the Arrow footer and magic");
        }
        int footerLength = readInt(size - tail);
        long footerStart = size - tail - footerLength;
        if (footerLength <= 0 || footerStart < 8) {
            throw fail(size - tail, "corrupt footer length " + footerLength);
        }
        try {
            Footer footer = Footer.getRootAsFooter(read(footerStart, footerLength));
            for (int i = 0; i < footer.dictionariesLength(); i++) {
                checkBlock(footer.dictionaries(i), MessageHeader.DictionaryBatch, footerStart);
            }
            for (int i = 0; i < footer.recordBatchesLength(); i++) {
                checkBlock(footer.recordBatches(i), MessageHeader.RecordBatch, footerStart);
            }
        } catch (RuntimeException e) {
            throw new ArrowFileException(source, "corrupt footer at byte " + footerStart, e);
        }
    }

    private void checkBlock(Block block, byte type, long footerStart) throws IOException {
        long offset = block.offset();
        int metadataLength = block.metaDataLength();
        long bodyLength = block.bodyLength();
        if (offset < 8 || metadataLength <= 8 || bodyLength < 0
                || offset + metadataLength + bodyLength > footerStart) {
            throw fail(offset, "the footer lists a " + typeName(type) + " of " + metadataLength + " + "
                    + bodyLength + " bytes here, outside the file's " + footerStart + " bytes of messages");
        }
        int prefix = readInt(offset) == CONTINUATION ? 8 : 4;
        Message message = message(offset, offset + prefix, metadataLength - prefix);
        if (message.headerType() != type) {
            throw fail(offset, "a message of type " + typeName(message.headerType()) + " where the footer"
                    + " lists a " + typeName(type));
        }
        checkBatch(message, type, bodyLength, offset);
    }

    private Message message(long position, long metadataStart, int length) throws IOException {
        if (length < 0 || length > MAX_METADATA_BYTES || length > size - metadataStart) {
            throw fail(position, "truncated or corrupt: the message claims " + Integer.toUnsignedString(length)
                    + " bytes of metadata, " + (size - metadataStart) + " follow");
        }
        ByteBuffer metadata = read(metadataStart, length);
        try {
            Message message = Message.getRootAsMessage(metadata);
            message.headerType();
            message.bodyLength();
            return message;
        } catch (RuntimeException e) {
            throw new ArrowFileException(source, "corrupt message metadata at byte " + position, e);
        }
    }

    /** The checks Arrow's MessageSerializer.deserializeRecordBatch would fail on after allocating the body. */
    private void checkBatch(Message message, byte type, long bodyLength, long position) throws IOException {
        try {
            RecordBatch batch = type == MessageHeader.DictionaryBatch
                    ? ((DictionaryBatch) message.header(new DictionaryBatch())).data()
                    : (RecordBatch) message.header(new RecordBatch());
            if (batch == null || batch.length() < 0 || batch.length() > Integer.MAX_VALUE) {
                throw fail(position, "a batch without a valid row count");
            }
            for (int i = 0; i < batch.nodesLength(); i++) {
                FieldNode node = batch.nodes(i);
                if (node.length() < 0 || node.length() > Integer.MAX_VALUE || node.nullCount() < 0
                        || node.nullCount() > node.length()) {
                    throw fail(position, "column node " + i + " has length " + node.length() + " and null count "
                            + node.nullCount());
                }
            }
            for (int i = 0; i < batch.buffersLength(); i++) {
                Buffer buffer = batch.buffers(i);
                // offset and length compared apart: a huge offset plus a length would wrap past Long.MAX_VALUE
                if (buffer.offset() < 0 || buffer.length() < 0 || buffer.offset() > bodyLength
                        || buffer.length() > bodyLength - buffer.offset()) {
                    throw fail(position, "buffer " + i + " spans [" + buffer.offset() + ", +" + buffer.length()
                            + ") outside the " + bodyLength + "-byte body");
                }
            }
            batch.compression();
        } catch (RuntimeException e) {
            throw new ArrowFileException(source, "corrupt message metadata at byte " + position, e);
        }
    }

    private static String typeName(byte type) {
        return type > 0 && type < MessageHeader.names.length ? MessageHeader.names[type] : "unknown (" + type + ")";
    }

    private boolean hasMagic(long position) throws IOException {
        ByteBuffer bytes = read(position, MAGIC.length);
        for (byte b : MAGIC) {
            if (bytes.get() != b) {
                return false;
            }
        }
        return true;
    }

    private int readInt(long position) throws IOException {
        return read(position, Integer.BYTES).getInt(0);
    }

    private ByteBuffer read(long position, int length) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        in.position(position);
        while (bytes.hasRemaining()) {
            if (in.read(bytes) < 0) {
                throw fail(position, "unexpected end of file");
            }
        }
        return bytes.flip();
    }

    private ArrowFileException fail(long position, String problem) {
        return new ArrowFileException(source, problem + " (at byte " + position + " of " + size + ")");
    }
}
