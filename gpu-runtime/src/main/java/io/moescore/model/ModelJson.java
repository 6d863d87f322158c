package io.moescore.model;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.io.JsonEOFException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the JSON files of a model directory (config.json, the shard index, sparsity.json, a safetensors header).
 * A file that is not JSON is reported by position only: Jackson's own messages quote the offending text, and
 * an error message must never print a file's content.
 */
public final class ModelJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelJson() {
    }

    /** The JSON tree of a model file already checked by {@link ModelDirectory}; {@code what} names it in errors. */
    public static JsonNode read(Path file, String what) {
        try (InputStream in = Files.newInputStream(file)) {
            return JSON.readTree(in);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(what + " " + file + " " + describe(e), e);
        } catch (IOException e) {
            throw new ModelFormatException("cannot read " + what + " " + file + ": " + e, e);
        }
    }

    /** The JSON tree of {@code text}; {@code where} (a file and what part of it) starts the error message. */
    public static JsonNode parse(String text, String where) {
        try {
            return JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(where + " " + describe(e), e);
        }
    }

    /** "is not valid JSON (line L, column C)": where the parser stopped, without the text it found there. */
    public static String describe(JsonProcessingException e) {
        JsonLocation at = e.getLocation();
        String position = at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        return e instanceof JsonEOFException ? "is not valid JSON: it ends early" + position
                : "is not valid JSON" + position;
    }
}
