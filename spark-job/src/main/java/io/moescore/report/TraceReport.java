package io.moescore.report;

import io.moescore.placement.LoadStats;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The HTML report of {@code moescore traces}: self-contained (inline SVG charts, inline CSS, no scripts, nothing
 * fetched), with each layer's imbalance over the whole trace and per window, the drift between windows, and the
 * per-layer table the command prints.
 */
public final class TraceReport {
    private TraceReport() {
    }

    public static String html(String source, int experts, int steps, List<LoadStats> layers) {
        int window = layers.isEmpty() ? 1 : layers.get(0).window();
        StringBuilder h = new StringBuilder();
        h.append(Html.pageStart("moescore routing trace report")).append("<p>").append(Html.escape(source)).append(": ")
                .append(layers.size()).append(" MoE layers, ").append(experts).append(" experts, ").append(steps)
                .append(" steps (batches), windows of ").append(window).append(" step(s). Generated ")
                .append(Instant.now()).append(".</p>\n");
        double[] layerX = layers.stream().mapToDouble(LoadStats::layer).toArray();
        LineChart perLayer = new LineChart("Expert load imbalance per layer (max/mean of the experts' tokens)", "layer",
                "max/mean", layerX)
                .add("whole trace", layers.stream().mapToDouble(LoadStats::maxOverMean).toArray())
                .add("windows: mean", layers.stream().mapToDouble(s -> mean(s.windowMaxOverMean())).toArray())
                .add("windows: max", layers.stream().mapToDouble(s -> Arrays.stream(s.windowMaxOverMean()).max()
                        .orElse(Double.NaN)).toArray());
        LineChart gini = new LineChart("Gini coefficient of the experts' tokens per layer", "layer", "Gini", layerX)
                .add("whole trace", layers.stream().mapToDouble(LoadStats::gini).toArray());
        int windows = layers.stream().mapToInt(s -> s.windowMaxOverMean().length).max().orElse(0);
        double[][] grid = new double[layers.size()][windows];
        for (int l = 0; l < layers.size(); l++) {
            Arrays.fill(grid[l], Double.NaN);
            double[] w = layers.get(l).windowMaxOverMean();
            System.arraycopy(w, 0, grid[l], 0, w.length);
        }
        HeatMap heat = new HeatMap("Max/mean per layer (rows) and window (columns)", "window (" + window
                + " step(s) each)", layers.stream().map(s -> "layer " + s.layer()).toArray(String[]::new), grid);
        double[] driftX = new double[Math.max(0, windows - 1)];
        Arrays.setAll(driftX, i -> i + 1);
        double[] driftMean = new double[driftX.length];
        double[] driftMax = new double[driftX.length];
        for (int w = 0; w < driftX.length; w++) {
            int col = w;
            double[] values = layers.stream().filter(s -> col < s.windowDrift().length)
                    .mapToDouble(s -> s.windowDrift()[col]).filter(Double::isFinite).toArray();
            driftMean[w] = mean(values);
            driftMax[w] = Arrays.stream(values).max().orElse(Double.NaN);
        }
        LineChart drift = new LineChart("Drift between consecutive windows (total variation of the load shares)",
                "window", "drift", driftX).add("mean over layers", driftMean).add("max over layers", driftMax);
        for (String svg : List.of(perLayer.toSvg(), gini.toSvg(), heat.toSvg(), driftX.length > 0 ? drift.toSvg()
                : "")) {
            if (!svg.isEmpty()) {
                h.append("<div class=\"chart\">").append(svg).append("</div>\n");
            }
        }
        h.append("<h2>Per layer</h2>\n<table><thead><tr>");
        for (String c : COLUMNS) {
            h.append("<th>").append(Html.escape(c)).append("</th>");
        }
        h.append("</tr></thead>\n<tbody>\n");
        for (LoadStats s : layers) {
            h.append("<tr>");
            for (String cell : cells(s)) {
                h.append("<td>").append(Html.escape(cell)).append("</td>");
            }
            h.append("</tr>\n");
        }
        return h.append("</tbody></table>\n</body></html>\n").toString();
    }

    /** The per-layer table's columns, as the command prints them too. */
    public static final List<String> COLUMNS = List.of("layer", "tokens", "max/mean", "Gini", "window max/mean mean",
            "window max/mean max", "drift mean", "drift max");

    /** One layer's row of the table. */
    public static List<String> cells(LoadStats s) {
        return List.of(String.valueOf(s.layer()), String.valueOf(s.tokens()), f(s.maxOverMean()), f(s.gini()),
                f(mean(s.windowMaxOverMean())), f(Arrays.stream(s.windowMaxOverMean()).max().orElse(Double.NaN)),
                f(s.meanDrift()), f(s.maxDrift()));
    }

    private static String f(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "-";
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).filter(Double::isFinite).average().orElse(Double.NaN);
    }
}
