package io.moescore.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.input_file_name;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.not;
import static org.apache.spark.sql.functions.schema_of_variant;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.to_json;
import static org.apache.spark.sql.functions.variant_get;
import static org.apache.spark.sql.functions.when;

import io.moescore.batch.ScoreColumns;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The jobs' input: Arrow, Parquet or JSON lines from any Hadoop file system, read the same way by the scoring job
 * and by jobs that only need the tokens (calibration).
 *
 * <ul>
 *   <li>Every input must name some data file: a path that does not exist, a glob that matches nothing, or a folder
 *       with no files but hidden ones (names starting with {@code _} or {@code .}) is refused by name, in every
 *       format. Data files that hold no rows are a valid, empty input.</li>
 *   <li>JSON is read with an explicit schema, never inferred: tokens {@code array<bigint>}, text {@code string},
 *       the id as a variant, continuation scoring's {@code context} and {@code continuation} as variants (text or
 *       a list of ids, per row; dropped where no row has either), and Spark's {@code _corrupt_record}. A line whose field has another type (tokens
 *       {@code "1 2 3"}) is that row's error, never a refusal of the whole column. Ids keep their JSON type: all
 *       integers give a {@code bigint} id, all strings a {@code string} id; a file mixing them, or holding another
 *       kind of id, is refused naming the column, the kinds and an example of each. That takes one pass over the
 *       input on the driver, as Spark's schema inference did.</li>
 * </ul>
 * Every refusal is an {@link IllegalArgumentException} naming the input, before any task scores.
 */
final class JobInput {
    private static final String ID_KIND = "kind";
    private static final String EXAMPLE = "example";
    private static final String HAS_CONTENT = "has_content";
    private static final String HAS_PAIR = "has_pair";

    private JobInput() {
    }

