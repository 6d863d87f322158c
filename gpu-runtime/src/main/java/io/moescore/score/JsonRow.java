package io.moescore.score;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** One input line: its id as given (number, string or null), its tokens, or why it cannot be scored. */
record JsonRow(JsonNode id, int[] tokens, String error) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Parses line {@code lineNumber} (1-based) of {@code source}; a bad line becomes a row with an error. */
    static JsonRow parse(String line, long lineNumber, String source) {
        String where = source + " line " + lineNumber + ": ";
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (Exception e) {
            return new JsonRow(null, null, where + "not valid JSON");
        }
        if (node == null || !node.isObject()) {
            return new JsonRow(null, null, where + "not a JSON object");
        }
        JsonNode id = node.get("id");
        JsonNode tokens = node.get("tokens");
        if (tokens == null || !tokens.isArray()) {
            return new JsonRow(id, null, where + "no \"tokens\" list");
        }
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = tokens.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt()) {
                return new JsonRow(id, null, where + "tokens[" + i + "] = " + t + " is not a 32-bit integer token id");
            }
            ids[i] = t.asInt();
        }
        return new JsonRow(id, ids, null);
    }
}
