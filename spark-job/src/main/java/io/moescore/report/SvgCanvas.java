package io.moescore.report;

import java.awt.Color;
import java.util.Locale;

/** A {@link ChartCanvas} that writes inline SVG (no scripts, no external references). */
public final class SvgCanvas implements ChartCanvas {
    private final StringBuilder svg = new StringBuilder();

    public SvgCanvas(int width, int height) {
        svg.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">%n", width, height, width, height));
        rect(0, 0, width, height, Color.WHITE);
    }

    @Override
    public void rect(double x, double y, double width, double height, Color fill) {
        svg.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>%n",
                x, y, width, height, hex(fill)));
    }

    @Override
    public void line(double x1, double y1, double x2, double y2, Color stroke) {
        svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>%n",
                x1, y1, x2, y2, hex(stroke)));
    }

    @Override
    public void text(double x, double y, String text, int size, Anchor anchor, Color color) {
        svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" "
                + "fill=\"%s\">%s</text>%n", x, y, size, anchor.name().toLowerCase(Locale.ROOT), hex(color),
                Html.escape(text)));
    }

    public String finish() {
        return svg + "</svg>\n";
    }

    private static String hex(Color c) {
        return String.format("#%02x%02x%02x", c.getRed(), c.getGreen(), c.getBlue());
    }
}
