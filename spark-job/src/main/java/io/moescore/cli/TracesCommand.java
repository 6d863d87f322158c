package io.moescore.cli;

import io.moescore.placement.LoadSeries;
import io.moescore.placement.LoadStats;
import io.moescore.placement.RoutingTrace;
import io.moescore.report.TraceReport;
import io.moescore.spark.trace.TokenTrace;
import io.moescore.spark.trace.TraceInputs;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code moescore traces}: load statistics of routing traces, printed and as an HTML report with charts. */
@Command(name = "traces", mixinStandardHelpOptions = true,
        description = "Prints per-layer expert load statistics of routing traces (max/mean, Gini, drift between "
                + "consecutive windows) and writes an HTML report with charts. PATH: a scoring job's "
                + "--routing-trace folder or one of its .parquet/.arrow files, SmartMoE's table_iter{I}_rank{R}.log "
                + "files or a folder of them, or their .csv(.gz) form; several paths make one trace.")
final class TracesCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "PATH", description = "routing traces (local)")
    List<Path> paths;

    @Option(names = "--window", paramLabel = "STEPS", defaultValue = "1",
            description = "steps (batches; SmartMoE: iterations) per window (default: ${DEFAULT-VALUE})")
    int window;

    @Option(names = "--report", paramLabel = "FILE", defaultValue = "routing-trace-report.html",
            description = "where to write the HTML report (default: ${DEFAULT-VALUE})")
    Path report;

    @Override
    public Integer call() {
        if (window < 1) {
            System.err.println("moescore traces: --window must be at least 1, got " + window);
            return 2;
        }
        RoutingTrace trace;
        try {
            trace = TraceInputs.read(paths);
        } catch (IllegalArgumentException e) {
            System.err.println("moescore traces: " + e.getMessage());
            return 2;
        }
        List<LoadSeries> series = trace.series();
        List<LoadStats> stats = new ArrayList<>();
        series.forEach(s -> stats.add(LoadStats.of(s, window)));
        int steps = series.get(0).numSteps();
        print(System.out, trace, steps, stats);
        try {
            printTokenRouting(System.out, paths);
        } catch (IllegalArgumentException e) {
            System.err.println("moescore traces: " + e.getMessage());
            return 2;
        }
        try {
            Files.writeString(report, TraceReport.html(trace.source(), trace.numExperts(), steps, stats));
        } catch (IOException e) {
            System.err.println("moescore traces: cannot write --report " + report + ": " + e);
            return 1;
        }
        System.err.println("moescore traces: wrote " + report);
        return 0;
    }

    /** Says which trace folders also hold each token's routing ({@code --routing-trace-tokens}), and how much. */
    static void printTokenRouting(PrintStream out, List<Path> paths) {
        for (Path p : paths) {
            long records = Files.isDirectory(p) ? TokenTrace.records(p) : -1;
            if (records >= 0) {
                out.printf("%s: token routing: %d records (one per scored row and MoE layer) in %s%n", p, records,
                        p.resolve(TokenTrace.FOLDER));
            }
        }
    }

    static void print(PrintStream out, RoutingTrace trace, int steps, List<LoadStats> stats) {
        out.printf("%s: %d MoE layers, %d experts, %d steps, %d records%n", trace.source(), stats.size(),
                trace.numExperts(), steps, trace.records().size());
        out.println(String.join("\t", TraceReport.COLUMNS));
        stats.forEach(s -> out.println(String.join("\t", TraceReport.cells(s))));
    }
}
