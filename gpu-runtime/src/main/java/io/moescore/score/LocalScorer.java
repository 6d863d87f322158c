package io.moescore.score;

import io.moescore.batch.ScoreColumns;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.engine.DeviceMemoryPlan;
import io.moescore.engine.Engine;
import io.moescore.batch.ExpertLoad;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.RowScore;
import io.moescore.batch.SequenceScore;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The single-process scorer: JSON lines in ({@code {"id": ..., "tokens": [...]}}, or continuation rows
 * {@code {"id": ..., "context": ..., "continuation": ...}} of text or token ids), JSON lines out, one per input line
 * in the same order, plus a summary. Rows that cannot be scored get an {@code error} and never stop the others.
 * Rows longer than the model's context are scored as {@code --long-rows} says ({@link RowPlan}).
 */
public final class LocalScorer {
    /** Every row scored. */
    public static final int EXIT_OK = 0;
    /** Options, model or input unusable: nothing was scored. */
    public static final int EXIT_BAD_INVOCATION = 2;
    /** Finished, but some rows carry an error. */
    public static final int EXIT_ROW_ERRORS = 3;
    /** The GPU failed beyond recovery (GpuFaultException): no output was written. */
    public static final int EXIT_GPU_FAULT = 4;

    private static final long PROGRESS_INTERVAL_NANOS = 2_000_000_000L;

    /** What a run did, for the caller and the summary file. */
    /**
     * @param device           device 0's name
     * @param entriesPerDevice routing entries each device computed where the experts are spread over several
     *                         (empty on one device)
     */
    public record Summary(long rows, long rowErrors, long tokens, double seconds, String device, ExpertLoad load,
                          long[] entriesPerDevice) {
        public double tokensPerSecond() {
            return seconds > 0 ? tokens / seconds : 0;
        }
    }

    private final PrintStream log;

    public LocalScorer(PrintStream log) {
        this.log = log;
    }

    /** Runs with the options, reporting problems on the log; returns the process exit code. */
    public int run(LocalScoreOptions options) {
        if (!Files.isRegularFile(options.input())) {
            log.println("moescore: input file " + options.input() + " does not exist or is not a file");
            return EXIT_BAD_INVOCATION;
        }
        Summary summary;
        try {  // refusals come before the model loads, and write nothing
            AtomicOutput.check(options.output(), summaryPath(options.output()), options.input(), options.model(),
                    options.overwrite());
        } catch (IOException e) {
            log.println("moescore: " + e.getMessage());
            return EXIT_BAD_INVOCATION;
        }
        try (Devices devices = options.settings().openDevices(0);
             Engine engine = Engine.load(options.model(), devices, options.settings().loadOptions());
             AtomicOutput output = openOutput(options)) {
            Backend backend = devices.primary();
            log.println("moescore: " + engine.config() + " on " + devices.describe());
            List<DeviceMemoryPlan.Share> shares = DeviceMemoryPlan.shares(engine.config(), options.model(),
                    devices.all(), options.settings().checkPlacement(engine.config()),
                    options.settings().deviceMemory());
            if (!shares.isEmpty()) {  // devices with memories of their own: each one's share
                shares.forEach(s -> log.println("moescore: " + s.summary()));
            } else {
                io.moescore.engine.MemoryPlan plan = Engine.memoryPlan(engine.config(), options.model(), backend);
                if (plan != null) {
                    log.println("moescore: " + plan.describe());
                }
            }
            if (engine.residency().capped()) {
                log.println("moescore: " + engine.residency().describe());
            }
            summary = score(engine, options, output);
            if (engine.residency().streamedLayers() > 0) {
                log.printf("moescore: %d expert uploads from host memory, %.1f MB%n",
                        engine.expertStore().uploads(), engine.expertStore().uploadedBytes() / 1e6);
            }
            if (engine.expertStore().spread()) {
                log.println("moescore: " + engine.expertStore().describeDevices());
            }
        } catch (IllegalArgumentException | io.moescore.model.ModelFormatException
                 | io.moescore.engine.UnsupportedModelException e) {
            log.println("moescore: " + e.getMessage());
            return EXIT_BAD_INVOCATION;
        } catch (IOException e) {
            log.println("moescore: " + e.getMessage());
            return EXIT_BAD_INVOCATION;
        } catch (io.moescore.backend.GpuFaultException e) {
            log.println("moescore: " + e.getMessage() + "; no output written");
            return EXIT_GPU_FAULT;
        }
        log.printf("moescore: %d rows (%d with errors), %d tokens in %.1f s: %.0f tokens/s on %s%n",
                summary.rows(), summary.rowErrors(), summary.tokens(), summary.seconds(), summary.tokensPerSecond(),
                summary.device());
        return summary.rowErrors() == 0 ? EXIT_OK : EXIT_ROW_ERRORS;
    }

