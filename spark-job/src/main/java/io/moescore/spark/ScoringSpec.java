package io.moescore.spark;

import io.moescore.score.ScoreSettings;
import java.io.Serializable;
import java.util.Map;

/**
 * What every task needs to score its partition; sent to executors with the task.
 *
 * @param modelUri     the model directory: a local path (present on every node) or any Hadoop FS URI
 * @param settings     how rows are scored (backend, precision, batch tokens, CPU threads per executor, ...)
 * @param tokensColumn the token ids column (array&lt;int&gt; or array&lt;bigint&gt;), used where present and not null
 * @param textColumn   the text column (string), tokenized with the model's tokenizer where there are no tokens
 * @param hadoopConf   the driver's Hadoop settings, to read the model on executors
 */
public record ScoringSpec(String modelUri, ScoreSettings settings, String tokensColumn, String textColumn,
                          Map<String, String> hadoopConf) implements Serializable {
    public ScoringSpec {
        if (modelUri == null || modelUri.isBlank()) {
            throw new IllegalArgumentException("no model directory given");
        }
        if (settings == null) {
            throw new IllegalArgumentException("no scoring settings given");
        }
        hadoopConf = Map.copyOf(hadoopConf);
    }

    /** This spec for another model directory. */
    public ScoringSpec withModel(String uri) {
        return new ScoringSpec(uri, settings, tokensColumn, textColumn, hadoopConf);
    }
}
