package io.moescore.bench.portability;

import io.moescore.report.ChartCanvas;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Line2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import javax.imageio.ImageIO;

/**
 * A {@link ChartCanvas} drawn with Java2D into an image, written as PNG (headless AWT: no display needed). A JVM
 * without font libraries (a minimal JRE: AWT's font manager fails to load libfreetype) still gets the chart's bars
 * and axes, without text; the HTML report, whose SVG text the browser draws, keeps every label.
 */
final class ImageCanvas implements ChartCanvas, AutoCloseable {
    private static final boolean FONTS = fontsWork();
    private final BufferedImage image;
    private final Graphics2D g;

    ImageCanvas(int width, int height) {
        image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        rect(0, 0, width, height, Color.WHITE);
    }

    @Override
    public void rect(double x, double y, double width, double height, Color fill) {
        g.setColor(fill);
        g.fill(new Rectangle2D.Double(x, y, width, height));
    }

    @Override
    public void line(double x1, double y1, double x2, double y2, Color stroke) {
        g.setColor(stroke);
        g.draw(new Line2D.Double(x1, y1, x2, y2));
    }

    @Override
    public void text(double x, double y, String text, int size, Anchor anchor, Color color) {
        if (!FONTS) {
            return;
        }
        g.setColor(color);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, size));
        FontMetrics m = g.getFontMetrics();
        double w = m.stringWidth(text);
        double left = switch (anchor) {
            case START -> x;
            case MIDDLE -> x - w / 2;
            case END -> x - w;
        };
        g.drawString(text, (float) left, (float) y);
    }

    private static boolean fontsWork() {
        try {
            Graphics2D probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB).createGraphics();
            probe.getFontMetrics(new Font(Font.SANS_SERIF, Font.PLAIN, 12)).stringWidth("x");
            probe.dispose();
            return true;
        } catch (LinkageError | InternalError e) {
            System.err.println("moescore: this JVM cannot load fonts (" + e + "): PNG charts are drawn without text");
            return false;
        }
    }

    void writePng(OutputStream out) throws IOException {
        if (!ImageIO.write(image, "png", out)) {
            throw new IOException("this JDK has no PNG writer");
        }
    }

    @Override
    public void close() {
        g.dispose();
    }
}
