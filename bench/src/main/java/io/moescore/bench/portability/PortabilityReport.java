package io.moescore.bench.portability;

import io.moescore.report.Html;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.io.OutputStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The human-readable side of a result set: a self-contained HTML page (inline SVG charts, inline CSS, no scripts
 * and nothing fetched) with the speedup and throughput charts and the whole table, and the same charts as PNG files.
 */
final class PortabilityReport {
    private final List<PortabilityRow> rows;
    private final List<GroupedBarChart> charts = new ArrayList<>();
    private final List<String> chartFiles = new ArrayList<>();

    PortabilityReport(List<PortabilityRow> rows) {
        this.rows = List.copyOf(rows);
        add("speedup-24-over-dense", GroupedBarChart.of("2:4 over dense speedup, per GPU (above the red line: 2:4 "
                + "is faster)", "x dense", 1.0, rows, r -> shortShape(r) + "\n" + r.tokens() + " tokens",
                PortabilityRow::speedup24OverDense));
        add("expert-layer-tflops", GroupedBarChart.of("Expert layer, dense-equivalent TFLOP/s", "TFLOP/s", null,
                rows.stream().filter(r -> PortabilityRow.EXPERT_LAYER.equals(r.kernel())).toList(),
                r -> shortShape(r) + " " + r.pattern() + "\n" + r.tokens() + " tokens", PortabilityRow::tflops));
        add("attention-lm-head-tflops", GroupedBarChart.of("Attention and lm_head, TFLOP/s", "TFLOP/s", null,
                rows.stream().filter(r -> PortabilityRow.ATTENTION.equals(r.kernel())
                        || PortabilityRow.LM_HEAD.equals(r.kernel())).toList(),
                r -> r.kernel() + "\n" + r.shape(), PortabilityRow::tflops));
    }

    private void add(String file, GroupedBarChart chart) {
        if (!chart.isEmpty()) {
            charts.add(chart);
            chartFiles.add(file);
        }
    }

    /** The case's shape without its sizes (Mixtral-8x7B), and which kernel where it is not the expert layer. */
    private static String shortShape(PortabilityRow r) {
        String name = r.shape() == null ? "-" : r.shape().split(" ", 2)[0];
        return PortabilityRow.EXPERT_LAYER.equals(r.kernel()) ? name : r.kernel() + " " + name;
    }

    /** Writes DIR/report.html and DIR/charts/NAME.png, on any Hadoop file system. */
    void write(FileSystem fs, Path dir) throws IOException {
        try (OutputStream out = fs.create(new Path(dir, "report.html"), true)) {
            out.write(html().getBytes(StandardCharsets.UTF_8));
        }
        for (int i = 0; i < charts.size(); i++) {
            GroupedBarChart chart = charts.get(i);
            try (ImageCanvas image = new ImageCanvas(chart.width(), chart.height());
                 OutputStream out = fs.create(new Path(dir, "charts/" + chartFiles.get(i) + ".png"), true)) {
                chart.draw(image);
                image.writePng(out);
            }
        }
    }

    String html() {
        StringBuilder h = new StringBuilder();
        TreeSet<String> runs = new TreeSet<>();
        TreeSet<String> devices = new TreeSet<>();
        rows.forEach(r -> {
            runs.add(r.runLabel());
            devices.add(r.deviceKey());
        });
        long errors = rows.stream().filter(r -> r.error() != null).count();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<title>moescore portability report</title>\n<style>")
                .append("body{font-family:sans-serif;margin:20px;color:#222}")
                .append("table{border-collapse:collapse;font-size:12px}")
                .append("th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;white-space:nowrap}")
                .append("th{background:#eee;position:sticky;top:0}tr.error td{background:#fde8e8}")
                .append(".chart{margin:16px 0;overflow-x:auto}</style></head><body>\n")
                .append("<h1>moescore portability report</h1>\n<p>")
                .append(rows.size()).append(" rows from ").append(devices.size()).append(" device(s) in run(s) ")
                .append(Html.escape(String.join(", ", runs))).append("; ").append(errors)
                .append(" row(s) with an error. Generated ").append(Instant.now()).append(".</p>\n");
        for (GroupedBarChart chart : charts) {
            h.append("<div class=\"chart\">").append(chart.toSvg()).append("</div>\n");
        }
        if (charts.isEmpty()) {
            h.append("<p>No figures to chart: every row carries an error (see the table).</p>\n");
        }
        h.append("<h2>All results</h2>\n<table id=\"results\">\n<thead><tr>");
        for (String column : PortabilityRow.columns()) {
            h.append("<th>").append(column).append("</th>");
        }
        h.append("</tr></thead>\n<tbody>\n");
        for (PortabilityRow r : rows) {
            h.append(r.error() != null ? "<tr class=\"error\">" : "<tr>");
            for (Object v : cells(r)) {
                h.append("<td>").append(Html.escape(format(v))).append("</td>");
            }
            h.append("</tr>\n");
        }
        return h.append("</tbody></table>\n</body></html>\n").toString();
    }

    private static Object[] cells(PortabilityRow r) {
        return new Object[] {r.runLabel(), r.host(), r.executorId(), r.gpuAddress(), r.backend(), r.deviceName(),
            r.computeCapability(), r.smCount(), r.memoryBytes(), r.smClockMhz(), r.memoryClockMhz(), r.driverVersion(),
            r.cudaVersion(), r.kernel(), r.shape(), r.tokens(), r.dtype(), r.pattern(), r.medianMs(), r.tflops(),
            r.gbps(), r.speedup24OverDense(), r.tileConfig(), r.error()};
    }

    private static String format(Object v) {
        if (v == null) {
            return "";
        }
        if (v instanceof Double d) {
            return String.format(Locale.ROOT, Math.abs(d) >= 100 ? "%.1f" : "%.3f", d);
        }
        return v.toString();
    }
}
