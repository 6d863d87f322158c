package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model and input read from, and output written to, a real (in-process) HDFS. */
class HdfsScoreJobTest {
    static MiniDFSCluster hdfs;
    static SparkSession spark;
    @TempDir
    static Path base;

    @BeforeAll
    static void start() throws IOException {
        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.resolve("hdfs").toString());
        hdfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
        hdfs.waitActive();
        spark = SparkTests.localSession();
    }

    @AfterAll
    static void stop() {
        spark.stop();
        hdfs.shutdown();
    }

    @Test
    void scoresFromHdfsToHdfs() throws IOException {
        FileSystem fs = hdfs.getFileSystem();
        String root = hdfs.getURI().toString();
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SparkTests.demoModel().toUri()),
                new org.apache.hadoop.fs.Path(root + "/models/tiny-moe-code"));
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(SparkTests.demoInput().toUri()),
                new org.apache.hadoop.fs.Path(root + "/data/input.jsonl"));
        String out = root + "/results/scores";
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(root + "/data/input.jsonl"), "json",
                out, "parquet", root + "/models/tiny-moe-code", false, 0, 2, 8192));
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out + "/_SUCCESS")));
        assertTrue(fs.exists(new org.apache.hadoop.fs.Path(out + ".summary.json")), "summary beside the output on HDFS");

        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), base, false, 0);
        Map<String, Double> expected = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode n = json.readTree(line);
            expected.put(n.get("id").asText(), n.get("sum_logprob").asDouble());
        }
        List<Row> rows = spark.read().parquet(out).collectAsList();
        assertEquals(24, rows.size());
        for (Row r : rows) {
            assertEquals(expected.get(r.<String>getAs("id")), r.<Double>getAs("sum_logprob"), 0.0);
        }
    }
}
