package io.moescore.score;

import io.moescore.model.TextTokenizer;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * The rows of a JSON-lines input as every single-process command reads them ({@link JsonRow}): blank lines skipped,
 * a line that cannot be read or parsed a row with an error, the model's tokenizer loaded when a row first needs it
 * (continuation rows given as text). {@link LocalScorer} streams them; {@link RoutingStudy} reads them once for all
 * its variants.
 */
final class JsonRows implements Closeable {
    private final String source;
    private final Utf8Lines lines;
    private final LazyTokenizer tokenizer;

    private JsonRows(Path input, Path model) throws IOException {
        this.source = input.toString();
        this.lines = new Utf8Lines(Files.newInputStream(input));
        this.tokenizer = new LazyTokenizer(model);
    }

    /** Opens {@code input}; text rows are tokenized with the tokenizer of the model in {@code model}. */
    static JsonRows open(Path input, Path model) throws IOException {
        return new JsonRows(input, model);
    }

    /** The next non-blank line's row, or null at the end. */
    JsonRow next() throws IOException {
        Utf8Lines.Line line;
        while ((line = lines.next()) != null) {
            if (line.text() != null && line.text().isBlank()) {
                continue;
            }
            return line.text() == null ? JsonRow.unreadable(line.number(), source, line.error())
                    : JsonRow.parse(line.text(), line.number(), source, tokenizer);
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        try {
            lines.close();
        } finally {
            tokenizer.close();
        }
    }

    /** The model's tokenizer, loaded when a row first needs it. */
    private static final class LazyTokenizer implements Supplier<TextTokenizer> {
        private final Path model;
        private TextTokenizer tokenizer;

        LazyTokenizer(Path model) {
            this.model = model;
        }

        @Override
        public TextTokenizer get() {
            if (tokenizer == null) {
                tokenizer = TextTokenizer.load(model);
            }
            return tokenizer;
        }

        void close() {
            if (tokenizer != null) {
                tokenizer.close();
            }
        }
    }
}
