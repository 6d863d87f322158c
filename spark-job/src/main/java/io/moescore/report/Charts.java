package io.moescore.report;

import java.awt.Color;
import java.util.Locale;

/** What charts share: the series colors, axis tops and tick labels. */
public final class Charts {
    /** One color per series, in order (matplotlib's tab10). */
    public static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
        new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f),
        new Color(0xbcbd22), new Color(0x17becf)};

    private Charts() {
    }

    /** The color of series {@code i}. */
    public static Color color(int i) {
        return PALETTE[i % PALETTE.length];
    }

    /** A round axis top at least 5% above {@code v}: 1, 2, 2.5 or 5 times a power of ten (1 where v is not above 0). */
    public static double niceCeiling(double v) {
        if (!(v > 0)) {
            return 1;
        }
        double magnitude = Math.pow(10, Math.floor(Math.log10(v)));
        for (double step : new double[] {1, 2, 2.5, 5, 10}) {
            if (step * magnitude >= v * 1.05) {
                return step * magnitude;
            }
        }
        return 10 * magnitude;
    }

    /** A tick label: no decimals from 100 up, two below. */
    public static String tick(double v) {
        return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.2f", v);
    }
}
