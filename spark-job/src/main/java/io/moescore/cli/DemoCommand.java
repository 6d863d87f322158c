package io.moescore.cli;

import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import io.moescore.spark.CommandSettings;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code moescore demo}: runs the Spark scoring job in local mode on demo/input.jsonl (held-out Python code,
 * prose and random tokens) with the trained demo model, then prints the perplexity of each kind: code is what
 * the model learned, so it scores lowest.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Runs the Spark scoring job (local mode) on the bundled demo and prints perplexity by kind.")
final class DemoCommand implements Callable<Integer>, CommandSettings.Command {
    @Option(names = "--output", description = "output folder (default: out/demo/scores, replaced each run)")
    Path output;

    @Option(names = "--master", defaultValue = "local[2]", description = "Spark master (default: ${DEFAULT-VALUE})")
    String master;

    @Spec
    CommandSpec spec;

    @Override
    public List<Setting<?>> settings() {
        return List.of(ScoreSettings.BACKEND);
    }

    @Override
    public boolean readsConf() {
        return false;
    }

    @Override
    public Integer call() {
        Path home = Moescore.home();
        ScoreSettings settings = ScoreSettings.resolve(CommandSettings.source(spec, null))
                .with(ScoreSettings.TOP_K, 5);
        String out = (output != null ? output : home.resolve("out/demo/scores")).toString();
        ScoreJobOptions options = new ScoreJobOptions(List.of(home.resolve("demo/input.jsonl").toString()), "json",
                out, "json", home.resolve("demo/tiny-moe-code").toString(),
                settings, "overwrite",
                "id", "tokens", "text", 2, null);
        SparkSession spark = SparkSession.builder().appName("moescore demo").master(master)
                .config("spark.ui.enabled", "false").getOrCreate();
        try {
            JobSummary summary = MoeScoreJob.score(spark, options);
            summary.print(System.err);
            List<Row> kinds = spark.read().json(out).selectExpr("substring_index(id, '-', 1) AS kind",
                    "sum_logprob", "num_tokens - 1 AS predicted").groupBy("kind")
                    .agg(org.apache.spark.sql.functions.expr("exp(-sum(sum_logprob) / sum(predicted))").alias("ppl"),
                            org.apache.spark.sql.functions.expr("sum(predicted)").alias("tokens"))
                    .orderBy("kind").collectAsList();
            System.out.printf("%-8s %10s %12s%n", "kind", "tokens", "perplexity");
            for (Row r : kinds) {
                System.out.printf("%-8s %10d %12.2f%n", r.getString(0), r.getLong(2), r.getDouble(1));
            }
            System.out.println("scores: " + out + "  summary: " + options.resolvedSummaryPath());
            return summary.errorRows() == 0 ? 0 : 3;
        } finally {
            spark.stop();
        }
    }
}
