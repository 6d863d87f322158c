package io.moescore.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.score.RoutingStudy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The files of {@code moescore routing-study} ({@link RoutingStudy.Result}): {@value #JSON} (machine-readable),
 * {@value #MARKDOWN} (the table, as the command prints it) and {@value #HTML} (self-contained: the table and a chart
 * of perplexity ratio against speed-up, inline SVG), plus {@value RoutingStudy#PROPOSED_DROPS} where drops were
 * proposed. {@link #write} makes them appear together, only once all are written.
 */
public final class RoutingStudyReport {
    public static final String JSON = "routing_study.json";
    public static final String MARKDOWN = "routing_study.md";
    public static final String HTML = "routing_study.html";

    /** The table's columns, in the Markdown, the HTML and the printed table. */
    public static final List<String> COLUMNS = List.of("variant", "perplexity", "ppl ratio", "expert FLOPs",
            "tokens/s", "speed-up", "top-1 changed", "row errors", "batch-dependent");

    private RoutingStudyReport() {
    }

    /** One variant's row of the table. */
    public static List<String> cells(RoutingStudy.Variant v) {
        return List.of(v.spec(), f(v.perplexity(), "%.4f"), f(v.perplexityRatio(), "%.4f"),
                f(v.expertFlopShare(), "%.3f"), f(v.tokensPerSecond(), "%.0f"), f(v.speedup(), "%.2f"),
                v.top1Changed() + "/" + v.top1Compared() + " (" + f(100 * v.top1ChangedShare(), "%.1f") + "%)",
                String.valueOf(v.rowErrors()), v.batchDependent() ? "yes" : "no");
    }

    /** The table in Markdown, with the notes below it. */
    public static String markdown(RoutingStudy.Result r) {
        StringBuilder md = new StringBuilder();
        md.append("Routing study: ").append(r.model()).append(" on ").append(r.input()).append(" (").append(r.rows())
                .append(" rows, ").append(r.tokens()).append(" tokens, ").append(r.device()).append(")\n\n");
        md.append("| ").append(String.join(" | ", COLUMNS)).append(" |\n|");
        COLUMNS.forEach(c -> md.append(" --- |"));
        md.append('\n');
        for (RoutingStudy.Variant v : r.variants()) {
            md.append("| ").append(String.join(" | ", cells(v).stream().map(c -> c.replace("|", "\\|")).toList()))
                    .append(" |\n");
        }
        md.append('\n');
        r.notes().forEach(n -> md.append("- ").append(n).append('\n'));
        return md.toString();
    }

    /** The study as JSON: the run, then one object per variant (numbers null where there are none). */
    public static String json(RoutingStudy.Result r) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("model", r.model());
        root.put("input", r.input());
        root.put("device", r.device());
        root.put("rows", r.rows());
        root.put("tokens", r.tokens());
        ArrayNode variants = root.putArray("variants");
        for (RoutingStudy.Variant v : r.variants()) {
            ObjectNode o = variants.addObject();
            o.put("variant", v.spec());
            o.put("baseline", v == r.variants().get(0));
            o.put("batch_dependent_scores", v.batchDependent());
            o.put("row_errors", v.rowErrors());
            o.put("predicted_tokens", v.predicted());
            number(o, "perplexity", v.perplexity());
            number(o, "perplexity_ratio", v.perplexityRatio());
            o.put("routed_token_expert_pairs", v.routedPairs());
            number(o, "expert_flop_share", v.expertFlopShare());
            number(o, "seconds", v.seconds());
            number(o, "tokens_per_second", v.tokensPerSecond());
            number(o, "speedup", v.speedup());
            o.put("top1_compared_rows", v.top1Compared());
            o.put("top1_changed_rows", v.top1Changed());
            number(o, "top1_changed_share", v.top1ChangedShare());
        }
        if (!r.proposedDrops().isEmpty()) {
            root.set("proposed_drops", mapper.valueToTree(dropsJson(r)));
        }
        ArrayNode notes = root.putArray("notes");
        r.notes().forEach(notes::add);
        return mapper.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
    }

    /** The proposed drops as drop-experts:FILE reads them: {@code {"LAYER": [E, ...], ...}}. */
    private static Map<String, List<Integer>> dropsJson(RoutingStudy.Result r) {
        Map<String, List<Integer>> byLayer = new LinkedHashMap<>();
        r.proposedDrops().forEach((layer, experts) -> byLayer.put(String.valueOf(layer), experts));
        return byLayer;
    }

    /** The self-contained HTML report: the chart, the table, the notes. */
    public static String html(RoutingStudy.Result r) {
        List<RoutingStudy.Variant> plotted = r.variants().stream()
                .filter(v -> Double.isFinite(v.speedup()) && Double.isFinite(v.perplexityRatio())).toList();
        LineChart chart = new LineChart("Perplexity ratio against speed-up (each variant vs the model's router)",
                "speed-up (tokens/s relative to the model's router)", "perplexity ratio",
                plotted.stream().mapToDouble(RoutingStudy.Variant::speedup).toArray()).points();
        for (int i = 0; i < plotted.size(); i++) {
            double[] y = new double[plotted.size()];
            java.util.Arrays.fill(y, Double.NaN);
            y[i] = plotted.get(i).perplexityRatio();
            chart.add(plotted.get(i).spec(), y);
        }
        StringBuilder h = new StringBuilder();
        h.append(Html.pageStart("moescore routing study")).append("<p>").append(Html.escape(r.model())).append(" on ")
                .append(Html.escape(r.input())).append(": ").append(r.rows()).append(" rows, ").append(r.tokens())
                .append(" tokens, on ").append(Html.escape(r.device())).append(". Generated ").append(Instant.now())
                .append(".</p>\n<div class=\"chart\">").append(chart.toSvg()).append("</div>\n<table><thead><tr>");
        COLUMNS.forEach(c -> h.append("<th>").append(Html.escape(c)).append("</th>"));
        h.append("</tr></thead>\n<tbody>\n");
        for (RoutingStudy.Variant v : r.variants()) {
            h.append("<tr>");
            cells(v).forEach(c -> h.append("<td>").append(Html.escape(c)).append("</td>"));
            h.append("</tr>\n");
        }
        h.append("</tbody></table>\n<ul>\n");
        r.notes().forEach(n -> h.append("<li>").append(Html.escape(n)).append("</li>\n"));
        return h.append("</ul>\n</body></html>\n").toString();
    }

    /** The files a study writes: {@code proposesDrops}, with {@value RoutingStudy#PROPOSED_DROPS}. */
    public static List<String> files(boolean proposesDrops) {
        return proposesDrops ? List.of(JSON, MARKDOWN, HTML, RoutingStudy.PROPOSED_DROPS) : List.of(JSON, MARKDOWN,
                HTML);
    }

    /**
     * Refuses, writing nothing, an output folder that already holds a file the study writes (without
     * {@code overwrite}) or that is a file.
     */
    public static void check(Path out, boolean overwrite, boolean proposesDrops) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IOException("--out " + out + " is a file, not a folder: refused, nothing written");
        }
        for (String name : files(proposesDrops)) {
            if (!overwrite && Files.exists(out.resolve(name))) {
                throw new IOException("--out " + out + " already holds " + name + ": give --overwrite to replace "
                        + "it, or another --out; nothing written");
            }
        }
    }

    /**
     * Writes the study's files into {@code out} (created): each to a temporary file there first, then every one
     * renamed into place, so that a failure before the renames leaves nothing.
     */
    public static List<Path> write(Path out, RoutingStudy.Result r, boolean overwrite) throws IOException {
        check(out, overwrite, !r.proposedDrops().isEmpty());
        Map<String, String> files = new LinkedHashMap<>();
        files.put(JSON, json(r));
        files.put(MARKDOWN, markdown(r));
        files.put(HTML, html(r));
        if (!r.proposedDrops().isEmpty()) {
            files.put(RoutingStudy.PROPOSED_DROPS, new ObjectMapper().writerWithDefaultPrettyPrinter()
                    .writeValueAsString(dropsJson(r)) + "\n");
        }
        Files.createDirectories(out);
        Map<Path, Path> temps = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, String> f : files.entrySet()) {
                Path temp = Files.createTempFile(out, "." + f.getKey() + ".", ".tmp");
                temps.put(temp, out.resolve(f.getKey()));
                Files.writeString(temp, f.getValue(), StandardCharsets.UTF_8);
            }
            List<Path> written = new ArrayList<>();
            for (Map.Entry<Path, Path> t : temps.entrySet()) {
                Files.move(t.getKey(), t.getValue(), StandardCopyOption.REPLACE_EXISTING,
                        StandardCopyOption.ATOMIC_MOVE);
                written.add(t.getValue());
            }
            return written;
        } finally {
            for (Path temp : temps.keySet()) {
                Files.deleteIfExists(temp);
            }
        }
    }

    private static void number(ObjectNode o, String field, double v) {
        if (Double.isFinite(v)) {
            o.put(field, v);
        } else {
            o.putNull(field);
        }
    }

    private static String f(double v, String format) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, format, v) : "-";
    }
}
