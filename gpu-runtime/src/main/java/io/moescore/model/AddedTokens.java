package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The added tokens of a tokenizer.json, matched in Java exactly as the Hugging Face tokenizers library (0.21, the
 * version DJL 0.38 bundles) matches them, in time linear in their number. That library adds the tokens one by one,
 * each time scanning every token added before (AddedVocabulary::add_tokens), which made a 50k-token vocabulary take
 * ~10 s to load and 200k ~3 minutes. {@link TextTokenizer} uses this class for large added vocabularies only, and
 * only where it is exact (see {@link #exactFor}); the text between added tokens still goes to the library.
 *
 * <p>What is reproduced (tokenizers/src/tokenizer/added_vocabulary.rs): the id each token gets (its content's id in
 * the model's vocabulary, else the next id after the largest added so far, at least the vocabulary size; an
 * identical token listed twice is added once; a content listed again keeps its id and takes the later flags), the
 * leftmost-longest matching of the non-normalized tokens on the raw text and then of the normalized ones on each
 * piece between (equal to the raw piece: this class is used only without a normalizer when any token is
 * normalized), and each match's single_word, lstrip and rstrip rules, with Rust regex's Unicode \w and \s.
 */
final class AddedTokens {
    /** One added token's flags, as the library compares them (all fields). */
    record Token(String content, boolean singleWord, boolean lstrip, boolean rstrip, boolean normalized,
                 boolean special) {
    }

    /** A piece of text: an added token's id, or -1 for text the library's model encodes. */
    record Piece(int id, String text) {
    }

    private final Map<Integer, Token> byId;
    private final CharTrie raw;
    private final CharTrie normalized;

    private AddedTokens(Map<Integer, Token> byId, CharTrie raw, CharTrie normalized) {
        this.byId = byId;
        this.raw = raw;
        this.normalized = normalized;
    }

    /**
     * Why this class cannot reproduce the library for this tokenizer.json, or null when it can: every added token
     * well formed (the library would refuse others), a model vocabulary it can read, no normalized token where
     * there is a normalizer, and no Metaspace pre-tokenizer that prepends only at the start of the whole text
     * (prepend_scheme "first": each piece would count as a start).
     */
    static String exactFor(JsonNode root) {
        JsonNode added = root.get("added_tokens");
        if (added == null || !added.isArray()) {
            return "no added_tokens list";
        }
        boolean hasNormalizer = root.hasNonNull("normalizer");
        for (JsonNode t : added) {
            if (parse(t) == null) {
                return "an added token is not {id, content, single_word, lstrip, rstrip, normalized, special}";
            }
            if (hasNormalizer && t.get("normalized").asBoolean()) {
                return "normalized added tokens with a normalizer";
            }
        }
        if (vocabulary(root.get("model")) == null) {
            return "a model vocabulary of another form";
        }
        if (mentions(root.get("pre_tokenizer"), "prepend_scheme", "first")) {
            return "a Metaspace pre-tokenizer with prepend_scheme first";
        }
        return null;
    }

    /** The added tokens of a tokenizer.json for which {@link #exactFor} found nothing. */
    static AddedTokens of(JsonNode root) {
        Vocabulary vocab = vocabulary(root.get("model"));
        List<Token> tokens = new ArrayList<>();
        for (JsonNode t : root.get("added_tokens")) {
            tokens.add(parse(t));
        }
        // AddedVocabulary::add_tokens: special tokens first (each content once), then every token in order
        List<Token> special = new ArrayList<>();
        Set<String> specialSet = new HashSet<>();
        for (Token t : tokens) {
            if (t.special() && !t.content().isEmpty() && specialSet.add(t.content())) {
                special.add(t);
            }
        }
        Map<String, Integer> idOf = new HashMap<>();
        Map<Integer, Token> byId = new HashMap<>();
        Map<Token, Integer> stored = new HashMap<>();  // how many ids hold each token (its "already added" test)
        List<Token> plain = new ArrayList<>();
        int largest = -1;
        for (Token t : tokens) {
            if (t.content().isEmpty() || stored.getOrDefault(t, 0) > 0) {
                continue;
            }
            Integer id = idOf.get(t.content());
            if (id == null) {
                id = vocab.ids().get(t.content());
            }
            if (id == null) {
                id = largest < 0 ? vocab.size() : largest >= vocab.size() || vocab.size() == 0 ? largest + 1
                        : vocab.size();
            }
            idOf.put(t.content(), id);
            largest = Math.max(largest, id);
            Token before = byId.put(id, t);
            if (before != null) {
                stored.merge(before, -1, Integer::sum);
            }
            stored.merge(t, 1, Integer::sum);
            if (!specialSet.contains(t.content())) {
                plain.add(t);
            }
        }
        // refresh_added_tokens: special then plain tokens, split by their own normalized flag
        CharTrie raw = new CharTrie();
        CharTrie normalized = new CharTrie();
        for (List<Token> list : List.of(special, plain)) {
            for (Token t : list) {
                (t.normalized() ? normalized : raw).add(t.content(), idOf.get(t.content()));
            }
        }
        return new AddedTokens(byId, raw, normalized);
    }

    int size() {
        return byId.size();
    }

    /**
     * The text split as the library's extract_and_normalize splits it: added tokens by id, the rest as text
     * pieces (empty pieces dropped).
     */
    List<Piece> split(String text) {
        List<Piece> out = new ArrayList<>();
        for (Piece p : findMatches(text, raw)) {
            if (p.id() >= 0) {
                out.add(p);
            } else {
                out.addAll(findMatches(p.text(), normalized));
            }
        }
        out.removeIf(p -> p.text().isEmpty());
        return out;
    }

    /** AddedVocabulary::find_matches over one sentence and one trie. */
    private List<Piece> findMatches(String sentence, CharTrie trie) {
        List<Piece> splits = new ArrayList<>();
        if (sentence.isEmpty() || trie.isEmpty()) {
            splits.add(new Piece(-1, sentence));
            return splits;
        }
        int startOffset = 0;
        int at = 0;
        while (at < sentence.length()) {
            long match = trie.longestAt(sentence, at);
            if (match < 0) {
                at++;
                continue;
            }
            int matchEnd = (int) (match >>> 32);
            int id = (int) match;
            int start = at;
            int stop = matchEnd;
            at = matchEnd;  // the matcher goes on after the match, whatever lstrip/rstrip make of it
            Token token = byId.get(id);
            if (token.singleWord()) {
                boolean startSpace = start == 0 || !isWord(sentence.codePointBefore(start));
                boolean stopSpace = stop == sentence.length() || !isWord(sentence.codePointAt(stop));
                if (!startSpace || !stopSpace) {
                    continue;
                }
            }
            if (token.lstrip()) {
                start = Math.max(spacesEndingAt(sentence, start), startOffset);
            }
            if (token.rstrip()) {
                stop = spacesStartingAt(sentence, stop);
            }
            if (start > stop) {  // lstrip resumed past this match's end: the library's slice fails and it aborts
                throw new IllegalArgumentException("the added tokens at characters " + at + " and before overlap"
                        + " (an rstrip token's spaces swallow an lstrip token): the tokenizers library cannot split"
                        + " this text");
            }
            if (startOffset < start) {
                splits.add(new Piece(-1, sentence.substring(startOffset, start)));
            }
            splits.add(new Piece(id, sentence.substring(start, stop)));
            startOffset = stop;
        }
        if (startOffset != sentence.length()) {
            splits.add(new Piece(-1, sentence.substring(startOffset)));
        }
        return splits;
    }

    /** Where the run of whitespace ending at {@code end} begins (Rust regex \s*$ on sentence[..end]). */
    private static int spacesEndingAt(String s, int end) {
        int i = end;
        while (i > 0 && isSpace(s.codePointBefore(i))) {
            i -= Character.charCount(s.codePointBefore(i));
        }
        return i;
    }

    /** Where the run of whitespace starting at {@code from} ends (Rust regex ^\s* on sentence[from..]). */
    private static int spacesStartingAt(String s, int from) {
        int i = from;
        while (i < s.length() && isSpace(s.codePointAt(i))) {
            i += Character.charCount(s.codePointAt(i));
        }
        return i;
    }

    /** Rust regex's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, join controls. */
    static boolean isWord(int cp) {
        int type = Character.getType(cp);
        return Character.isAlphabetic(cp) || type == Character.NON_SPACING_MARK || type == Character.ENCLOSING_MARK
                || type == Character.COMBINING_SPACING_MARK || type == Character.DECIMAL_DIGIT_NUMBER
                || type == Character.CONNECTOR_PUNCTUATION || cp == 0x200C || cp == 0x200D;
    }

    /** Rust regex's Unicode \s: the White_Space property (not Java's isWhitespace, which omits no-break spaces). */
    static boolean isSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    /** The fields of one added token, or null where the library would refuse it (or its content is not text). */
    private static Token parse(JsonNode t) {
        if (t == null || !t.isObject() || !t.has("id") || !t.get("id").canConvertToInt()
                || !t.hasNonNull("content") || !t.get("content").isTextual()) {
            return null;
        }
        for (String flag : new String[] {"single_word", "lstrip", "rstrip", "normalized", "special"}) {
            if (!t.has(flag) || !t.get(flag).isBoolean()) {
                return null;
            }
        }
        String content = t.get("content").asText();
        if (!wellFormed(content)) {
            return null;
        }
        return new Token(content, t.get("single_word").asBoolean(), t.get("lstrip").asBoolean(),
                t.get("rstrip").asBoolean(), t.get("normalized").asBoolean(), t.get("special").asBoolean());
    }

    /** No unpaired surrogate: text the library's UTF-8 strings can hold. */
    private static boolean wellFormed(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return false;
            }
        }
        return true;
    }

    /** The model's token -> id map and its vocab_size as the library counts it. */
    private record Vocabulary(Map<String, Integer> ids, int size) {
    }

    /** BPE, WordPiece and WordLevel: {token: id}; Unigram: [[piece, score], ...] with ids by position. */
    private static Vocabulary vocabulary(JsonNode model) {
        JsonNode vocab = model == null ? null : model.get("vocab");
        if (vocab == null) {
            return null;
        }
        Map<String, Integer> ids = new HashMap<>();
        if (vocab.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().canConvertToInt()) {
                    return null;
                }
                ids.put(e.getKey(), e.getValue().asInt());
            }
            return new Vocabulary(ids, ids.size());
        }
        if (vocab.isArray()) {
            int i = 0;
            for (JsonNode piece : vocab) {
                if (!piece.isArray() || piece.size() < 1 || !piece.get(0).isTextual()) {
                    return null;
                }
                ids.put(piece.get(0).asText(), i++);
            }
            return new Vocabulary(ids, vocab.size());
        }
        return null;
    }

    /** True where any object in the tree has {@code key} = {@code value}. */
    private static boolean mentions(JsonNode node, String key, String value) {
        if (node == null) {
            return false;
        }
        if (node.isObject() && node.has(key) && value.equals(node.get(key).asText())) {
            return true;
        }
        for (JsonNode child : node) {
            if (mentions(child, key, value)) {
                return true;
            }
        }
        return false;
    }

    /**
     * A trie over UTF-16 chars in flat arrays (no object per node): edges in an open-addressing table keyed by
     * (node, char), each node's pattern value or -1. {@link #longestAt} is the leftmost-longest step.
     */
    static final class CharTrie {
        private long[] keys = new long[1 << 10];
        private int[] targets = new int[1 << 10];
        private int edges;
        private int[] values = {-1};
        private int nodes = 1;

        boolean isEmpty() {
            return nodes == 1;
        }

        /** Adds a pattern; the first value given for a pattern stays. */
        void add(String pattern, int value) {
            int node = 0;
            for (int i = 0; i < pattern.length(); i++) {
                int next = child(node, pattern.charAt(i));
                if (next < 0) {
                    next = newNode();
                    put(node, pattern.charAt(i), next);
                }
                node = next;
            }
            if (values[node] < 0) {
                values[node] = value;
            }
        }

        /** The longest pattern starting at {@code from}: (end << 32) | value, or -1 when none starts there. */
        long longestAt(String text, int from) {
            long best = -1;
            int node = 0;
            for (int i = from; i < text.length(); i++) {
                node = child(node, text.charAt(i));
                if (node < 0) {
                    break;
                }
                if (values[node] >= 0) {
                    best = ((long) (i + 1) << 32) | values[node];
                }
            }
            return best;
        }

        private int newNode() {
            if (nodes == values.length) {
                int old = values.length;
                values = Arrays.copyOf(values, old * 2);
                Arrays.fill(values, old, values.length, -1);
            }
            return nodes++;
        }

        private static long key(int node, char c) {
            return ((long) node << 16 | c) + 1;  // never 0: 0 marks an empty slot
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 32) & (keys.length - 1);
        }

        private int child(int node, char c) {
            long key = key(node, c);
            for (int s = slot(key); keys[s] != 0; s = (s + 1) & (keys.length - 1)) {
                if (keys[s] == key) {
                    return targets[s];
                }
            }
            return -1;
        }

        private void put(int node, char c, int target) {
            if (2 * (edges + 1) > keys.length) {
                long[] oldKeys = keys;
                int[] oldTargets = targets;
                keys = new long[oldKeys.length * 2];
                targets = new int[oldKeys.length * 2];
                for (int i = 0; i < oldKeys.length; i++) {
                    if (oldKeys[i] != 0) {
                        insert(oldKeys[i], oldTargets[i]);
                    }
                }
            }
            insert(key(node, c), target);
            edges++;
        }

        private void insert(long key, int target) {
            int s = slot(key);
            while (keys[s] != 0) {
                s = (s + 1) & (keys.length - 1);
            }
            keys[s] = key;
            targets[s] = target;
        }
    }
}
