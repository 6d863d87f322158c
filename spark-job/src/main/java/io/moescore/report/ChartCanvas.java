package io.moescore.report;

import java.awt.Color;

/** What a chart draws on: an SVG document for the HTML report, or a Java2D image for the PNG files. */
public interface ChartCanvas {
    enum Anchor { START, MIDDLE, END }

    void rect(double x, double y, double width, double height, Color fill);

    void line(double x1, double y1, double x2, double y2, Color stroke);

    void text(double x, double y, String text, int size, Anchor anchor, Color color);
}
