package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.model.TextTokenizer;
import io.moescore.score.Continuations;
import java.util.function.Supplier;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.types.variant.Variant;
import org.apache.spark.types.variant.VariantUtil;
import org.apache.spark.unsafe.types.VariantVal;

/**
 * One input row's token ids as the scoring job reads them: the tokens column where it holds a value, else the text
 * column tokenized with the model's tokenizer; or, with tokens null, why the row has none. A continuation row's are
 * its context's then its continuation's ({@link Continuations}), {@code contextLength} of them the context's (-1
 * for other rows).
 */
record RowTokens(int[] tokens, String error, int contextLength) {
    RowTokens(int[] tokens, String error) {
        this(tokens, error, -1);
    }

    static RowTokens of(InternalRow row, InputLayout layout, Supplier<TextTokenizer> tokenizer) {
        if (layout.corruptRecord() >= 0 && !row.isNullAt(layout.corruptRecord())) {
            return failed(malformed(row.getUTF8String(layout.corruptRecord()).toString()));
        }
        if (layout.continuations()) {
            return pair(value(row, layout.context()), value(row, layout.continuation()), layout, tokenizer);
        }
        if (layout.tokens() >= 0 && !row.isNullAt(layout.tokens())) {
            return ids(row.getArray(layout.tokens()), layout.tokensAreLong());
        }
        if (layout.text() >= 0 && !row.isNullAt(layout.text())) {
            try {
                return new RowTokens(tokenizer.get().encode(row.getUTF8String(layout.text()).toString()), null);
            } catch (RuntimeException e) {
                return failed(notTokenized(e));
            }
        }
        return failed(missing(layout));
    }

    /** The error of a row Spark's JSON reader could not parse ({@code raw}: the line). */
    static String malformed(String raw) {
        return "malformed input record: " + (raw.length() > 200 ? raw.substring(0, 200) + "..." : raw);
    }

    /** The error of a row whose text the tokenizer refused. */
    static String notTokenized(RuntimeException e) {
        return "cannot tokenize text: " + e.getMessage();
    }

    /** The error of a row with neither tokens nor text. */
    static String missing(InputLayout layout) {
        return layout.tokens() < 0 ? "text is null"
                : layout.text() < 0 ? "tokens is null" : "both tokens and text are null";
    }

    /** The error of a row holding an id outside int32. */
    static String outsideInt(long id, int position) {
        return "token id " + id + " at position " + position + " is outside the vocabulary";
    }

    /** The error of a row holding a null id. */
    static String nullId(int position) {
        return "tokens[" + position + "] is null";
    }

    private static RowTokens failed(String error) {
        return new RowTokens(null, error);
    }

    private static RowTokens ids(ArrayData array, boolean tokensAreLong) {
        try {
            return new RowTokens(ids(array, tokensAreLong, ScoreColumns.TOKENS), null);
        } catch (IllegalArgumentException e) {
            return failed(e.getMessage());
        }
    }

    /** The ids of a list; an IllegalArgumentException names a null id or one outside int32 ({@code column[i]}). */
    private static int[] ids(ArrayData array, boolean longs, String column) {
        int n = array.numElements();
        for (int i = 0; i < n; i++) {
            if (array.isNullAt(i)) {
                throw new IllegalArgumentException(column.equals(ScoreColumns.TOKENS) ? nullId(i)
                        : column + "[" + i + "] is null");
            }
        }
        if (!longs) {
            return array.toIntArray();
        }
        long[] wide = array.toLongArray();
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            if (wide[i] < Integer.MIN_VALUE || wide[i] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(column.equals(ScoreColumns.TOKENS) ? outsideInt(wide[i], i)
                        : column + "[" + i + "] = " + wide[i] + " is outside the vocabulary");
            }
            ids[i] = (int) wide[i];
        }
        return ids;
    }

    /** A continuation column's value in a row: UTF8String, ArrayData or VariantVal as its kind says; null if null. */
    private static Object value(InternalRow row, InputLayout.Part part) {
        int o = part.ordinal();
        if (row.isNullAt(o)) {
            return null;
        }
        return switch (part.kind()) {
            case TEXT -> row.getUTF8String(o);
            case INTS, LONGS -> row.getArray(o);
            case VARIANT -> row.getVariant(o);
        };
    }

    /**
     * A continuation row's tokens from its context and continuation values ({@link #value}): both text (tokenized
     * as lm-evaluation-harness splits a pair), or both lists of ids; or why the row cannot be scored, naming the
     * column.
     */
    private static RowTokens pair(Object context, Object continuation, InputLayout layout,
                                  Supplier<TextTokenizer> tokenizer) {
        InputLayout.Part[] parts = {layout.context(), layout.continuation()};
        Object[] values = {context, continuation};
        try {
            for (int i = 0; i < 2; i++) {
                if (values[i] instanceof VariantVal v) {
                    values[i] = fromVariant(new Variant(v.getValue(), v.getMetadata()), parts[i].name());
                } else if (values[i] instanceof ArrayData array) {
                    values[i] = ids(array, parts[i].kind() == InputLayout.Kind.LONGS, parts[i].name());
                } else if (values[i] != null) {
                    values[i] = values[i].toString();
                }
                if (values[i] == null) {
                    return failed(parts[i].name() + " is null: a continuation row needs a " + parts[0].name()
                            + " and a " + parts[1].name());
                }
            }
            if (values[0] instanceof int[] contextIds && values[1] instanceof int[] continuationIds) {
                return paired(Continuations.ofTokens(contextIds, continuationIds));
            }
            if (!(values[0] instanceof String contextText && values[1] instanceof String continuationText)) {
                return failed(parts[0].name() + " and " + parts[1].name() + " must both be text or both lists of "
                        + "token ids");
            }
            TextTokenizer t;
            try {
                t = tokenizer.get();
            } catch (RuntimeException e) {
                return failed(notTokenized(e));
            }
            return paired(Continuations.ofText(t, contextText, continuationText));
        } catch (IllegalArgumentException e) {  // the message names the column, or what is empty
            return failed(e.getMessage());
        } catch (RuntimeException e) {
            return failed(notTokenized(e));
        }
    }

    private static RowTokens paired(Continuations.Pair pair) {
        return new RowTokens(pair.tokens(), null, pair.contextLength());
    }

    /**
     * A variant's value (JSON input) as text (String) or token ids (int[]); null for a JSON null. Anything else is an
     * IllegalArgumentException naming the column and what it holds.
     */
    private static Object fromVariant(Variant v, String column) {
        switch (v.getType()) {
            case NULL:
                return null;
            case STRING:
                return v.getString();
            case ARRAY:
                int[] ids = new int[v.arraySize()];
                for (int i = 0; i < ids.length; i++) {
                    Variant e = v.getElementAtIndex(i);
                    long id = e.getType() == VariantUtil.Type.LONG ? e.getLong() : Long.MIN_VALUE;
                    if (id < Integer.MIN_VALUE || id > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException(column + "[" + i + "] = "
                                + e.toJson(java.time.ZoneOffset.UTC) + " is not a 32-bit integer token id");
                    }
                    ids[i] = (int) id;
                }
                return ids;
            default:
                throw new IllegalArgumentException(column + " is a " + v.getType().name()
                        .toLowerCase(java.util.Locale.ROOT) + ", not text or a list of token ids");
        }
    }
}
