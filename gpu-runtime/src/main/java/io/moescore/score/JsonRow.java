package io.moescore.score;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** One input line: its id as given (number, string or null), its tokens, or why it cannot be scored. */
record JsonRow(JsonNode id, int[] tokens, String error) {
    /**
     * No limit on a string's length (Jackson's default is 20M chars): the whole line is in memory already, so
     * the limit would only turn a valid row with a long id into an error. A second value on a line is an error.
     */
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
            .build()).enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** A line that could not be read as text ({@code why}: not UTF-8, too long). */
    static JsonRow unreadable(long lineNumber, String source, String why) {
        return new JsonRow(null, null, source + " line " + lineNumber + ": " + why);
    }

    /** Parses line {@code lineNumber} (1-based) of {@code source}; a bad line becomes a row with an error. */
    static JsonRow parse(String line, long lineNumber, String source) {
        String where = source + " line " + lineNumber + ": ";
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            String column = e.getLocation() == null ? "" : "column " + e.getLocation().getColumnNr() + ": ";
            return new JsonRow(null, null, where + "not valid JSON (" + column + e.getOriginalMessage() + ")");
        }
        if (node == null || !node.isObject()) {
            return new JsonRow(null, null, where + "not a JSON object");
        }
        JsonNode id = node.get("id");
        JsonNode tokens = node.get("tokens");
        if (id != null && !id.isNumber() && !id.isTextual() && !id.isNull()) {
            return new JsonRow(id, null, where + "\"id\" is " + kind(id) + "; an id is a number, a string or null");
        }
        if (tokens == null || !tokens.isArray()) {
            return new JsonRow(id, null, where + (tokens == null ? "no \"tokens\" field"
                    : "\"tokens\" is " + kind(tokens) + ", not a list of token ids"));
        }
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = tokens.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                return new JsonRow(id, null, where + "tokens[" + i + "] = " + shortText(t)
                        + " is not a 32-bit integer token id");
            }
            ids[i] = t.asInt();
        }
        return new JsonRow(id, ids, null);
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
