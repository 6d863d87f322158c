package io.moescore.bench.portability;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Fills in the 2:4-over-dense speedup: on each 2:4 row, its dense twin's median over its own (same device, case). */
final class SpeedupTable {
    private SpeedupTable() {
    }

    static List<PortabilityRow> withSpeedups(List<PortabilityRow> rows) {
        Map<String, Double> denseMs = new HashMap<>();
        for (PortabilityRow r : rows) {
            if (PortabilityRow.DENSE.equals(r.pattern()) && r.medianMs() != null) {
                denseMs.put(caseKey(r), r.medianMs());
            }
        }
        List<PortabilityRow> out = new ArrayList<>(rows.size());
        for (PortabilityRow r : rows) {
            Double dense = denseMs.get(caseKey(r));
            boolean sparse = PortabilityRow.SPARSE_24.equals(r.pattern());
            out.add(sparse && dense != null && r.medianMs() != null && r.medianMs() > 0
                    ? r.withSpeedup(dense / r.medianMs()) : r);
        }
        return out;
    }

    private static String caseKey(PortabilityRow r) {
        return String.join("|", r.deviceKey(), r.backend(), r.kernel(), r.shape(), String.valueOf(r.tokens()),
                r.dtype());
    }
}
