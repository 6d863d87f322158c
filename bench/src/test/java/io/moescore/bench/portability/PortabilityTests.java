package io.moescore.bench.portability;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;

/** Helpers of the portability tests: the demo model, headless Chromium screenshots, pixel counts. */
final class PortabilityTests {
    private PortabilityTests() {
    }

    static Path demoModel() {
        Path p = Path.of("").toAbsolutePath();
        while (!Files.exists(p.resolve("demo/tiny-moe-code/config.json"))) {
            p = p.getParent();
        }
        return p.resolve("demo/tiny-moe-code");
    }

    /** Renders an HTML file with headless Chromium (the documented check) and reads the screenshot. */
    static BufferedImage screenshot(Path chromium, Path html, Path png, Path work) throws IOException,
            InterruptedException {
        List<String> cmd = List.of(chromium.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", "--user-data-dir=" + work.resolve("chromium-profile"),
                "--window-size=1400,1600", "--screenshot=" + png, html.toUri().toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(work.resolve("chromium.log").toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("chromium did not finish in 60 s: " + cmd);
        }
        if (!Files.isRegularFile(png)) {
            throw new IllegalStateException("chromium wrote no screenshot (exit " + p.exitValue() + "): "
                    + Files.readString(work.resolve("chromium.log")));
        }
        return ImageIO.read(png.toFile());
    }

    /** Pixels in rows [fromY, toY) that are clearly coloured (bars), not white, grey or black (text, grid). */
    static int colouredPixels(BufferedImage image, int fromY, int toY) {
        int count = 0;
        for (int y = Math.max(0, fromY); y < Math.min(toY, image.getHeight()); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                int rgb = image.getRGB(x, y);
                int r = (rgb >> 16) & 0xff;
                int g = (rgb >> 8) & 0xff;
                int b = rgb & 0xff;
                if (Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > 60) {
                    count++;
                }
            }
        }
        return count;
    }
}
