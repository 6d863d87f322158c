package io.moescore.score;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.batch.ScoreColumns;
import io.moescore.model.TextTokenizer;
import java.util.function.Supplier;

/**
 * One input line: its id as given (number, string or null), its tokens, or why it cannot be scored. A line with a
 * {@code context} or {@code continuation} field is a continuation row ({@link Continuations}): both fields, text or
 * lists of token ids; its tokens are the context's then the continuation's, {@code contextLength} of them the
 * context's (-1 for any other line).
 */
record JsonRow(JsonNode id, int[] tokens, int contextLength, boolean continuation, String error) {
    /**
     * No limit on a string's length (Jackson's default is 20M chars): the whole line is in memory already, so
     * the limit would only turn a valid row with a long id into an error. A second value on a line is an error.
     */
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
            .build()).enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** A line that could not be read as text ({@code why}: not UTF-8, too long). */
    static JsonRow unreadable(long lineNumber, String source, String why) {
        return failed(null, false, source + " line " + lineNumber + ": " + why);
    }

    private static JsonRow failed(JsonNode id, boolean continuation, String error) {
        return new JsonRow(id, null, -1, continuation, error);
    }

    /** A line's value that makes it unusable (the message names the field). */
    private static final class BadField extends Exception {
        BadField(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Parses line {@code lineNumber} (1-based) of {@code source}; a bad line becomes a row with an error.
     *
     * @param tokenizer the model's tokenizer, asked for only by a continuation row given as text
     */
    static JsonRow parse(String line, long lineNumber, String source, Supplier<TextTokenizer> tokenizer) {
        String where = source + " line " + lineNumber + ": ";
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            String column = e.getLocation() == null ? "" : "column " + e.getLocation().getColumnNr() + ": ";
            return failed(null, false, where + "not valid JSON (" + column + e.getOriginalMessage() + ")");
        }
        if (node == null || !node.isObject()) {
            return failed(null, false, where + "not a JSON object");
        }
        JsonNode id = node.get("id");
        if (id != null && !id.isNumber() && !id.isTextual() && !id.isNull()) {
            return failed(id, false, where + "\"id\" is " + kind(id) + "; an id is a number, a string or null");
        }
        JsonNode context = node.get(ScoreColumns.CONTEXT);
        JsonNode continuation = node.get(ScoreColumns.CONTINUATION);
        if (context != null || continuation != null) {
            try {
                Continuations.Pair pair = pair(context, continuation, tokenizer);
                return new JsonRow(id, pair.tokens(), pair.contextLength(), true, null);
            } catch (BadField e) {
                return failed(id, true, where + e.getMessage());
            }
        }
        try {
            return new JsonRow(id, ids(node.get(ScoreColumns.TOKENS), ScoreColumns.TOKENS), -1, false, null);
        } catch (BadField e) {
            return failed(id, false, where + e.getMessage());
        }
    }

    /** A continuation row's context and continuation: both text, or both lists of token ids. */
    private static Continuations.Pair pair(JsonNode context, JsonNode continuation, Supplier<TextTokenizer> tokenizer)
            throws BadField {
        for (String field : new String[] {ScoreColumns.CONTEXT, ScoreColumns.CONTINUATION}) {
            JsonNode value = field.equals(ScoreColumns.CONTEXT) ? context : continuation;
            if (value == null || value.isNull()) {
                throw new BadField((value == null ? "no \"" + field + "\" field" : "\"" + field + "\" is null")
                        + ": a continuation row needs a \"context\" and a \"continuation\", both text or both lists"
                        + " of token ids");
            }
        }
        try {
            if (context.isTextual() && continuation.isTextual()) {
                TextTokenizer t;
                try {
                    t = tokenizer.get();
                } catch (RuntimeException e) {
                    throw new BadField("cannot tokenize the text: " + e.getMessage());
                }
                return Continuations.ofText(t, context.asText(), continuation.asText());
            }
            if (context.isArray() && continuation.isArray()) {
                return Continuations.ofTokens(ids(context, ScoreColumns.CONTEXT),
                        ids(continuation, ScoreColumns.CONTINUATION));
            }
        } catch (IllegalArgumentException e) {
            throw new BadField(e.getMessage());
        }
        throw new BadField("\"context\" is " + kind(context) + " and \"continuation\" " + kind(continuation)
                + ": both must be text, or both lists of token ids");
    }

    /** The token ids of a list field. */
    private static int[] ids(JsonNode tokens, String field) throws BadField {
        if (tokens == null || !tokens.isArray()) {
            throw new BadField(tokens == null ? "no \"" + field + "\" field"
                    : "\"" + field + "\" is " + kind(tokens) + ", not a list of token ids");
        }
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = tokens.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                throw new BadField(field + "[" + i + "] = " + shortText(t) + " is not a 32-bit integer token id");
            }
            ids[i] = t.asInt();
        }
        return ids;
    }

    private static String kind(JsonNode node) {
        String json = shortText(node);
        return switch (node.getNodeType()) {
            case STRING -> "a string (" + json + ")";
            case OBJECT -> "an object (" + json + ")";
            case ARRAY -> "a list (" + json + ")";
            case NULL -> "null";
            default -> node.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " (" + json + ")";
        };
    }

    /** A value as JSON, cut after 40 characters: an error message never repeats a huge value. */
    private static String shortText(JsonNode node) {
        String json = node.toString();
        return json.length() <= 40 ? json : json.substring(0, 40) + "...";
    }
}
