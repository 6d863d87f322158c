package io.moescore.arrow.spark;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.internal.SQLConf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/** The options of one read or write: its paths ({@code path}, or the JSON list {@code paths}) and the rest. */
record ArrowOptions(List<String> paths, Map<String, String> options) {
    static final String MAX_RECORDS_PER_BATCH = "maxRecordsPerBatch";

    static ArrowOptions of(Map<String, String> options) {
        Map<String, String> rest = new HashMap<>();
        List<String> paths = new ArrayList<>();
        for (Map.Entry<String, String> e : options.entrySet()) {
            switch (e.getKey().toLowerCase(Locale.ROOT)) {
                case "path" -> paths.add(e.getValue());
                case "paths" -> paths.addAll(parsePaths(e.getValue()));
                default -> rest.put(e.getKey(), e.getValue());
            }
        }
        if (paths.isEmpty()) {
            throw new IllegalArgumentException("the arrow data source needs a path: load(path) or save(path)");
        }
        return new ArrowOptions(List.copyOf(paths), Map.copyOf(rest));
    }

    /** The single path a write goes to. */
    String outputPath() {
        if (paths.size() != 1) {
            throw new IllegalArgumentException("the arrow data source writes to one directory, not " + paths);
        }
        return paths.get(0);
    }

    int maxRecordsPerBatch() {
        for (Map.Entry<String, String> e : options.entrySet()) {
            if (e.getKey().equalsIgnoreCase(MAX_RECORDS_PER_BATCH)) {
                int n = Integer.parseInt(e.getValue().trim());
                if (n < 1) {
                    throw new IllegalArgumentException("option " + MAX_RECORDS_PER_BATCH + " must be at least 1, not "
                            + n);
                }
                return n;
            }
        }
        int spark = SQLConf.get().arrowMaxRecordsPerBatch();
        return spark > 0 ? spark : Integer.MAX_VALUE; // Spark's own meaning of 0 or less: no limit
    }

    /** The session's Hadoop configuration with these options added (call on the driver). */
    Configuration hadoopConf() {
        Configuration conf = org.apache.spark.sql.classic.SparkSession.active().sessionState().newHadoopConf();
        options.forEach(conf::set);
        return conf;
    }

    private static List<String> parsePaths(String json) {
        try {
            return List.of(new ObjectMapper().readValue(json, String[].class));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("option paths is not a JSON list of strings: " + json, e);
        }
    }
}