    /**
     * Scores the input into the output with an engine already loaded; the output and its summary appear only
     * when every row is written. Throws an IOException naming the paths where the output may not be written.
     */
    public Summary score(Engine engine, LocalScoreOptions options) throws IOException {
        try (AtomicOutput output = openOutput(options)) {
            return score(engine, options, output);
        }
    }

    private static AtomicOutput openOutput(LocalScoreOptions options) throws IOException {
        return AtomicOutput.open(options.output(), summaryPath(options.output()), options.input(), options.model(),
                options.overwrite());
    }

    private Summary score(Engine engine, LocalScoreOptions options, AtomicOutput output) throws IOException {
        ScoreSettings settings = options.settings();
        ScoreOptions scoreOptions = new ScoreOptions(settings.tokenLogProbs(), settings.topK());
        RowPlan.Limits limits = settings.rowLimits(engine.config().maxPositions());
        Rows scorer = new Rows(engine, scoreOptions, limits, settings.batchTokens(), settings.longRows());
        ExpertLoad load = new ExpertLoad(engine.config().numLayers(), engine.config().numExperts());
        long start = System.nanoTime();
        long lastProgress = start;
        long rows = 0;
        long errors = 0;
        long tokens = 0;
        try (JsonRows in = JsonRows.open(options.input(), options.model());
             JsonGenerator json = new ObjectMapper().getFactory().createGenerator(output.rows(), JsonEncoding.UTF8)) {
            json.setRootValueSeparator(null);
            List<JsonRow> pending = new ArrayList<>();
            long pendingTokens = 0;
            JsonRow row;
            while ((row = in.next()) != null) {
                pending.add(row);
                pendingTokens += row.tokens() == null ? 0 : row.tokens().length;
                if (BatchPlanner.windowFull(pendingTokens, settings.batchTokens())) {
                    errors += scorer.flush(pending, load, json);
                    rows += pending.size();
                    tokens += pendingTokens;
                    pending.clear();
                    pendingTokens = 0;
                }
                long now = System.nanoTime();
                if (now - lastProgress > PROGRESS_INTERVAL_NANOS) {
                    lastProgress = now;
                    log.printf("moescore: %d rows, %d tokens scored, %.0f tokens/s%n", rows, tokens,
                            tokens / ((now - start) / 1e9));
                }
            }
            errors += scorer.flush(pending, load, json);
            rows += pending.size();
            tokens += pendingTokens;
        }
        Summary summary = new Summary(rows, errors, tokens, (System.nanoTime() - start) / 1e9,
                engine.backend().deviceName(), load, engine.expertStore().entriesPerDevice());
        output.commit(summaryJson(summary, settings));
        return summary;
    }

