package io.moescore.spark;

import java.util.Arrays;
import java.util.List;
import org.apache.spark.SparkConf;

/** How the jobs read an option given either on their command line or as {@code spark.moescore.KEY} conf. */
public final class JobConf {
    private JobConf() {
    }

    /** The command-line value where given, else the conf's {@code spark.moescore.key}, else {@code fallback}. */
    public static String pick(String cli, SparkConf conf, String key, String fallback) {
        return cli != null ? cli : conf.get(MoeScoreJob.CONF_PREFIX + key, fallback);
    }

    /** A comma-separated conf value as its non-blank, trimmed items. */
    public static List<String> list(String value) {
        return Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    }
}
