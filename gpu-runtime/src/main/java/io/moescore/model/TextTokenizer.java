package io.moescore.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A model's {@code tokenizer.json}, run by the Hugging Face tokenizers library itself (through DJL's binding,
 * whose jar carries the native library: no download). Text is encoded as transformers' {@code tokenizer(text)}
 * would with {@code add_special_tokens=False}, never truncated: scoring wants exactly the tokens of the text.
 * Thread-safe.
 *
 * <p>Loading is linear in the file's size. The library adds a tokenizer's added tokens in quadratic time (each
 * one scans all before it), so a file with at least {@link #JAVA_ADDED_TOKENS} of them is given to the library
 * without them and {@link AddedTokens} matches them in Java, exactly as the library would; where that cannot be
 * exact ({@link AddedTokens#exactFor}), the library loads the file as it is.
 */
public final class TextTokenizer implements AutoCloseable {
    public static final String FILE = "tokenizer.json";
    /** From this many added tokens on, they are matched in Java (below it the library's own load is fast). */
    public static final int JAVA_ADDED_TOKENS = 1000;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, String> OPTIONS =
            Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");

    static {
        // DJL picks its tokenizer library's flavor by the host: on a host with CUDA it downloads a CUDA build
        // (publish.djl.ai) instead of the CPU build its jar carries, which fails on clusters without internet
        // (found on the GPU machine: "Cannot download jni files"). Tokenizing never uses the GPU, and nothing may
        // be downloaded at run time: the jar's CPU build, offline, unless the user set these themselves.
        if (System.getenv("RUST_FLAVOR") == null) {
            System.getProperties().putIfAbsent("RUST_FLAVOR", "cpu");
        }
        if (System.getenv("DJL_OFFLINE") == null) {
            System.getProperties().putIfAbsent("ai.djl.offline", "true");
        }
    }

    private final HuggingFaceTokenizer tokenizer;
    /** The added tokens matched in Java, or null where the library matches them itself. */
    private final AddedTokens added;
    private final String source;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, AddedTokens added, String source) {
        this.tokenizer = tokenizer;
        this.added = added;
        this.source = source;
    }

    /** The tokenizer of a model directory, or an error naming the file. */
    public static TextTokenizer load(Path modelDirectory) {
        Path file = ModelDirectory.find(modelDirectory, FILE);
        if (file == null) {
            throw new ModelFormatException("model " + modelDirectory + " has no " + FILE
                    + ": a text column needs the model's tokenizer");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException("cannot read tokenizer " + file + ": " + e, e);
        }
        return parse(bytes, file.toString());
    }

    /**
     * The tokenizer a tokenizer.json's bytes describe (read from anywhere: the Spark driver reads it through
     * Hadoop's file system to validate it before any task), or an error naming {@code source}.
     */
    public static TextTokenizer parse(byte[] json, String source) {
        return parse(json, source, JAVA_ADDED_TOKENS);
    }

    /** {@link #parse(byte[], String)} matching added tokens in Java from {@code javaFrom} of them on (tests). */
    static TextTokenizer parse(byte[] json, String source, int javaFrom) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException("tokenizer " + source + " " + ModelJson.describe(e), e);
        } catch (IOException e) {
            throw new ModelFormatException("cannot read tokenizer " + source + ": " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelFormatException("tokenizer " + source + " is not a JSON object");
        }
        JsonNode list = root.get("added_tokens");
        AddedTokens added = null;
        byte[] forLibrary = json;
        if (list != null && list.isArray() && list.size() >= javaFrom && AddedTokens.exactFor(root) == null) {
            added = AddedTokens.of(root);
            ObjectNode without = ((ObjectNode) root).deepCopy();
            without.putArray("added_tokens");
            try {
                forLibrary = JSON.writeValueAsBytes(without);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
        try {
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(forLibrary), OPTIONS),
                    added, source);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException("cannot load tokenizer " + source + ": " + e.getMessage(), e);
        }
    }

    /** The token ids of {@code text}. */
    public int[] encode(String text) {
        if (added == null) {
            return ids(text);
        }
        java.util.List<AddedTokens.Piece> pieces = added.split(text);
        int[][] parts = new int[pieces.size()][];
        int total = 0;
        for (int i = 0; i < parts.length; i++) {
            AddedTokens.Piece p = pieces.get(i);
            parts[i] = p.id() >= 0 ? new int[] {p.id()} : ids(p.text());
            total += parts[i].length;
        }
        int[] out = new int[total];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    private int[] ids(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Whether the added tokens are matched in Java (a large added vocabulary) rather than by the library. */
    boolean matchesAddedTokensInJava() {
        return added != null;
    }

    /** Where the tokenizer was read from (a path or URI). */
    public String source() {
        return source;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
