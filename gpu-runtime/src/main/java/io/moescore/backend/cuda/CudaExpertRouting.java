package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * Routing in device memory: per expert, offsets into the lists of token rows and gate weights (each expert's
 * tokens ascending). The grouped expert launches plan their work on the device (route_work); the counts come to
 * the host for the load statistics without stopping the stream ({@link RoutedCounts}). Where a router gives tokens
 * a varying number of experts, the routed total is known on the device only (offsets[E]): {@link #entries} is then
 * the most there can be, what every buffer is sized for.
 */
final class CudaExpertRouting implements ExpertRouting {
    final int numExperts;
    /** The most routing entries (tokens x k; for a varying count, tokens x the most experts a token gets). */
    final int entries;
    final CUdeviceptr offsets;
    final CUdeviceptr tokens;
    final CUdeviceptr gates;
    /**
     * [tokens, k]: each token's chosen experts, for the batch-invariant combine (combine_expert_outputs): all k of
     * a row, or its first perToken[t] where the count varies.
     */
    final CUdeviceptr chosen;
    /** [tokens]: each token's expert count where it varies; null where every token has k. */
    final CUdeviceptr perToken;
    final int k;
    /** The counts on their way from the device, or null where the host made the routing ({@link #known}). */
    private final RoutedCounts counts;
    /** The counts of a routing the host made ({@link HostRoutingUpload}), else null. */
    private final int[] known;
    private final CUstream stream;
    private final Runnable release;

    CudaExpertRouting(int numExperts, int entries, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates,
                      CUdeviceptr chosen, CUdeviceptr perToken, int k, RoutedCounts counts, CUstream stream,
                      Runnable release) {
        this(numExperts, entries, offsets, tokens, gates, chosen, perToken, k, counts, null, stream, release);
    }

    /** A routing the host made and copied here, its counts known ({@link HostRoutingUpload}). */
    CudaExpertRouting(int numExperts, int entries, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates,
                      CUdeviceptr chosen, CUdeviceptr perToken, int k, int[] known, CUstream stream,
                      Runnable release) {
        this(numExperts, entries, offsets, tokens, gates, chosen, perToken, k, null, known.clone(), stream, release);
    }

    private CudaExpertRouting(int numExperts, int entries, CUdeviceptr offsets, CUdeviceptr tokens,
                              CUdeviceptr gates, CUdeviceptr chosen, CUdeviceptr perToken, int k, RoutedCounts counts,
                              int[] known, CUstream stream, Runnable release) {
        this.numExperts = numExperts;
        this.entries = entries;
        this.offsets = offsets;
        this.tokens = tokens;
        this.gates = gates;
        this.chosen = chosen;
        this.perToken = perToken;
        this.k = k;
        this.counts = counts;
        this.known = known;
        this.stream = stream;
        this.release = release;
    }

    @Override
    public int numExperts() {
        return numExperts;
    }

    @Override
    public int[] tokensPerExpert() {
        return counts == null ? known.clone() : counts.get().clone();
    }

    /**
     * The per-expert lists copied to the host (offsets, then the routed entries' tokens and gates: offsets[E] of
     * each), once the stream has routed; only where a caller asks for per-token routing, since it waits for the
     * stream.
     */
    @Override
    public HostExpertRouting toHost() {
        cuStreamSynchronize(stream);
        int[] hostOffsets = new int[numExperts + 1];
        cuMemcpyDtoH(Pointer.to(hostOffsets), offsets, hostOffsets.length * 4L);
        int n = hostOffsets[numExperts];
        if (n < 0 || n > entries) {
            throw new IllegalStateException("the device's routing holds " + n + " entries, outside [0, " + entries
                    + "]");
        }
        int[] hostTokens = new int[n];
        float[] hostGates = new float[n];
        if (n > 0) {
            cuMemcpyDtoH(Pointer.to(hostTokens), tokens, n * 4L);
            cuMemcpyDtoH(Pointer.to(hostGates), gates, n * 4L);
        }
        return new HostExpertRouting(hostOffsets, hostTokens, hostGates);
    }

    @Override
    public void close() {
        if (counts != null) {
            counts.close();
        }
        release.run();
    }
}