    /**
     * The input as a DataFrame (lazy, bar the checks above).
     *
     * @param idColumn the id column of JSON input, or null where no id is needed (none is then read)
     */
    static Dataset<Row> read(SparkSession spark, List<String> inputs, String format, String idColumn,
                             String tokensColumn, String textColumn) {
        requireDataFiles(inputs, spark.sparkContext().hadoopConfiguration());
        DataFrameReader reader = spark.read().format(format);
        if (format.equals("json")) {
            reader = reader.schema(jsonSchema(idColumn, tokensColumn, textColumn)).option("mode", "PERMISSIVE")
                    .option("columnNameOfCorruptRecord", DatasetScorer.CORRUPT_RECORD);
        }
        Dataset<Row> input;
        try {
            input = reader.load(inputs.toArray(String[]::new));
        } catch (UncheckedIOException e) { // arrow-io's source: a folder with no .arrow files, an unreadable file
            throw new IllegalArgumentException("cannot read input " + inputs + " as " + format + ": "
                    + e.getMessage(), e);
        } catch (Exception e) { // Spark throws AnalysisException (checked) for missing paths and bad schemas
            if (e instanceof org.apache.spark.sql.AnalysisException) {
                throw new IllegalArgumentException("cannot read input " + inputs + " as " + format + ": "
                        + e.getMessage(), e);
            }
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
        return format.equals("json") && idColumn != null
                ? typedJsonIds(input, inputs, idColumn, tokensColumn, textColumn) : input;
    }

    static StructType jsonSchema(String idColumn, String tokensColumn, String textColumn) {
        Set<String> names = new LinkedHashSet<>();
        StructType schema = new StructType();
        if (idColumn != null && names.add(idColumn)) {
            schema = schema.add(idColumn, DataTypes.VariantType);
        }
        if (names.add(tokensColumn)) {
            schema = schema.add(tokensColumn, DataTypes.createArrayType(DataTypes.LongType));
        }
        if (names.add(textColumn)) {
            schema = schema.add(textColumn, DataTypes.StringType);
        }
        for (String pairColumn : List.of(ScoreColumns.CONTEXT, ScoreColumns.CONTINUATION)) {
            if (names.add(pairColumn)) {
                schema = schema.add(pairColumn, DataTypes.VariantType);
            }
        }
        if (names.add(DatasetScorer.CORRUPT_RECORD)) {
            schema = schema.add(DatasetScorer.CORRUPT_RECORD, DataTypes.StringType);
        }
        return schema;
    }

    /**
     * The JSON input with its variant id column typed by what the rows hold, after one aggregation over the
     * well-formed rows: the kinds of id ({@code schema_of_variant}) with a count and an example each, and how many
     * rows have tokens or text.
     */
    private static Dataset<Row> typedJsonIds(Dataset<Row> input, List<String> inputs, String idColumn,
                                             String tokensColumn, String textColumn) {
        Column id = column(idColumn);
        Column hasPair = column(ScoreColumns.CONTEXT).isNotNull().or(column(ScoreColumns.CONTINUATION).isNotNull());
        Column hasContent = column(tokensColumn).isNotNull().or(column(textColumn).isNotNull()).or(hasPair);
        Column kind = col(ID_KIND);
        Column example = col(EXAMPLE);
        Column otherKind = kind.isNotNull().and(not(kind.isin("BIGINT", "STRING", "VOID")));
        // one global aggregate (a single reduce task); input_file_name() is not deterministic, which aggregate
        // functions refuse, so it is a column first
        Row found = input.where(column(DatasetScorer.CORRUPT_RECORD).isNull())
                .select(schema_of_variant(id).as(ID_KIND), concat(to_json(id), lit(" in "), input_file_name())
                        .as(EXAMPLE), when(hasContent, 1).otherwise(0).as(HAS_CONTENT),
                        when(hasPair, 1).otherwise(0).as(HAS_PAIR))
                .agg(count(lit(1)), sum(col(HAS_CONTENT)), min(when(kind.equalTo("BIGINT"), example)),
                        min(when(kind.equalTo("STRING"), example)),
                        min(when(otherKind, concat(kind, lit("\t"), example))), sum(col(HAS_PAIR)))
                .first();
        boolean pairs = !found.isNullAt(5) && found.getLong(5) > 0;
        long wellFormed = found.getLong(0);
        long withContent = found.isNullAt(1) ? 0 : found.getLong(1);
        Map<String, String> examples = new TreeMap<>();
        if (!found.isNullAt(2)) {
            examples.put("BIGINT", found.getString(2));
        }
        if (!found.isNullAt(3)) {
            examples.put("STRING", found.getString(3));
        }
        if (!found.isNullAt(4)) {
            String[] other = found.getString(4).split("\t", 2);
            examples.put(other[0], other[1]);
        }
        String type = idType(examples, wellFormed, inputs, idColumn);
        if (wellFormed > 0 && withContent == 0) {
            throw new IllegalArgumentException("input has neither a '" + tokensColumn + "' nor a '" + textColumn
                    + "' column (no row of " + inputs + " has one)");
        }
        List<Column> columns = new ArrayList<>();
        for (String name : input.columns()) {
            boolean pairColumn = name.equals(ScoreColumns.CONTEXT) || name.equals(ScoreColumns.CONTINUATION);
            if (pairColumn && !pairs && !name.equals(tokensColumn) && !name.equals(textColumn)) {
                continue;  // no continuation rows: an input of tokens or text
            }
            columns.add(name.equals(idColumn) ? variant_get(id, "$", type).as(idColumn) : column(name));
        }
        return input.select(columns.toArray(Column[]::new));
    }

    /** bigint or string: the one kind of id the rows hold (string where none has one). */
    private static String idType(Map<String, String> examples, long wellFormed, List<String> inputs, String idColumn) {
        if (examples.isEmpty()) {
            if (wellFormed > 0) {
                throw new IllegalArgumentException("input has no column '" + idColumn + "' (no row of " + inputs
                        + " has a non-null one)");
            }
            return "string";
        }
        if (examples.keySet().equals(Set.of("BIGINT"))) {
            return "bigint";
        }
        if (examples.keySet().equals(Set.of("STRING"))) {
            return "string";
        }
        StringBuilder found = new StringBuilder();
        examples.forEach((kind, example) -> found.append(found.length() == 0 ? "" : " and ").append(kindName(kind))
                .append(" (e.g. ").append(example).append(')'));
        throw new IllegalArgumentException("column '" + idColumn + "' of " + inputs + " holds " + found + ": ids keep "
                + "their JSON type, so they must be all integers (bigint) or all strings");
    }

    private static String kindName(String kind) {
        return switch (kind) {
            case "BIGINT" -> "integers";
            case "STRING" -> "strings";
            default -> kind.startsWith("DECIMAL") && kind.endsWith(",0)") ? "integers beyond bigint (" + kind + ")"
                    : kind + " values";
        };
    }

    /**
     * Refuses an input path that names no data file: missing, a glob matching nothing, or a folder with only hidden
     * files (Spark's rule: names starting with {@code .}, or with {@code _} unless they hold {@code =}).
     */
    static void requireDataFiles(List<String> inputs, Configuration conf) {
        for (String input : inputs) {
            try {
                Path path = new Path(input);
                FileSystem fs = path.getFileSystem(conf);
                FileStatus[] matches = fs.globStatus(path);
                if (matches == null || matches.length == 0) {
                    throw new IllegalArgumentException("input " + input
                            + (matches == null ? " does not exist" : " matches no files"));
                }
                boolean found = false;
                for (FileStatus m : matches) {
                    found |= m.isFile() || hasDataFile(fs, m.getPath());
                }
                if (!found) {
                    throw new IllegalArgumentException("input " + input + " holds no data files (an empty folder, or "
                            + "only names starting with _ or .): nothing to score. Files that hold no rows are an "
                            + "empty input, scored as 0 rows");
                }
            } catch (FileNotFoundException e) {
                throw new IllegalArgumentException("input " + input + " does not exist", e);
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot list input " + input + ": " + e.getMessage(), e);
            }
        }
    }

    /** True when {@code dir} or a folder below it that is not hidden holds a file that is not hidden. */
    private static boolean hasDataFile(FileSystem fs, Path dir) throws IOException {
        for (FileStatus child : fs.listStatus(dir)) {
            String name = child.getPath().getName();
            boolean hidden = name.startsWith(".") || name.startsWith("_") && !name.contains("=")
                    || name.endsWith("._COPYING_");
            if (!hidden && (child.isFile() || child.isDirectory() && hasDataFile(fs, child.getPath()))) {
                return true;
            }
        }
        return false;
    }

    private static Column column(String name) {
        return MoeScoreJob.column(name);
    }
}
