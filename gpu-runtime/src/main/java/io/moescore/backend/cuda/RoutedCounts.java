package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;

import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * A layer's tokens per expert on their way to the host without stopping the stream: copied into page-locked
 * memory behind the routing kernels, read when first asked (waiting for that copy alone, by then long done while
 * the experts run). The page-locked buffer is the calling thread's, reused layer after layer: a layer's counts are
 * read, if at all, before the next layer routes (the engine asks before it closes the routing).
 */
final class RoutedCounts {
    /** The calling thread's page-locked buffer, grown as needed. */
    private static final ThreadLocal<Pinned> PINNED = ThreadLocal.withInitial(Pinned::new);

    private final int experts;
    private final long least;
    private final long most;
    private final String router;
    private final CUevent copied = new CUevent();
    private final Pinned pinned;
    private int[] counts;

    /**
     * Starts the copy of {@code experts} counts from the device, behind what the stream has queued; their total
     * must lie in [{@code least}, {@code most}] (the router kernel {@code router} routes every token to at least
     * and at most so many experts).
     */
    RoutedCounts(CUdeviceptr device, int experts, long least, long most, String router, CUstream stream) {
        this.experts = experts;
        this.least = least;
        this.most = most;
        this.router = router;
        this.pinned = PINNED.get().atLeast(experts);
        cuMemcpyDtoHAsync(pinned.host, device, experts * 4L, stream);
        cuEventCreate(copied, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        cuEventRecord(copied, stream);
    }

    /** The counts, once the copy landed; refused where the total lies outside what the router can route. */
    synchronized int[] get() {
        if (counts == null) {
            cuEventSynchronize(copied);
            cuEventDestroy(copied);
            counts = new int[experts];
            pinned.ints().get(counts, 0, experts);
            long routed = Arrays.stream(counts).asLongStream().sum();
            if (!within(routed, least, most)) {
                throw new IllegalStateException(router + " routed " + routed + " token-expert pairs, outside "
                        + (least == most ? "the " + least + " expected" : "[" + least + ", " + most + "]"));
            }
        }
        return counts;
    }

    /** Whether a routed total lies in [least, most]. */
    static boolean within(long routed, long least, long most) {
        return routed >= least && routed <= most;
    }

    /** Releases the event of counts nobody asked for. */
    synchronized void close() {
        if (counts == null) {
            cuEventSynchronize(copied);  // the buffer is reused by the next layer's copy: let this one land
            cuEventDestroy(copied);
            counts = new int[0];
        }
    }

    private static final class Pinned {
        Pointer host;
        int capacity;

        Pinned atLeast(int n) {
            if (capacity < n) {
                if (host != null) {
                    cuMemFreeHost(host);
                }
                host = new Pointer();
                cuMemAllocHost(host, Math.max(256, n) * 4L);
                capacity = Math.max(256, n);
            }
            return this;
        }

        IntBuffer ints() {
            return host.getByteBuffer(0, capacity * 4L).order(ByteOrder.nativeOrder()).asIntBuffer();
        }
    }
}
