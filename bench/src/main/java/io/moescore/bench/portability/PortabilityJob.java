package io.moescore.bench.portability;

import io.moescore.spark.JobExit;
import io.moescore.spark.MoeScoreJob;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The portability benchmark (spark-submit main class, and {@code moescore portability}): one benchmark task on every
 * executor GPU ({@link SlotScheduler}), each running the kernel suite and a model-level run ({@link SuiteRunner}) on
 * its GPU, or on the CPU backend where an executor has none; the rows are gathered into one table and written with
 * a report ({@link ResultStore}). {@code moescore portability merge} combines several result sets.
 *
 * <p>Exit codes: 0 every device measured, 3 some rows carry an error (a GPU that failed, a slot no task reached),
 * 2 bad options, 1 anything else.
 */
@Command(name = "portability", mixinStandardHelpOptions = true, subcommands = PortabilityMerge.class,
        description = "Benchmarks the kernel suite on every executor GPU of the cluster and writes one table "
                + "(Parquet, CSV) and an HTML report with charts.")
public final class PortabilityJob implements Callable<Integer> {
    /** Required, but checked in {@link #call}: picocli would demand it of {@code portability merge} too. */
    @Option(names = "--output", description = "output folder (any Hadoop file system; a shared one on a multi-host "
            + "cluster); required")
    String output;
    @Option(names = "--suite", defaultValue = "full", description = "full (the issue's shapes, for GPUs) or quick "
            + "(toy sizes: seconds on a CPU) (default ${DEFAULT-VALUE})")
    String suite;
    @Option(names = "--backend", defaultValue = "auto", description = "auto or cuda: each executor's GPUs, the CPU "
            + "backend where it has none; cpu: the CPU backend everywhere (default ${DEFAULT-VALUE})")
    String backend;
    @Option(names = "--precision", defaultValue = "bf16", description = "GPU precision: bf16, fp16 or split-bf16")
    String precision;
    @Option(names = "--model", description = "a model directory every executor can read, for the model-level run "
            + "(without it, that row says skipped)")
    String model;
    @Option(names = "--label", description = "names this run in the table (default: the driver's host name)")
    String label;
    @Option(names = "--executors", defaultValue = "0", description = "wait for this many executors before "
            + "scheduling (default: spark.executor.instances, else those registered at the start)")
    int executors;
    @Option(names = "--wait-seconds", defaultValue = "120", description = "how long to wait for --executors")
    int waitSeconds;
    @Option(names = "--mode", defaultValue = "error", description = "error or overwrite when the output exists")
    String mode;

    public static void main(String[] args) {
        JobExit.exit(new CommandLine(new PortabilityJob()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        if (output == null) {
            System.err.println("moescore portability: --output is required");
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        }
        SparkSession spark = SparkSession.builder().appName("moescore portability").getOrCreate();
        try {
            return run(spark, options(spark), output, mode);
        } catch (IllegalArgumentException e) {
            System.err.println("moescore portability: " + e.getMessage());
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        } finally {
            spark.stop();
        }
    }

    PortabilityOptions options(SparkSession spark) {
        int expected = executors > 0 ? executors : spark.sparkContext().getConf().getInt("spark.executor.instances", 0);
        return new PortabilityOptions(KernelSuite.named(suite), backend, precision, model,
                label != null ? label : driverHost(), expected);
    }

    private static String driverHost() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "run";
        }
    }

    /** Runs the benchmark on a session and writes the result set; returns the exit code. */
    public static int run(SparkSession spark, PortabilityOptions options, String output, String mode)
            throws Exception {
        if (!mode.equals("error") && !mode.equals("overwrite")) {
            throw new IllegalArgumentException("--mode must be error or overwrite, not '" + mode + "'");
        }
        ResultStore.prepare(spark, output, mode.equals("overwrite"));
        SlotScheduler scheduler = new SlotScheduler(spark.sparkContext(), options);
        Map<String, String> executors = scheduler.awaitExecutors(options.executors(), Duration.ofSeconds(120));
        SlotScheduler.Outcome outcome = scheduler.run(executors);
        List<PortabilityRow> rows = new ArrayList<>();
        Map<String, Map<String, String>> caches = new TreeMap<>();
        for (SlotResult r : outcome.results()) {
            rows.addAll(r.rows());
            r.kernelChoicesByGpuModel().forEach((gpuModel, choices) ->
                    caches.computeIfAbsent(ResultStore.cacheFileName(gpuModel), k -> new TreeMap<>()).putAll(choices));
        }
        for (BenchmarkSlot missed : outcome.missing()) {
            rows.add(new PortabilityRow(options.runLabel(), missed.host(), missed.executorId(), null, null,
                    "unknown", null, null, null, null, null, null, null, "all", "-", 0, "-", "-", null, null, null,
                    null, null, "no benchmark task reached GPU slot " + missed.gpuSlot() + " of this executor in "
                    + SlotScheduler.ROUNDS + " rounds (lost, or busy past the locality wait)"));
        }
        rows = SpeedupTable.withSpeedups(rows);
        ResultStore.write(spark, output, rows, caches);
        long failed = rows.stream().filter(PortabilityJob::isFailure).count();
        System.err.printf("moescore portability: %d rows from %d task(s) on %d executor(s) (%d duplicate task(s) "
                        + "dropped, %d slot(s) missed), %d with an error; report: %s/report.html%n", rows.size(),
                outcome.results().size(), executors.size(), outcome.duplicates(), outcome.missing().size(), failed,
                output);
        return failed == 0 ? MoeScoreJob.EXIT_OK : MoeScoreJob.EXIT_ROW_ERRORS;
    }

    /** A row with an error other than a deliberately skipped case. */
    static boolean isFailure(PortabilityRow r) {
        return r.error() != null && !r.error().startsWith("skipped:");
    }
}
