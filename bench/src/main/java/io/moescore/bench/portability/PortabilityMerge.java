package io.moescore.bench.portability;

import io.moescore.spark.MoeScoreJob;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moescore portability merge}: one report from result sets of runs that never ran together (other
 * clusters, other days). Rows keep their run labels; kernel caches of one GPU model are united. Runs in local mode
 * (no cluster needed) unless spark.master says otherwise.
 */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Combines the result sets of several portability runs into one result set and report.")
public final class PortabilityMerge implements Callable<Integer> {
    @Option(names = "--inputs", required = true, split = ",", description = "output folders of portability runs")
    List<String> inputs;
    @Option(names = "--output", required = true, description = "folder for the merged result set and report")
    String output;
    @Option(names = "--mode", defaultValue = "error", description = "error or overwrite when the output exists")
    String mode;

    @Override
    public Integer call() throws Exception {
        SparkSession spark = SparkSession.builder().appName("moescore portability merge")
                .master(System.getProperty("spark.master", "local[1]")).getOrCreate();
        try {
            merge(spark, inputs, output, mode.equals("overwrite"));
            return MoeScoreJob.EXIT_OK;
        } catch (IllegalArgumentException e) {
            System.err.println("moescore portability merge: " + e.getMessage());
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        } finally {
            spark.stop();
        }
    }

    public static void merge(SparkSession spark, List<String> inputs, String output, boolean overwrite)
            throws Exception {
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException("--inputs names no result set");
        }
        List<PortabilityRow> rows = new ArrayList<>();
        Map<String, Map<String, String>> caches = new TreeMap<>();
        for (String input : inputs) {
            rows.addAll(ResultStore.readRows(spark, input));
            ResultStore.readKernelCaches(spark, input).forEach((file, choices) ->
                    caches.computeIfAbsent(file, k -> new TreeMap<>()).putAll(choices));
        }
        ResultStore.prepare(spark, output, overwrite);
        ResultStore.write(spark, output, rows, caches);
        System.err.printf("moescore portability merge: %d rows from %d result set(s); report: %s/report.html%n",
                rows.size(), inputs.size(), output);
    }
}
