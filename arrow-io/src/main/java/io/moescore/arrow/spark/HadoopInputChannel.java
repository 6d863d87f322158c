package io.moescore.arrow.spark;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.SeekableByteChannel;

import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.StreamCapabilities;

/** A read-only {@link SeekableByteChannel} over a Hadoop input stream, which Arrow's file reader needs. */
final class HadoopInputChannel implements SeekableByteChannel {
    private static final int COPY_CHUNK = 1 << 16;

    private final FSDataInputStream in;
    private final long size;
    private final boolean readsByteBuffers;
    private byte[] chunk;
    private boolean open = true;

    HadoopInputChannel(FSDataInputStream in, long size) {
        this.in = in;
        this.size = size;
        this.readsByteBuffers = in.hasCapability(StreamCapabilities.READBYTEBUFFER);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        ensureOpen();
        if (!dst.hasRemaining()) {
            return 0;
        }
        if (readsByteBuffers) {
            return in.read(dst);
        }
        if (dst.hasArray()) {
            int n = in.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
            if (n > 0) {
                dst.position(dst.position() + n);
            }
            return n;
        }
        if (chunk == null) {
            chunk = new byte[COPY_CHUNK];
        }
        int n = in.read(chunk, 0, Math.min(chunk.length, dst.remaining()));
        if (n > 0) {
            dst.put(chunk, 0, n);
        }
        return n;
    }

    @Override
    public long position() throws IOException {
        ensureOpen();
        return in.getPos();
    }

    @Override
    public SeekableByteChannel position(long newPosition) throws IOException {
        ensureOpen();
        in.seek(newPosition);
        return this;
    }

    @Override
    public long size() throws IOException {
        ensureOpen();
        return size;
    }

    @Override
    public int write(ByteBuffer src) {
        throw new NonWritableChannelException();
    }

    @Override
    public SeekableByteChannel truncate(long newSize) {
        throw new NonWritableChannelException();
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() throws IOException {
        if (open) {
            open = false;
            in.close();
        }
    }

    private void ensureOpen() throws ClosedChannelException {
        if (!open) {
            throw new ClosedChannelException();
        }
    }
}
