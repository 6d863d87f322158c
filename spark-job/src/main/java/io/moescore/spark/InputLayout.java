package io.moescore.spark;

import java.io.Serializable;

/**
 * Where the scorer finds its inputs in each row (ordinals; -1 where absent) and their kinds.
 *
 * @param corruptRecord   Spark's {@code _corrupt_record} column (JSON read in PERMISSIVE mode): set on malformed rows
 * @param tokensAreLong   the tokens column is array&lt;bigint&gt; (JSON input) rather than array&lt;int&gt;
 */
record InputLayout(int tokens, int text, int corruptRecord, boolean tokensAreLong) implements Serializable {
}
