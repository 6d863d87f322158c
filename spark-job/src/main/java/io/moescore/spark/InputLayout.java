package io.moescore.spark;

import java.io.Serializable;

/**
 * Where the scorer finds its inputs in each row (ordinals; -1 where absent) and their kinds.
 *
 * @param idIsString      the id column is a string (else a 64-bit integer)
 * @param tokensAreLong   the tokens column is array&lt;bigint&gt; (JSON input) rather than array&lt;int&gt;
 */
record InputLayout(int id, int tokens, int text, int corruptRecord, boolean idIsString, boolean tokensAreLong)
        implements Serializable {
}
