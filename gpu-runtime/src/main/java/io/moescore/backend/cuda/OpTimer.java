package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * Per-op device time, measured with CUDA events around each op on the calling thread's stream. Off unless a
 * benchmark turns it on (it adds two event records per op).
 */
final class OpTimer {
    private record Span(String op, CUevent start, CUevent end) {
    }

    private final List<Span> spans = new ArrayList<>();

    /** Starts timing an op; returns a handle for {@link #end}. */
    Span begin(String op, CUstream stream) {
        CUevent start = new CUevent();
        CUevent end = new CUevent();
        cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
        cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT);
        cuEventRecord(start, stream);
        Span s = new Span(op, start, end);
        synchronized (spans) {
            spans.add(s);
        }
        return s;
    }

    static void end(Object span, CUstream stream) {
        cuEventRecord(((Span) span).end, stream);
    }

    /** Milliseconds per op name since the last drain, waiting for the work to finish. */
    Map<String, Double> drain() {
        Map<String, Double> total = new TreeMap<>();
        synchronized (spans) {
            float[] ms = new float[1];
            for (Span s : spans) {
                cuEventSynchronize(s.end);
                cuEventElapsedTime(ms, s.start, s.end);
                total.merge(s.op, (double) ms[0], Double::sum);
                cuEventDestroy(s.start);
                cuEventDestroy(s.end);
            }
            spans.clear();
        }
        return total;
    }
}
