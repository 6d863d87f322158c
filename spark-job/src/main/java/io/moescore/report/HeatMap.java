package io.moescore.report;

import java.awt.Color;

/**
 * A grid of values, one colored cell each (white at the lowest value, dark red at the highest; NaN grey), rows
 * labeled on the left, with a scale. For values over rows and time (a layer's load imbalance per window).
 */
public final class HeatMap {
    private static final int LEFT = 70;
    private static final int TOP = 40;
    private static final int PLOT_WIDTH = 760;
    private static final int ROW = 14;

    private final String title;
    private final String xLabel;
    private final String[] rows;
    private final double[][] values;

    /** @param values {@code values[row][column]}, every row as long */
    public HeatMap(String title, String xLabel, String[] rows, double[][] values) {
        this.title = title;
        this.xLabel = xLabel;
        this.rows = rows.clone();
        this.values = values;
    }

    public int width() {
        return LEFT + PLOT_WIDTH + 30;
    }

    public int height() {
        return TOP + rows.length * ROW + 70;
    }

    public void draw(ChartCanvas c) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double[] row : values) {
            for (double v : row) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        int columns = values.length == 0 ? 0 : values[0].length;
        double cell = columns == 0 ? PLOT_WIDTH : (double) PLOT_WIDTH / columns;
        c.text(LEFT, 22, title, 15, ChartCanvas.Anchor.START, Color.BLACK);
        for (int r = 0; r < rows.length; r++) {
            double y = TOP + r * ROW;
            c.text(LEFT - 6, y + ROW - 3, rows[r], 10, ChartCanvas.Anchor.END, Color.DARK_GRAY);
            for (int col = 0; col < columns; col++) {
                c.rect(LEFT + col * cell, y, Math.max(cell, 0.5), ROW - 1, color(values[r][col], lo, hi));
            }
        }
        double bottom = TOP + rows.length * ROW;
        c.text(LEFT + PLOT_WIDTH / 2.0, bottom + 16, xLabel, 11, ChartCanvas.Anchor.MIDDLE, Color.DARK_GRAY);
        if (lo <= hi) {
            for (int i = 0; i < 100; i++) {
                c.rect(LEFT + i * 2.0, bottom + 28, 2, 10, color(lo + (hi - lo) * i / 99.0, lo, hi));
            }
            c.text(LEFT, bottom + 52, Charts.tick(lo), 10, ChartCanvas.Anchor.START, Color.DARK_GRAY);
            c.text(LEFT + 200, bottom + 52, Charts.tick(hi), 10, ChartCanvas.Anchor.END, Color.DARK_GRAY);
        }
    }

    private static Color color(double v, double lo, double hi) {
        if (!Double.isFinite(v)) {
            return new Color(0xcccccc);
        }
        double t = hi > lo ? (v - lo) / (hi - lo) : 0;
        return new Color((int) Math.round(255 - t * (255 - 0x99)), (int) Math.round(255 - t * 255),
                (int) Math.round(255 - t * 255));
    }

    public String toSvg() {
        SvgCanvas svg = new SvgCanvas(width(), height());
        draw(svg);
        return svg.finish();
    }
}
