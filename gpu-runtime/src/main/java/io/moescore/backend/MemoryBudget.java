package io.moescore.backend;

/**
 * What a backend can hold, for the check before a model loads: the memory it places weights and activations in,
 * and a lower bound of the bytes it places per weight (so a refusal is never wrong).
 *
 * @param availableBytes      the memory weights and activations share (the JVM's maximum heap; the GPU's memory)
 * @param bytesPerWeight      bytes per dense weight as placed, at least (fp32 on the CPU: 4; 16-bit on a GPU: 2)
 * @param packsSparseExperts  2:4 and 128:2:8 experts stay packed (else they are placed as the dense matrices)
 * @param where               what the memory is, for messages ("the JVM heap (-Xmx)")
 * @param sharedByDevices     every device of this backend draws on this same memory (the CPU backend's logical
 *                            devices share the JVM heap), so an engine over several holds the whole model in it; else
 *                            (a GPU's memory) each device has its own and holds only its share
 *                            ({@code io.moescore.engine.DeviceMemoryPlan})
 */
public record MemoryBudget(long availableBytes, double bytesPerWeight, boolean packsSparseExperts, String where,
                           boolean sharedByDevices) {
    /** A budget of one device's own memory (not shared by devices). */
    public MemoryBudget(long availableBytes, double bytesPerWeight, boolean packsSparseExperts, String where) {
        this(availableBytes, bytesPerWeight, packsSparseExperts, where, false);
    }
}
