package io.moescore.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.OneToOneDependency;
import org.apache.spark.Partition;
import org.apache.spark.ShuffleDependency;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.execution.datasources.FilePartition;
import org.apache.spark.sql.execution.datasources.FileScanRDD;
import org.apache.spark.sql.execution.datasources.PartitionedFile;
import org.apache.spark.sql.execution.datasources.v2.DataSourceRDD;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Names the input splits of a scan so that a rerun over the same input finds the same names: each partition of the
 * input RDD gets an id, a hash of what it reads. For the built-in file sources (Parquet, JSON) that is the file
 * ranges of its FilePartition (path, start, length); for a DataSource V2 source (arrow-io's {@code arrow}) its
 * input partitions' descriptions (arrow-io: one file per partition); after the job's repartition by id hash, the
 * partition's number of N. The walk from the RDD to its source follows one-to-one dependencies only, so partition i
 * of the RDD is partition i of the source.
 */
final class InputSplits {
    private InputSplits() {
    }

    /**
     * One id per partition of {@code rdd}, in partition order.
     *
     * @param repartitionedById true when the rows went through the job's {@code repartition(N, id)}: a shuffle is
     *                          then the split boundary, and its partitions are identified by number
     */
    static List<String> ids(RDD<?> rdd, boolean repartitionedById) {
        int n = rdd.partitions().length;
        List<String> descriptions = describe(rdd, n, repartitionedById);
        List<String> ids = new ArrayList<>(n);
        for (String d : descriptions) {
            ids.add(ResumeManifest.sha256(d).substring(0, 24));
        }
        if (ids.stream().distinct().count() != ids.size()) {
            throw new IllegalArgumentException("--resume: two input splits read the same data, so they cannot be "
                    + "told apart: " + descriptions);
        }
        return ids;
    }

    private static List<String> describe(RDD<?> rdd, int n, boolean repartitionedById) {
        RDD<?> at = rdd;
        while (true) {
            if (at instanceof FileScanRDD) {
                return describe(at.partitions(), InputSplits::fileRanges);
            }
            if (at instanceof DataSourceRDD) {
                return describe(at.partitions(), InputSplits::sourcePartitions);
            }
            var deps = CollectionConverters.asJava(at.dependencies());
            if (repartitionedById && deps.size() == 1 && deps.get(0) instanceof ShuffleDependency<?, ?, ?>) {
                List<String> out = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    out.add("partition " + i + " of " + n + " by id hash");
                }
                return out;
            }
            if (deps.size() != 1 || !(deps.get(0) instanceof OneToOneDependency<?> one)
                    || one.rdd().partitions().length != n) {
                throw new IllegalArgumentException("--resume cannot name the input splits of this plan (at "
                        + at + "): read Parquet, JSON or Arrow files, optionally with --partitions");
            }
            at = one.rdd();
        }
    }

    private static List<String> describe(Partition[] partitions, java.util.function.Function<Partition, String> how) {
        List<String> out = new ArrayList<>(partitions.length);
        for (Partition p : partitions) {
            out.add(how.apply(p));
        }
        return out;
    }

    private static String fileRanges(Partition p) {
        StringBuilder sb = new StringBuilder();
        for (PartitionedFile f : ((FilePartition) p).files()) {
            sb.append(f.filePath()).append('\t').append(f.start()).append('\t').append(f.length()).append('\n');
        }
        return sb.toString();
    }

    private static String sourcePartitions(Partition p) {
        StringBuilder sb = new StringBuilder();
        for (InputPartition in : SparkInternals.inputPartitions(p)) {
            sb.append(in).append('\n');
        }
        return sb.toString();
    }
}
