package io.moescore.report;

import java.awt.Color;
import java.util.ArrayList;
import java.util.List;

/**
 * Lines over a numeric x axis, one color per series with a legend; NaN values break a line. Laid out once, drawn on
 * any {@link ChartCanvas} (inline SVG in the HTML reports).
 */
public final class LineChart {
    private static final int LEFT = 70;
    private static final int TOP = 40;
    private static final int PLOT_WIDTH = 760;
    private static final int PLOT_HEIGHT = 240;
    private static final int LEGEND_LINE = 18;

    /** One line: its name in the legend and its y value at each x (NaN: none). */
    public record Series(String name, double[] y) {
    }

    private final String title;
    private final String xLabel;
    private final String yLabel;
    private final double[] x;
    private final List<Series> series = new ArrayList<>();
    private boolean points;

    /** @param x the x value of each point, increasing */
    public LineChart(String title, String xLabel, String yLabel, double[] x) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
        this.x = x.clone();
    }

    public LineChart add(String name, double[] y) {
        if (y.length != x.length) {
            throw new IllegalArgumentException("series " + name + " has " + y.length + " points, the x axis "
                    + x.length);
        }
        series.add(new Series(name, y.clone()));
        return this;
    }

    /** Marks each point instead of joining them (a scatter plot: each series a few points, x need not increase). */
    public LineChart points() {
        points = true;
        return this;
    }

    public int width() {
        return LEFT + PLOT_WIDTH + 30;
    }

    public int height() {
        return TOP + PLOT_HEIGHT + 45 + series.size() * LEGEND_LINE + 10;
    }

    public void draw(ChartCanvas c) {
        double max = series.stream().flatMapToDouble(s -> java.util.Arrays.stream(s.y()))
                .filter(Double::isFinite).max().orElse(1);
        double top = Charts.niceCeiling(max);
        double x0 = x.length == 0 ? 0 : java.util.Arrays.stream(x).min().orElse(0);
        double x1 = x.length < 2 ? x0 + 1 : java.util.Arrays.stream(x).max().orElse(x0 + 1);
        if (!(x1 > x0)) {  // one x value: an axis of width 1 around it
            x0 -= 0.5;
            x1 = x0 + 1;
        }
        double bottom = TOP + PLOT_HEIGHT;
        c.text(LEFT, 22, title, 15, ChartCanvas.Anchor.START, Color.BLACK);
        for (int i = 0; i <= 4; i++) {
            double v = top * i / 4;
            double y = bottom - PLOT_HEIGHT * v / top;
            c.line(LEFT, y, LEFT + PLOT_WIDTH, y, new Color(0xdddddd));
            c.text(LEFT - 6, y + 4, Charts.tick(v), 11, ChartCanvas.Anchor.END, Color.DARK_GRAY);
        }
        c.text(12, TOP - 8, yLabel, 11, ChartCanvas.Anchor.START, Color.DARK_GRAY);
        boolean whole = java.util.Arrays.stream(x).allMatch(v -> v == Math.rint(v));
        double step = whole ? Math.max(1, Math.ceil((x1 - x0) / 8)) : (x1 - x0) / 5;
        for (double v = x0; v <= x1 + 1e-9 * Math.abs(x1); v += step) {
            double px = px(v, x0, x1);
            c.line(px, bottom, px, bottom + 4, Color.BLACK);
            c.text(px, bottom + 16, whole ? String.valueOf((long) v) : Charts.tick(v), 10, ChartCanvas.Anchor.MIDDLE,
                    Color.DARK_GRAY);
        }
        c.text(LEFT + PLOT_WIDTH / 2.0, bottom + 32, xLabel, 11, ChartCanvas.Anchor.MIDDLE, Color.DARK_GRAY);
        c.line(LEFT, bottom, LEFT + PLOT_WIDTH, bottom, Color.BLACK);
        for (int s = 0; s < series.size(); s++) {
            double[] y = series.get(s).y();
            for (int i = 0; points && i < x.length; i++) {
                if (Double.isFinite(y[i])) {
                    c.rect(px(x[i], x0, x1) - 4, py(y[i], top) - 4, 8, 8, Charts.color(s));
                }
            }
            for (int i = 1; !points && i < x.length; i++) {
                if (Double.isFinite(y[i - 1]) && Double.isFinite(y[i])) {
                    c.line(px(x[i - 1], x0, x1), py(y[i - 1], top), px(x[i], x0, x1), py(y[i], top), Charts.color(s));
                }
            }
            if (!points && x.length == 1 && Double.isFinite(y[0])) {
                c.rect(px(x[0], x0, x1) - 2, py(y[0], top) - 2, 4, 4, Charts.color(s));
            }
        }
        double legendTop = bottom + 50;
        for (int s = 0; s < series.size(); s++) {
            double y = legendTop + s * LEGEND_LINE;
            c.rect(LEFT, y - 10, 12, 12, Charts.color(s));
            c.text(LEFT + 18, y, series.get(s).name(), 11, ChartCanvas.Anchor.START, Color.BLACK);
        }
    }

    private double px(double v, double x0, double x1) {
        return LEFT + PLOT_WIDTH * (v - x0) / (x1 - x0);
    }

    private static double py(double v, double top) {
        return TOP + PLOT_HEIGHT - PLOT_HEIGHT * v / top;
    }

    public String toSvg() {
        SvgCanvas svg = new SvgCanvas(width(), height());
        draw(svg);
        return svg.finish();
    }
}
