package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.model.TextTokenizer;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A continuation row's tokens: lm-evaluation-harness's split of a text pair, and the checks of both forms. */
class ContinuationsTest {
    /** Every code point Python 3.11's str.isspace() calls whitespace (what context.rstrip() removes). */
    static final Set<Integer> PYTHON_SPACES = IntStream.of(9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760,
            8192, 8193, 8194, 8195, 8196, 8197, 8198, 8199, 8200, 8201, 8202, 8232, 8233, 8239, 8287, 12288).boxed()
            .collect(Collectors.toSet());
    static TextTokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = TextTokenizer.load(TestModels.demoModel());
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    @Test
    void whitespaceIsWhatPythonsIsspaceSays() {
        for (char c = 0; c < Character.MAX_VALUE; c++) {
            assertEquals(PYTHON_SPACES.contains((int) c), Continuations.isPythonSpace(c), "U+" + Integer.toHexString(c));
        }
        assertEquals(3, Continuations.trailingWhitespace("ab \t\u00a0"));
        assertEquals(0, Continuations.trailingWhitespace("a b"));
        assertEquals(2, Continuations.trailingWhitespace("  "));
    }

    @Test
    void textIsSplitAsLmEvaluationHarnessSplitsAPair() {
        String context = "def add(a, b):\n    ";
        String continuation = "return a + b";
        Continuations.Pair pair = Continuations.ofText(tokenizer, context, continuation);
        // _encode_pair: the context's trailing whitespace moves to the continuation, then whole[len(context):]
        int[] contextTokens = tokenizer.encode("def add(a, b):");
        int[] whole = tokenizer.encode(context + continuation);
        assertEquals(contextTokens.length, pair.contextLength());
        assertArrayEquals(contextTokens, Arrays.copyOf(pair.tokens(), pair.contextLength()));
        assertArrayEquals(Arrays.copyOfRange(whole, contextTokens.length, whole.length),
                Arrays.copyOfRange(pair.tokens(), pair.contextLength(), pair.tokens().length));
        assertTrue(pair.continuationLength() > 0);
        Continuations.Pair plain = Continuations.ofText(tokenizer, "x = 1", " + 2");
        assertArrayEquals(tokenizer.encode("x = 1"), Arrays.copyOf(plain.tokens(), plain.contextLength()));
    }

    @Test
    void emptyPartsAreRefusedSayingWhy() {
        String empty = assertThrows(IllegalArgumentException.class,
                () -> Continuations.ofText(tokenizer, "", "return 1")).getMessage();
        assertTrue(empty.startsWith("context has no tokens") && empty.contains("BOS or EOS"), empty);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Continuations.ofText(tokenizer, "x = 1", ""))
                .getMessage().startsWith("continuation has no tokens"));
        assertThrows(IllegalArgumentException.class, () -> Continuations.ofTokens(new int[0], new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> Continuations.ofTokens(new int[] {1}, new int[0]));
        Continuations.Pair ids = Continuations.ofTokens(new int[] {5, 6}, new int[] {7});
        assertArrayEquals(new int[] {5, 6, 7}, ids.tokens());
        assertEquals(2, ids.contextLength());
    }
}
