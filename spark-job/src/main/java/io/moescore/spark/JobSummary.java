package io.moescore.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.score.ScoreSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;

/**
 * Totals of a scoring job, from the task statistics: one attempt counted per partition (retried or speculative
 * attempts would otherwise count twice), per executor its device and throughput, and the expert load. A run with
 * {@code --resume} adds what it reused from earlier runs and what it scored ({@code resume}; null otherwise): the
 * other totals count this run's scoring only. {@code settings}: the scoring settings the job ran with (null: not
 * recorded). {@code entriesPerDevice}: where executors spread their experts over several devices ({@code --devices}),
 * the routing entries (token-expert pairs) each device index computed, summed over the executors' engines (empty
 * otherwise; {@link #entriesPerDevice(Collection)}).
 */
public record JobSummary(long rows, long errorRows, long tokens, double wallSeconds, List<ExecutorLine> executors,
                         long[][] expertLoad, ResumeCounts resume, ScoreSettings settings, long[] entriesPerDevice) {

    public JobSummary(long rows, long errorRows, long tokens, double wallSeconds, List<ExecutorLine> executors,
                      long[][] expertLoad) {
        this(rows, errorRows, tokens, wallSeconds, executors, expertLoad, null, null, new long[0]);
    }

    /** Splits (and their rows) a resumed run took from earlier runs, and those it scored itself. */
    public record ResumeCounts(int splitsReused, long rowsReused, long errorRowsReused, int splitsScored,
                               long rowsScored) {
    }

    public JobSummary withResume(ResumeCounts counts) {
        return new JobSummary(rows, errorRows, tokens, wallSeconds, executors, expertLoad, counts, settings,
                entriesPerDevice);
    }

    public JobSummary withSettings(ScoreSettings scoring) {
        return new JobSummary(rows, errorRows, tokens, wallSeconds, executors, expertLoad, resume, scoring,
                entriesPerDevice);
    }

    /** Rows of the output that carry an error, reused ones included. */
    public long errorRowsInOutput() {
        return errorRows + (resume == null ? 0 : resume.errorRowsReused());
    }

    /**
     * One executor's share: its device and how fast it scored while busy, busy being the time at least one of
     * its tasks was scoring (concurrent tasks sharing one GPU count once).
     */
    public record ExecutorLine(String executorId, String host, String device, long rows, long tokens,
                               double busySeconds) {
        public double tokensPerSecond() {
            return busySeconds > 0 ? tokens / busySeconds : 0;
        }
    }

    public static JobSummary of(Collection<TaskStats> stats, double wallSeconds) {
        Map<String, TaskStats> perPartition = new TreeMap<>();
        for (TaskStats s : stats) {
            perPartition.merge(s.stageId() + "/" + s.partitionId(), s, (a, b) -> a.attempt() >= b.attempt() ? a : b);
        }
        long rows = 0;
        long errors = 0;
        long tokens = 0;
        long[][] load = null;
        Map<String, long[]> byExecutor = new TreeMap<>();
        Map<String, List<long[]>> intervals = new TreeMap<>();
        Map<String, TaskStats> anyOf = new LinkedHashMap<>();
        for (TaskStats s : perPartition.values()) {
            rows += s.rows();
            errors += s.errorRows();
            tokens += s.tokens();
            long[] e = byExecutor.computeIfAbsent(s.executorId(), k -> new long[2]);
            e[0] += s.rows();
            e[1] += s.tokens();
            intervals.computeIfAbsent(s.executorId(), k -> new java.util.ArrayList<>())
                    .add(new long[] {s.startNanos(), s.endNanos()});
            anyOf.putIfAbsent(s.executorId(), s);
            if (load == null) {
                load = new long[s.expertLoad().length][];
                for (int l = 0; l < load.length; l++) {
                    load[l] = new long[s.expertLoad()[l].length];
                }
            }
            for (int l = 0; l < load.length; l++) {
                for (int x = 0; x < load[l].length; x++) {
                    load[l][x] += s.expertLoad()[l][x];
                }
            }
        }
        List<ExecutorLine> executors = byExecutor.entrySet().stream().map(en -> {
            TaskStats first = anyOf.get(en.getKey());
            return new ExecutorLine(en.getKey(), first.host(), first.device(), en.getValue()[0], en.getValue()[1],
                    unionNanos(intervals.get(en.getKey())) / 1e9);
        }).toList();
        return new JobSummary(rows, errors, tokens, wallSeconds, executors, load == null ? new long[0][] : load, null,
                null, entriesPerDevice(stats));
    }

    /**
     * Per device index, the routing entries the job's tasks computed, summed over the engines they ran on: per engine
     * (an executor's, by its first device) its latest counts less its earliest, over every attempt, since the tasks
     * running on one engine at once share its counters (so a failed attempt's entries count: the devices did compute
     * them). Empty where no engine spread its experts.
     */
    static long[] entriesPerDevice(Collection<TaskStats> stats) {
        Map<String, long[][]> byEngine = new TreeMap<>();  // engine -> {earliest, latest}
        for (TaskStats s : stats) {
            TaskStats.EngineEntries e = s.entries();
            if (e == null) {
                continue;
            }
            long[][] span = byEngine.computeIfAbsent(e.engine(), k -> new long[][] {e.before().clone(),
                    e.after().clone()});
            for (int d = 0; d < Math.min(span[0].length, e.before().length); d++) {
                span[0][d] = Math.min(span[0][d], e.before()[d]);
                span[1][d] = Math.max(span[1][d], e.after()[d]);
            }
        }
        long[] sum = new long[byEngine.values().stream().mapToInt(span -> span[1].length).max().orElse(0)];
        for (long[][] span : byEngine.values()) {
            for (int d = 0; d < span[1].length; d++) {
                sum[d] += span[1][d] - span[0][d];
            }
        }
        return sum;
    }

    /** The length of the union of [start, end) intervals. */
    static long unionNanos(List<long[]> intervals) {
        List<long[]> sorted = new java.util.ArrayList<>(intervals);
        sorted.sort(java.util.Comparator.comparingLong(i -> i[0]));
        long total = 0;
        long coveredTo = Long.MIN_VALUE;
        for (long[] i : sorted) {
            long from = Math.max(i[0], coveredTo);
            if (i[1] > from) {
                total += i[1] - from;
                coveredTo = i[1];
            }
        }
        return total;
    }

    public double tokensPerSecond() {
        return wallSeconds > 0 ? tokens / wallSeconds : 0;
    }

    public void print(PrintStream out) {
        out.printf("moescore: %d rows (%d with errors), %d tokens in %.1f s: %.0f tokens/s%n", rows, errorRows, tokens,
                wallSeconds, tokensPerSecond());
        for (ExecutorLine e : executors) {
            out.printf("  executor %-6s %-20s %-28s %8d rows %10d tokens %10.0f tokens/s while busy%n",
                    e.executorId(), e.host(), e.device(), e.rows(), e.tokens(), e.tokensPerSecond());
        }
        if (entriesPerDevice.length > 0) {
            out.println("moescore: routed entries per device: " + java.util.Arrays.toString(entriesPerDevice)
                    .replaceAll("[\\[\\]]", ""));
        }
        if (resume != null) {
            out.printf("moescore: resumed: %d splits (%d rows) reused from earlier runs, %d splits (%d rows) scored%n",
                    resume.splitsReused(), resume.rowsReused(), resume.splitsScored(), resume.rowsScored());
        }
    }

    public ObjectNode toJson() {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("rows", rows);
        root.put("rows_with_errors", errorRows);
        root.put("tokens", tokens);
        root.put("seconds", wallSeconds);
        root.put("tokens_per_second", tokensPerSecond());
        ArrayNode ex = root.putArray("executors");
        for (ExecutorLine e : executors) {
            ObjectNode n = ex.addObject();
            n.put("executor", e.executorId());
            n.put("host", e.host());
            n.put("device", e.device());
            n.put("rows", e.rows());
            n.put("tokens", e.tokens());
            n.put("busy_seconds", e.busySeconds());
            n.put("tokens_per_second", e.tokensPerSecond());
        }
        if (resume != null) {
            ObjectNode r = root.putObject("resume");
            r.put("splits_reused", resume.splitsReused());
            r.put("rows_reused", resume.rowsReused());
            r.put("rows_with_errors_reused", resume.errorRowsReused());
            r.put("splits_scored", resume.splitsScored());
            r.put("rows_scored", resume.rowsScored());
        }
        if (settings != null) {
            root.set("settings", mapper.valueToTree(settings.describe()));
            if (settings.batchDependentScores()) {  // only then: --routing batch-top-k:K, one expert set per batch
                root.put("batch_dependent_scores", true);
            }
        }
        if (entriesPerDevice.length > 0) {  // experts over several devices: each device index's routing entries
            ArrayNode perDevice = root.putArray("entries_per_device");
            java.util.Arrays.stream(entriesPerDevice).forEach(perDevice::add);
        }
        ArrayNode layers = root.putArray("expert_tokens_per_layer");
        for (long[] layer : expertLoad) {
            ArrayNode a = layers.addArray();
            for (long c : layer) {
                a.add(c);
            }
        }
        return root;
    }

    /** Writes the summary as JSON to any Hadoop file system path. */
    public void write(String path, Configuration conf) throws IOException {
        JsonFiles.write(path, conf, toJson());
    }
}
