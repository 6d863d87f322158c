package io.moescore.spark;

import java.io.Serializable;

/**
 * Where the scorer finds its inputs in each row (ordinals; -1 where absent) and their kinds.
 *
 * @param corruptRecord   Spark's {@code _corrupt_record} column (JSON read in PERMISSIVE mode): set on malformed rows
 * @param tokensAreLong   the tokens column is array&lt;bigint&gt; (JSON input) rather than array&lt;int&gt;
 * @param context         continuation scoring's context column, or null: the rows are scored from tokens or text
 *                        (with a context, tokens and text are not read)
 * @param continuation    continuation scoring's continuation column (null exactly where the context is)
 */
record InputLayout(int tokens, int text, int corruptRecord, boolean tokensAreLong, Part context, Part continuation)
        implements Serializable {
    /** What a continuation column holds. */
    enum Kind {
        /** string */
        TEXT,
        /** array&lt;int&gt; */
        INTS,
        /** array&lt;bigint&gt; */
        LONGS,
        /** variant (JSON input): text or a list of ids, per row */
        VARIANT
    }

    /** A continuation-scoring column: its ordinal, what it holds and its name (for row errors). */
    record Part(int ordinal, Kind kind, String name) implements Serializable {
    }

    InputLayout(int tokens, int text, int corruptRecord, boolean tokensAreLong) {
        this(tokens, text, corruptRecord, tokensAreLong, null, null);
    }

    /** Whether the rows are continuation scoring's: a context and a continuation each. */
    boolean continuations() {
        return context != null;
    }
}
