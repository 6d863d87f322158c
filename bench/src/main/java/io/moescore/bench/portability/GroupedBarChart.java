package io.moescore.bench.portability;

import io.moescore.report.ChartCanvas;
import io.moescore.report.Charts;
import io.moescore.report.SvgCanvas;
import java.awt.Color;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A grouped bar chart: one group per case (shape and tokens), one bar per device within each group, one color per
 * device with a legend; an optional reference line (1.0 for speedups). Laid out once, drawn on any
 * {@link ChartCanvas}, so the SVG in the report and the PNG file show the same picture.
 */
final class GroupedBarChart {
    private static final int BAR = 14;
    private static final int GROUP_GAP = 24;
    private static final int LEFT = 70;
    private static final int TOP = 40;
    private static final int PLOT_HEIGHT = 260;
    private static final int LEGEND_LINE = 18;

    private final String title;
    private final String unit;
    private final Double reference;
    private final List<String> groups = new ArrayList<>();
    private final List<String> series = new ArrayList<>();
    private final Map<String, Double> values = new LinkedHashMap<>();

    private GroupedBarChart(String title, String unit, Double reference) {
        this.title = title;
        this.unit = unit;
        this.reference = reference;
    }

    /** Rows with a value become bars: group from {@code group}, series from {@link PortabilityRow#deviceKey()}. */
    static GroupedBarChart of(String title, String unit, Double reference, List<PortabilityRow> rows,
                              Function<PortabilityRow, String> group, Function<PortabilityRow, Double> value) {
        GroupedBarChart chart = new GroupedBarChart(title, unit, reference);
        for (PortabilityRow r : rows) {
            Double v = value.apply(r);
            if (v == null || v.isNaN() || v.isInfinite()) {
                continue;
            }
            String g = group.apply(r);
            if (!chart.groups.contains(g)) {
                chart.groups.add(g);
            }
            if (!chart.series.contains(r.deviceKey())) {
                chart.series.add(r.deviceKey());
            }
            chart.values.put(g + "\u0000" + r.deviceKey(), v);
        }
        return chart;
    }

    boolean isEmpty() {
        return values.isEmpty();
    }

    String title() {
        return title;
    }

    /** Wide enough for the group's bars and for its label (about 6 px per character at 10 px). */
    private int groupWidth() {
        int label = groups.stream().flatMap(g -> java.util.Arrays.stream(g.split("\n"))).mapToInt(String::length)
                .max().orElse(0);
        return Math.max(Math.max(90, series.size() * BAR + GROUP_GAP), label * 6 + 10);
    }

    int width() {
        int groupWidth = groupWidth();
        int legend = series.stream().mapToInt(String::length).max().orElse(0) * 7 + LEFT + 30;
        return Math.max(Math.max(640, legend), LEFT + groups.size() * groupWidth + 20);
    }

    int height() {
        return TOP + PLOT_HEIGHT + 50 + series.size() * LEGEND_LINE + 10;
    }

    void draw(ChartCanvas c) {
        int groupWidth = groupWidth();
        double max = values.values().stream().mapToDouble(Double::doubleValue).max().orElse(1);
        if (reference != null) {
            max = Math.max(max, reference);
        }
        double top = Charts.niceCeiling(max);
        double bottom = TOP + PLOT_HEIGHT;
        c.text(LEFT, 22, title, 15, ChartCanvas.Anchor.START, Color.BLACK);
        for (int i = 0; i <= 4; i++) {
            double v = top * i / 4;
            double y = bottom - PLOT_HEIGHT * v / top;
            c.line(LEFT, y, width() - 10, y, new Color(0xdddddd));
            c.text(LEFT - 6, y + 4, Charts.tick(v), 11, ChartCanvas.Anchor.END, Color.DARK_GRAY);
        }
        c.text(12, TOP - 8, unit, 11, ChartCanvas.Anchor.START, Color.DARK_GRAY);
        for (int g = 0; g < groups.size(); g++) {
            double x0 = LEFT + g * groupWidth + (groupWidth - series.size() * BAR) / 2.0;
            for (int s = 0; s < series.size(); s++) {
                Double v = values.get(groups.get(g) + "\u0000" + series.get(s));
                if (v != null) {
                    double h = PLOT_HEIGHT * Math.max(0, v) / top;
                    c.rect(x0 + s * BAR, bottom - h, BAR - 2, h, Charts.color(s));
                }
            }
            String[] label = groups.get(g).split("\n", 2);
            double mid = LEFT + g * groupWidth + groupWidth / 2.0;
            c.text(mid, bottom + 16, label[0], 10, ChartCanvas.Anchor.MIDDLE, Color.BLACK);
            if (label.length > 1) {
                c.text(mid, bottom + 29, label[1], 10, ChartCanvas.Anchor.MIDDLE, Color.DARK_GRAY);
            }
        }
        c.line(LEFT, bottom, width() - 10, bottom, Color.BLACK);
        if (reference != null) {
            double y = bottom - PLOT_HEIGHT * reference / top;
            c.line(LEFT, y, width() - 10, y, Color.RED);
        }
        double legendTop = bottom + 50;
        for (int s = 0; s < series.size(); s++) {
            double y = legendTop + s * LEGEND_LINE;
            c.rect(LEFT, y - 10, 12, 12, Charts.color(s));
            c.text(LEFT + 18, y, series.get(s), 11, ChartCanvas.Anchor.START, Color.BLACK);
        }
    }

    String toSvg() {
        SvgCanvas svg = new SvgCanvas(width(), height());
        draw(svg);
        return svg.finish();
    }
}
