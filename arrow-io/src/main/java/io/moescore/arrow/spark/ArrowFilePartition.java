package io.moescore.arrow.spark;

import org.apache.spark.sql.connector.read.InputPartition;

/** One Arrow file, read by one task. */
record ArrowFilePartition(String path) implements InputPartition {
}
