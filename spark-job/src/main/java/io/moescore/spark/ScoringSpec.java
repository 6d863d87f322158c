package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.score.ScoreSettings;
import java.io.Serializable;
import java.util.Map;

/**
 * What every task needs to score its partition; sent to executors with the task.
 *
 * @param modelUri           the model directory: a local path (present on every node) or any Hadoop FS URI
 * @param settings           how rows are scored (backend, precision, batch tokens, CPU threads per executor, ...)
 * @param tokensColumn       the token ids column (array&lt;int&gt; or array&lt;bigint&gt;), used where present and not null
 * @param textColumn         the text column (string), tokenized with the model's tokenizer where there are no tokens
 * @param hadoopConf         the driver's Hadoop settings, to read the model on executors
 * @param contextColumn      continuation scoring's context column (string, array&lt;int&gt; or array&lt;bigint&gt;):
 *                           an input with it (and {@code continuationColumn}) is scored as continuations
 * @param continuationColumn continuation scoring's continuation column, of the context's kind
 */
public record ScoringSpec(String modelUri, ScoreSettings settings, String tokensColumn, String textColumn,
                          Map<String, String> hadoopConf, String contextColumn, String continuationColumn)
        implements Serializable {
    public ScoringSpec {
        if (modelUri == null || modelUri.isBlank()) {
            throw new IllegalArgumentException("no model directory given");
        }
        if (settings == null) {
            throw new IllegalArgumentException("no scoring settings given");
        }
        hadoopConf = Map.copyOf(hadoopConf);
    }

    /** A spec whose continuation columns have their default names, {@code context} and {@code continuation}. */
    public ScoringSpec(String modelUri, ScoreSettings settings, String tokensColumn, String textColumn,
                       Map<String, String> hadoopConf) {
        this(modelUri, settings, tokensColumn, textColumn, hadoopConf, ScoreColumns.CONTEXT,
                ScoreColumns.CONTINUATION);
    }

    /** This spec for another model directory. */
    public ScoringSpec withModel(String uri) {
        return new ScoringSpec(uri, settings, tokensColumn, textColumn, hadoopConf, contextColumn,
                continuationColumn);
    }
}
