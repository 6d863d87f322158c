// The autotuner's stream hold (KernelTuner): one thread spins on the global nanosecond timer for `ns`, so that the
// launches the host enqueues behind it meanwhile run back to back once it ends, and the events around them time
// the GPU alone.
extern "C" __global__ void tuner_hold(long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < (unsigned long long)ns);
}
