package io.moescore.sparsify;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Token rows of a JSON-lines file ({@code {"id": ..., "tokens": [...]}} per line): calibration data. */
public final class CalibrationRows {
    private static final ObjectMapper JSON = new ObjectMapper();

    private CalibrationRows() {
    }

    /** Every row's tokens (blank lines skipped). */
    public static List<int[]> read(Path jsonl) throws IOException {
        return read(jsonl, "");
    }

    /**
     * The tokens of the rows whose id starts with {@code idPrefix} (every row when it is empty).
     *
     * @throws IllegalArgumentException naming the file and line of a row that is not JSON or has no token list
     */
    public static List<int[]> read(Path jsonl, String idPrefix) throws IOException {
        List<int[]> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(jsonl);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = jsonl + " line " + (i + 1) + ": ";
            JsonNode n;
            try {
                n = JSON.readTree(lines.get(i));
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where + "not valid JSON (" + e.getOriginalMessage() + ")", e);
            }
            if (!idPrefix.isEmpty() && (n.get("id") == null || !n.get("id").asText().startsWith(idPrefix))) {
                continue;
            }
            JsonNode tokens = n.get("tokens");
            if (tokens == null || !tokens.isArray()) {
                throw new IllegalArgumentException(where + "no \"tokens\" list");
            }
            int[] t = new int[tokens.size()];
            for (int j = 0; j < t.length; j++) {
                if (!tokens.get(j).isIntegralNumber() || !tokens.get(j).canConvertToInt()) {
                    throw new IllegalArgumentException(where + "tokens[" + j + "] = " + tokens.get(j)
                            + " is not a 32-bit integer token id");
                }
                t[j] = tokens.get(j).asInt();
            }
            out.add(t);
        }
        return out;
    }
}
