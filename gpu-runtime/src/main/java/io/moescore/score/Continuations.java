package io.moescore.score;

import io.moescore.model.TextTokenizer;

/**
 * Continuation scoring's rows (lm-evaluation-harness's {@code loglikelihood} requests): a context and a
 * continuation, scored as one sequence, context first. Text is split into tokens as lm-evaluation-harness's
 * {@code HFLM._encode_pair} does: whitespace at the end of the context moves to the front of the continuation,
 * then the context and the whole string (context + continuation) are tokenized, and the continuation's tokens are
 * the whole string's after as many tokens as the context has. The sequence scored is the context's tokens followed
 * by those (as lm-evaluation-harness scores {@code context_enc + continuation_enc}).
 */
public final class Continuations {
    private Continuations() {
    }

    /**
     * A row to score: its context's tokens, then its continuation's.
     *
     * @param tokens        the sequence scored
     * @param contextLength how many of them are the context's (at least 1; the rest, at least 1, the continuation's)
     */
    public record Pair(int[] tokens, int contextLength) {
        public int continuationLength() {
            return tokens.length - contextLength;
        }
    }

    /**
     * Token ids given as such.
     *
     * @throws IllegalArgumentException naming what is empty
     */
    public static Pair ofTokens(int[] context, int[] continuation) {
        int[] tokens = new int[context.length + continuation.length];
        System.arraycopy(context, 0, tokens, 0, context.length);
        System.arraycopy(continuation, 0, tokens, context.length, continuation.length);
        return checked(tokens, context.length, "");
    }

    /**
     * Text, tokenized with the model's tokenizer (no special tokens added) as lm-evaluation-harness splits a pair.
     *
     * @throws IllegalArgumentException naming what is empty (an empty context: lm-evaluation-harness scores the
     *                                  continuation after the model's BOS or EOS token; give that token as the
     *                                  context's tokens)
     */
    public static Pair ofText(TextTokenizer tokenizer, String context, String continuation) {
        int spaces = trailingWhitespace(context);
        if (spaces > 0) {
            continuation = context.substring(context.length() - spaces) + continuation;
            context = context.substring(0, context.length() - spaces);
        }
        int[] contextTokens = tokenizer.encode(context);
        int[] whole = tokenizer.encode(context + continuation);
        int contextLength = contextTokens.length;
        int continuationLength = Math.max(0, whole.length - contextLength);
        int[] tokens = new int[contextLength + continuationLength];
        System.arraycopy(contextTokens, 0, tokens, 0, contextLength);
        System.arraycopy(whole, contextLength, tokens, contextLength, continuationLength);
        return checked(tokens, contextLength, context.isEmpty() ? " (lm-evaluation-harness scores a continuation "
                + "after the model's BOS or EOS token: give that token as the context's tokens)" : "");
    }

    private static Pair checked(int[] tokens, int contextLength, String emptyContextHint) {
        if (contextLength == 0) {
            throw new IllegalArgumentException("context has no tokens: the continuation's first token would have "
                    + "nothing before it" + emptyContextHint);
        }
        if (tokens.length == contextLength) {
            throw new IllegalArgumentException("continuation has no tokens: there is nothing to score");
        }
        return new Pair(tokens, contextLength);
    }

    /**
     * How many chars at the end of {@code text} are whitespace as Python's {@code str.isspace} sees it (what
     * lm-evaluation-harness's {@code context.rstrip()} removes): Unicode category Zs, or bidirectional class WS, B
     * or S. Every such character is in the Basic Multilingual Plane, so chars are code points here.
     */
    static int trailingWhitespace(String text) {
        int n = 0;
        while (n < text.length() && isPythonSpace(text.charAt(text.length() - 1 - n))) {
            n++;
        }
        return n;
    }

    static boolean isPythonSpace(char c) {
        byte direction = Character.getDirectionality(c);
        return Character.getType(c) == Character.SPACE_SEPARATOR
                || direction == Character.DIRECTIONALITY_WHITESPACE
                || direction == Character.DIRECTIONALITY_PARAGRAPH_SEPARATOR
                || direction == Character.DIRECTIONALITY_SEGMENT_SEPARATOR;
    }
}
