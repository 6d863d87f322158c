package io.moescore.spark;

import io.moescore.model.TextTokenizer;
import java.util.function.Supplier;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.util.ArrayData;

/**
 * One input row's token ids as the scoring job reads them: the tokens column where it holds a value, else the text
 * column tokenized with the model's tokenizer; or, with tokens null, why the row has none.
 */
record RowTokens(int[] tokens, String error) {
    static RowTokens of(InternalRow row, InputLayout layout, Supplier<TextTokenizer> tokenizer) {
        if (layout.corruptRecord() >= 0 && !row.isNullAt(layout.corruptRecord())) {
            return failed(malformed(row.getUTF8String(layout.corruptRecord()).toString()));
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
        int n = array.numElements();
        for (int i = 0; i < n; i++) {
            if (array.isNullAt(i)) {
                return failed(nullId(i));
            }
        }
        if (!tokensAreLong) {
            return new RowTokens(array.toIntArray(), null);
        }
        long[] wide = array.toLongArray();
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            if (wide[i] < Integer.MIN_VALUE || wide[i] > Integer.MAX_VALUE) {
                return failed(outsideInt(wide[i], i));
            }
            ids[i] = (int) wide[i];
        }
        return new RowTokens(ids, null);
    }
}
