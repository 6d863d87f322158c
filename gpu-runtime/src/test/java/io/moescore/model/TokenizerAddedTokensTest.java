package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.TestModels;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Large added vocabularies: matched in Java ({@link AddedTokens}) they give exactly the ids the tokenizers library
 * gives when it loads the same file itself, on random texts full of added tokens, spaces, word boundaries and
 * unicode, with every flag combination; where Java cannot be exact the library loads the file; and loading is
 * linear in the number of added tokens (200k within seconds).
 */
class TokenizerAddedTokensTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String[] WORDS = {"the", "def", "return", "x", "é", "e\u0301", "日本", "ab", "abc", "_", "9",
        "Paris", "🙂", "<", ">", "\u00a0", "\u3000", "\t", "\n", " ", "  ", ".", "ﬁ"};

    static ObjectNode demoTokenizer() throws IOException {
        return (ObjectNode) JSON.readTree(TestModels.demoModel().resolve(TextTokenizer.FILE).toFile());
    }

    /** Adds {@code n} random added tokens (random flags, overlapping, duplicated, in-vocabulary contents). */
    static List<String> addRandomTokens(ObjectNode root, int n, Random random, boolean allowNormalized) {
        ArrayNode added = (ArrayNode) root.get("added_tokens");
        List<String> vocab = new ArrayList<>();
        root.get("model").get("vocab").fieldNames().forEachRemaining(vocab::add);
        List<String> contents = new ArrayList<>();
        int base = 5000;
        for (int i = 0; i < n; i++) {
            String content = switch (random.nextInt(6)) {
                case 0 -> "<extra_" + i + ">";
                case 1 -> "<" + WORDS[random.nextInt(WORDS.length)];  // prefixes of one another
                case 2 -> vocab.get(random.nextInt(vocab.size())).replace('Ġ', ' ');  // in the vocabulary or close
                case 3 -> WORDS[random.nextInt(WORDS.length)] + WORDS[random.nextInt(WORDS.length)];
                case 4 -> contents.isEmpty() ? "dup" : contents.get(random.nextInt(contents.size()));  // repeated
                default -> "tok" + random.nextInt(50);
            };
            contents.add(content);
            ObjectNode t = added.addObject();
            t.put("id", base + i);
            t.put("content", content);
            t.put("single_word", random.nextInt(4) == 0);
            t.put("lstrip", random.nextInt(4) == 0);
            t.put("rstrip", random.nextInt(4) == 0);
            t.put("normalized", allowNormalized && random.nextBoolean());
            t.put("special", random.nextBoolean());
        }
        return contents;
    }

    static String randomText(Random random, List<String> contents) {
        StringBuilder text = new StringBuilder();
        int parts = random.nextInt(12);
        for (int p = 0; p < parts; p++) {
            text.append(random.nextInt(3) == 0 ? contents.get(random.nextInt(contents.size()))
                    : WORDS[random.nextInt(WORDS.length)]);
        }
        return text.toString();
    }

    /** Java-matched and library-matched tokenizers of one file agree on {@code texts} random texts. */
    static void assertSameAsTheLibrary(ObjectNode root, List<String> contents, Random random, long seed, int texts)
            throws IOException {
        byte[] json = JSON.writeValueAsBytes(root);
        try (TextTokenizer java = TextTokenizer.parse(json, "java", 0);
             TextTokenizer library = TextTokenizer.parse(json, "library", Integer.MAX_VALUE)) {
            assertTrue(java.matchesAddedTokensInJava());
            assertFalse(library.matchesAddedTokensInJava());
            int refused = 0;
            for (int i = 0; i < texts; i++) {
                refused += assertSame(java, library, randomText(random, contents), seed);
            }
            for (String c : contents.subList(0, Math.min(300, contents.size()))) {
                refused += assertSame(java, library, c, seed);
                refused += assertSame(java, library, " " + c + "  x" + c, seed);
            }
            System.out.println("texts the library would abort on (refused instead): " + refused);
        }
    }

    /**
     * Same ids from both, or (returns 1) a text the library cannot split, which it answers by aborting the whole
     * JVM (a Rust panic, "AddedVocabulary bad split"): the Java matcher refuses it with a message instead, and the
     * library is not asked.
     */
    static int assertSame(TextTokenizer java, TextTokenizer library, String text, long seed) {
        int[] ids;
        try {
            ids = java.encode(text);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("overlap"), e.getMessage());
            return 1;
        }
        assertArrayEquals(library.encode(text), ids, "seed " + seed + ", text '" + text + "'");
        return 0;
    }

    @Test
    void javaMatchingEqualsTheLibraryWithoutANormalizer() throws IOException {
        javaMatchingEqualsTheLibrary(false);
    }

    @Test
    void javaMatchingEqualsTheLibraryWithANormalizer() throws IOException {
        javaMatchingEqualsTheLibrary(true);
    }

    /** 1500 random added tokens (normalized ones only without a normalizer: else the library matches them). */
    static void javaMatchingEqualsTheLibrary(boolean nfc) throws IOException {
        long seed = Long.getLong("moescore.test.seed", System.nanoTime());
        System.out.println("TokenizerAddedTokensTest (" + (nfc ? "NFC normalizer" : "no normalizer") + ") seed " + seed);
        Random random = new Random(seed);
        ObjectNode root = demoTokenizer();
        if (nfc) {
            root.putObject("normalizer").put("type", "NFC");
        }
        List<String> contents = addRandomTokens(root, 1500, random, !nfc);
        assertSameAsTheLibrary(root, contents, random, seed, 3000);
    }

    @Test
    void whereJavaCannotBeExactTheLibraryLoadsTheFile() throws IOException {
        Random random = new Random(1);
        ObjectNode normalized = demoTokenizer();
        normalized.putObject("normalizer").put("type", "NFC");
        addRandomTokens(normalized, 20, random, true);
        ((ObjectNode) normalized.get("added_tokens").get(5)).put("normalized", true);
        try (TextTokenizer t = TextTokenizer.parse(JSON.writeValueAsBytes(normalized), "n", 0)) {
            assertFalse(t.matchesAddedTokensInJava());
        }
        ObjectNode metaspace = demoTokenizer();
        metaspace.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "▁")
                .put("prepend_scheme", "first").put("split", true);
        addRandomTokens(metaspace, 20, random, false);
        try (TextTokenizer t = TextTokenizer.parse(JSON.writeValueAsBytes(metaspace), "m", 0)) {
            assertFalse(t.matchesAddedTokensInJava());
        }
    }

    @Test
    void aMalformedTokenizerNamesItsFileWithoutItsContent() {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> TextTokenizer.parse("{\"model\": secret-words".getBytes(), "/m/tokenizer.json"));
        assertTrue(e.getMessage().contains("/m/tokenizer.json") && !e.getMessage().contains("secret"), e.getMessage());
        // JSON the library refuses: named too
        e = assertThrows(ModelFormatException.class,
                () -> TextTokenizer.parse("{\"model\": {\"type\": \"nothing\"}}".getBytes(), "/m/tokenizer.json"));
        assertTrue(e.getMessage().contains("/m/tokenizer.json"), e.getMessage());
    }

    /** Seconds to load a demo tokenizer with {@code n} added tokens (not in the vocabulary), checked to encode. */
    static double loadSeconds(int n) throws IOException {
        ObjectNode root = demoTokenizer();
        ArrayNode added = (ArrayNode) root.get("added_tokens");
        int base = root.get("model").get("vocab").size();
        for (int i = 0; i < n; i++) {
            added.addObject().put("id", base + i).put("content", "<extra_" + i + ">").put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        byte[] json = JSON.writeValueAsBytes(root);
        long start = System.nanoTime();
        try (TextTokenizer t = TextTokenizer.parse(json, "tokenizer-" + n)) {
            double seconds = (System.nanoTime() - start) / 1e9;
            int[] ids = t.encode("x<extra_7><extra_" + (n - 1) + ">y");
            assertTrue(ids.length >= 4 && ids[1] == base + 7 && ids[2] == base + n - 1, java.util.Arrays.toString(ids));
            return seconds;
        }
    }

    @Test
    void loadingIsLinearInTheAddedTokens() throws IOException {
        loadSeconds(20_000);  // warm-up: the native library, the JIT
        // the best of two each: a busy machine only ever adds time
        double t50 = Math.min(loadSeconds(50_000), loadSeconds(50_000));
        double t200 = Math.min(loadSeconds(200_000), loadSeconds(200_000));
        System.out.printf("tokenizer load: 50k added tokens %.2f s, 200k %.2f s (ratio %.1f; linear: 4, quadratic:"
                + " 16)%n", t50, t200, t200 / t50);
        // the library alone: 50k took ~9 s on this machine, 200k minutes
        assertTrue(t200 < 30, "200k added tokens took " + t200 + " s");
        assertTrue(t200 < 10 * Math.max(t50, 0.25), "200k took " + t200 + " s, 50k " + t50 + " s: not linear");
    }
}
