package io.moescore.bench.portability;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;
import org.apache.spark.storage.BlockManagerId;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * Gets exactly one benchmark task onto every executor GPU (or, where executors have no {@code gpu} resource, onto
 * every executor). One partition per slot, each preferring its executor (Spark's executor_HOST_ID location), and,
 * where executors have GPUs, tasks that need one whole GPU, so an executor with G GPUs runs G tasks side by side,
 * each on its own address. Preferences are not promises (a busy or lost executor, the locality wait running out),
 * so the results are checked: a (host, executor, GPU address) seen twice keeps its first result, and slots no task
 * covered are scheduled again, up to {@link #ROUNDS} rounds; those still missing get a row that says so.
 */
final class SlotScheduler {
    static final int ROUNDS = 3;
    private static final String GPU = "gpu";

    private final SparkContext sc;
    private final ExecutorBenchmark benchmark;

    SlotScheduler(SparkContext sc, PortabilityOptions options) {
        this.sc = sc;
        this.benchmark = new ExecutorBenchmark(options);
    }

    /** GPUs per executor that Spark schedules (spark.executor.resource.gpu.amount; 0: none). */
    static int executorGpus(SparkConf conf) {
        return (int) conf.getLong("spark.executor.resource." + GPU + ".amount", 0);
    }

    /** The executors now registered, id -> host; the driver only where it is the sole one (local mode). */
    Map<String, String> executors() {
        Map<String, String> byId = new TreeMap<>();
        scala.collection.Iterator<BlockManagerId> ids = sc.env().blockManager().master().getMemoryStatus()
                .keysIterator();
        while (ids.hasNext()) {
            BlockManagerId id = ids.next();
            byId.put(id.executorId(), id.host());
        }
        if (byId.size() > 1) {
            byId.remove("driver");   // SparkContext.DRIVER_IDENTIFIER, private to Spark
        }
        return byId;
    }

    /** Waits up to {@code timeout} for {@code count} executors (--executors) to register. */
    Map<String, String> awaitExecutors(int count, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, String> now = executors();
        while (count > 0 && now.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("--executors " + count + ": only " + now.size() + " executor(s) "
                        + "registered within " + timeout.toSeconds() + " s: " + now.keySet());
            }
            Thread.sleep(200);
            now = executors();
        }
        return now;
    }

    /** Runs the benchmark once per slot; returns one result per (host, executor, GPU address) and the misses. */
    Outcome run(Map<String, String> executors) {
        int gpus = executorGpus(sc.getConf());
        List<BenchmarkSlot> wanted = new ArrayList<>();
        executors.forEach((id, host) -> {
            for (int slot = 0; slot < Math.max(1, gpus); slot++) {
                wanted.add(new BenchmarkSlot(id, host, slot));
            }
        });
        Map<String, SlotResult> covered = new LinkedHashMap<>();
        int duplicates = 0;
        List<BenchmarkSlot> missing = wanted;
        for (int round = 0; round < ROUNDS && !missing.isEmpty(); round++) {
            for (SlotResult r : runStage(missing, gpus > 0)) {
                if (covered.putIfAbsent(key(r), r) != null) {
                    duplicates++;
                }
            }
            missing = missingSlots(wanted, covered.values());
        }
        return new Outcome(List.copyOf(covered.values()), missing, duplicates);
    }

    record Outcome(List<SlotResult> results, List<BenchmarkSlot> missing, int duplicates) {
    }

    private static String key(SlotResult r) {
        return r.host() + "|" + r.executorId() + "|" + String.join(",", r.gpuAddresses());
    }

    /** Slots of executors that have fewer distinct results than slots wanted. */
    private static List<BenchmarkSlot> missingSlots(List<BenchmarkSlot> wanted, Iterable<SlotResult> covered) {
        Map<String, Integer> seen = new TreeMap<>();
        covered.forEach(r -> seen.merge(r.executorId(), 1, Integer::sum));
        List<BenchmarkSlot> missing = new ArrayList<>();
        for (BenchmarkSlot s : wanted) {
            if (s.gpuSlot() >= seen.getOrDefault(s.executorId(), 0)) {
                missing.add(s);
            }
        }
        return missing;
    }

    private List<SlotResult> runStage(List<BenchmarkSlot> slots, boolean wholeGpuPerTask) {
        List<Tuple2<BenchmarkSlot, scala.collection.immutable.Seq<String>>> placed = new ArrayList<>();
        for (BenchmarkSlot s : slots) {
            placed.add(new Tuple2<>(s, CollectionConverters.asScala(List.of(s.preferredLocation())).toList()));
        }
        ClassTag<BenchmarkSlot> tag = ClassTag$.MODULE$.apply(BenchmarkSlot.class);
        JavaRDD<BenchmarkSlot> rdd = JavaRDD.fromRDD(sc.makeRDD(CollectionConverters.asScala(placed).toSeq(), tag),
                tag);
        if (wholeGpuPerTask) {
            rdd = rdd.withResources(wholeGpuProfile());
        }
        sc.setJobDescription("moescore portability: " + slots.size() + " benchmark task(s)");
        ExecutorBenchmark body = benchmark;
        return rdd.map(body::run).collect();
    }

    /** Tasks that take one whole GPU of the application's executors, whatever spark.task.resource.gpu.amount is. */
    private static ResourceProfile wholeGpuProfile() {
        return new ResourceProfileBuilder().require(new TaskResourceRequests().resource(GPU, 1)).build();
    }
}
