package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our tokenizer binding against the Hugging Face `tokenizers` library itself (fixture made by
 * gpu-runtime/src/test/python/make_tokenizer_fixture.py): code, prose, unicode, empty and whitespace-only
 * texts, and a long text that must not be truncated.
 */
class TextTokenizerTest {
    @Test
    void encodesExactlyAsHuggingFaceTokenizers() throws IOException {
        JsonNode cases = new ObjectMapper().readTree(
                TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/tokenizer-fixture.json").toFile());
        try (TextTokenizer tok = TextTokenizer.load(TestModels.demoModel())) {
            for (JsonNode c : cases) {
                int[] expected = new int[c.get("ids").size()];
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = c.get("ids").get(i).asInt();
                }
                assertArrayEquals(expected, tok.encode(c.get("text").asText()), "text: " + c.get("text").asText());
            }
        }
    }

    @Test
    void missingTokenizerIsAClearError(@TempDir Path dir) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TextTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }
}