    /** Where the summary of a run writing {@code output} goes: beside it, as NAME.summary.json. */
    public static Path summaryPath(Path output) {
        String name = output.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return output.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".summary.json");
    }

    /** How a window of rows is scored ({@link RowPlan}, {@link BatchPlanner}) and written, in input order. */
    record Rows(Engine engine, ScoreOptions options, RowPlan.Limits limits, int batchTokens, LongRows longRows) {
        /** A window's rows' scores, in order (null for none: a row whose input was unusable has its error). */
        RowScore[] score(List<JsonRow> rows, ExpertLoad load) {
            return RowPlan.score(engine::score,
                    rows.stream().map(r -> r.error() == null ? r.tokens() : null).toArray(int[][]::new),
                    rows.stream().mapToInt(JsonRow::contextLength).toArray(), limits, options, batchTokens, load);
        }

        long flush(List<JsonRow> rows, ExpertLoad load, JsonGenerator json) throws IOException {
            RowScore[] scores = score(rows, load);
            long errors = 0;
            for (int i = 0; i < rows.size(); i++) {
                JsonRow row = rows.get(i);
                RowScore score = scores[i] != null ? scores[i] : RowScore.failed(0, row.error());
                if (!score.ok()) {
                    errors++;
                }
                writeRow(json, row, score, new ScoreColumns.Layout(options.tokenLogProbs(), options.topK() > 0,
                        longRows != LongRows.ERROR, row.continuation()));
            }
            json.flush();
            return errors;
        }
    }

    /** One output line: the row's id, then the layout's columns in order. */
    private static void writeRow(JsonGenerator json, JsonRow row, RowScore score, ScoreColumns.Layout layout)
            throws IOException {
        json.writeStartObject();
        json.writeFieldName(ScoreColumns.ID);
        if (row.id() == null) {
            json.writeNull();
        } else {
            json.writeTree(row.id());
        }
        SequenceScore s = score.score();
        boolean ok = score.ok();
        for (String column : layout.names()) {
            switch (column) {
                case ScoreColumns.NUM_TOKENS -> json.writeNumberField(column, s.numTokens());
                case ScoreColumns.SUM_LOGPROB -> writeNumber(json, column, s.sumLogProbOrNull());
                case ScoreColumns.MEAN_NLL -> writeNumber(json, column, s.meanNllOrNull());
                case ScoreColumns.PERPLEXITY -> writeNumber(json, column, s.perplexityOrNull());
                case ScoreColumns.TOKEN_LOGPROBS -> {
                    json.writeFieldName(column);
                    if (ok && s.tokenLogProbs() != null) {
                        json.writeStartArray();
                        for (float f : s.tokenLogProbs()) {
                            json.writeNumber(f);
                        }
                        json.writeEndArray();
                    } else {
                        json.writeNull();
                    }
                }
                case ScoreColumns.TOP_TOKENS -> {
                    json.writeFieldName(column);
                    if (ok && s.topTokens() != null) {
                        json.writeArray(s.topTokens(), 0, s.topTokens().length);
                    } else {
                        json.writeNull();
                    }
                }
                case ScoreColumns.NUM_WINDOWS -> json.writeNumberField(column, score.numWindows());
                case ScoreColumns.TRUNCATED -> json.writeBooleanField(column, score.truncated());
                case ScoreColumns.CONTINUATION_LOGPROB -> writeNumber(json, column, score.continuationLogProbOrNull());
                case ScoreColumns.CONTINUATION_TOKENS -> json.writeNumberField(column, score.continuationTokens());
                case ScoreColumns.IS_GREEDY -> {
                    Boolean greedy = score.isGreedyOrNull();
                    if (greedy == null) {
                        json.writeNullField(column);
                    } else {
                        json.writeBooleanField(column, greedy);
                    }
                }
                case ScoreColumns.ERROR -> json.writeStringField(column, score.error());
                default -> throw new IllegalStateException("no JSON writer for column " + column);
            }
        }
        json.writeEndObject();
        json.writeRaw('\n');
    }

    /** A number as SequenceScore spells it for every output (null: none; never NaN or an infinity). */
    private static void writeNumber(JsonGenerator json, String field, Double value) throws IOException {
        if (value != null) {
            json.writeNumberField(field, value);
        } else {
            json.writeNullField(field);
        }
    }

    private static byte[] summaryJson(Summary s, ScoreSettings settings) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("rows", s.rows());
        root.put("rows_with_errors", s.rowErrors());
        root.put("tokens", s.tokens());
        root.put("seconds", s.seconds());
        root.put("tokens_per_second", s.tokensPerSecond());
        root.put("device", s.device());
        if (s.entriesPerDevice().length > 0) {  // experts over several devices: each one's routing entries
            ArrayNode perDevice = root.putArray("entries_per_device");
            Arrays.stream(s.entriesPerDevice()).forEach(perDevice::add);
        }
        root.set("settings", mapper.valueToTree(settings.describe()));
        if (settings.batchDependentScores()) {  // written only then: its absence means batch-independent routing
            root.put("batch_dependent_scores", true);
        }
        ArrayNode layers = root.putArray("expert_tokens_per_layer");
        for (int l = 0; l < s.load().numLayers(); l++) {
            ArrayNode counts = layers.addArray();
            for (long c : s.load().layer(l)) {
                counts.add(c);
            }
        }
        return mapper.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
    }
}
