package io.moescore.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A model's {@code tokenizer.json}, run by the Hugging Face tokenizers library itself (through DJL's binding,
 * whose jar carries the native library: no download). Text is encoded as transformers' {@code tokenizer(text)}
 * would with {@code add_special_tokens=False}, never truncated: scoring wants exactly the tokens of the text.
 * Thread-safe.
 */
public final class TextTokenizer implements AutoCloseable {
    public static final String FILE = "tokenizer.json";

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Path file) {
        this.tokenizer = tokenizer;
        this.file = file;
    }

    /** The tokenizer of a model directory, or an error naming the file. */
    public static TextTokenizer load(Path modelDirectory) {
        Path file = ModelDirectory.find(modelDirectory, FILE);
        if (file == null) {
            throw new ModelFormatException("model " + modelDirectory + " has no " + FILE
                    + ": a text column needs the model's tokenizer");
        }
        try {
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(file,
                    Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false")), file);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException("cannot load tokenizer " + file + ": " + e.getMessage(), e);
        }
    }

    /** The token ids of {@code text}. */
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    public Path file() {
        return file;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
