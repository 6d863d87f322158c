package io.moescore.arrow;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

import io.moescore.batch.ScoreColumns;
import org.apache.arrow.vector.types.FloatingPointPrecision;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * moescore's two Arrow schemas and the check of an input schema.
 *
 * <p>Token batches (input): {@code id} int64 or utf8, {@code tokens} list&lt;int32&gt;, optional {@code text}
 * utf8; other columns are allowed and ignored.
 *
 * <p>Results: {@code id} (the input's type), {@code num_tokens} int32, {@code sum_logprob} float64 (null when
 * the row has an error), {@code mean_nll} and {@code perplexity} float64 (null where there is no next token or
 * an error; a perplexity past a double's range is the largest finite double), optional {@code token_logprobs}
 * list&lt;float32&gt; and {@code top_tokens} list&lt;int32&gt;; with long rows scored, {@code num_windows} int32 and
 * {@code truncated} bool; for continuation rows {@code continuation_logprob} float64 (null on an error),
 * {@code continuation_tokens} int32 and {@code is_greedy} bool (null on an error); and {@code error} utf8 (null
 * when the row was scored). Names are in {@link Columns}, their order in {@link ScoreColumns.Layout}.
 */
public final class ArrowSchemas {
    public static final ArrowType INT32 = new ArrowType.Int(32, true);
    public static final ArrowType FLOAT32 = new ArrowType.FloatingPoint(FloatingPointPrecision.SINGLE);
    public static final ArrowType FLOAT64 = new ArrowType.FloatingPoint(FloatingPointPrecision.DOUBLE);

    private ArrowSchemas() {
    }

    /** The input schema: id, tokens and, if {@code withText}, text. */
    public static Schema tokens(IdType idType, boolean withText) {
        List<Field> fields = new ArrayList<>();
        fields.add(Field.nullable(Columns.ID, idType.arrowType()));
        fields.add(list(Columns.TOKENS, INT32));
        if (withText) {
            fields.add(Field.nullable(Columns.TEXT, ArrowType.Utf8.INSTANCE));
        }
        return new Schema(fields);
    }

    /** The result schema, with the optional per-token log-prob and top-token columns when asked for. */
    public static Schema results(IdType idType, boolean tokenLogProbs, boolean topTokens) {
        List<Field> fields = new ArrayList<>();
        fields.add(Field.nullable(Columns.ID, idType.arrowType()));
        fields.addAll(scores(tokenLogProbs, topTokens));
        return new Schema(fields);
    }

    /** The result columns after {@code id}, in order (the Spark job's score columns). */
    public static List<Field> scores(boolean tokenLogProbs, boolean topTokens) {
        return scores(new ScoreColumns.Layout(tokenLogProbs, topTokens, false, false));
    }

    /** The result columns after {@code id} that {@code layout} lists, in its order. */
    public static List<Field> scores(ScoreColumns.Layout layout) {
        List<Field> fields = new ArrayList<>();
        for (String name : layout.names()) {
            fields.add(switch (name) {
                case Columns.NUM_TOKENS, Columns.NUM_WINDOWS, Columns.CONTINUATION_TOKENS -> Field.notNullable(name,
                        INT32);
                case Columns.SUM_LOGPROB, Columns.MEAN_NLL, Columns.PERPLEXITY, Columns.CONTINUATION_LOGPROB ->
                        Field.nullable(name, FLOAT64);
                case Columns.TOKEN_LOGPROBS -> list(name, FLOAT32);
                case Columns.TOP_TOKENS -> list(name, INT32);
                case Columns.TRUNCATED -> Field.notNullable(name, ArrowType.Bool.INSTANCE);
                case Columns.IS_GREEDY -> Field.nullable(name, ArrowType.Bool.INSTANCE);
                case Columns.ERROR -> Field.nullable(name, ArrowType.Utf8.INSTANCE);
                default -> throw new IllegalStateException("no Arrow type for column " + name);
            });
        }
        return fields;
    }

    /**
     * Checks that {@code schema} is a token-batch schema and returns its id type.
     *
     * @param source what the schema came from (a file name), put at the front of the message; may be null
     * @throws ArrowSchemaException naming the column and its found and expected types
     */
    public static IdType validateTokens(Schema schema, String source) {
        String where = source == null ? "" : source + ": ";
        Field id = require(schema, Columns.ID, where);
        IdType idType = IdType.of(id.getType());
        if (idType == null) {
            throw new ArrowSchemaException(where + "column " + Columns.ID + " has type " + typeName(id)
                    + ", expected int64 or utf8");
        }
        Field tokens = require(schema, Columns.TOKENS, where);
        if (!(tokens.getType() instanceof ArrowType.List) || !isTokenId(tokens.getChildren().get(0).getType())) {
            throw new ArrowSchemaException(where + "column " + Columns.TOKENS + " has type " + typeName(tokens)
                    + ", expected " + TOKEN_TYPES);
        }
        Field text = find(schema, Columns.TEXT);
        if (text != null && !isText(text.getType())) {
            throw new ArrowSchemaException(where + "column " + Columns.TEXT + " has type " + typeName(text)
                    + ", expected " + TEXT_TYPES);
        }
        return idType;
    }

    /** The token types read, as every reader's error message names them (after {@link NormalizedRoot}). */
    public static final String TOKEN_TYPES = "list<int32> or list<int64> (or a large_list or "
            + "fixed_size_list of them)";
    /** The text types read. */
    public static final String TEXT_TYPES = "utf8 (also large_utf8, string_view or dictionary<utf8>)";

    /** Whether a list's values of this type are token ids: int32, or int64 (checked per id when read). */
    public static boolean isTokenId(ArrowType type) {
        return type instanceof ArrowType.Int i && i.getIsSigned() && (i.getBitWidth() == 32 || i.getBitWidth() == 64);
    }

    /** Whether a column of this type (after {@link NormalizedRoot}) is text. */
    public static boolean isText(ArrowType type) {
        return type instanceof ArrowType.Utf8 || type instanceof ArrowType.LargeUtf8;
    }

    /** The type of {@code field} as pyarrow prints it: int64, utf8, list&lt;int32&gt;, float32, ... */
    public static String typeName(Field field) {
        ArrowType type = field.getType();
        return switch (type.getTypeID()) {
            case Int -> {
                ArrowType.Int i = (ArrowType.Int) type;
                yield (i.getIsSigned() ? "int" : "uint") + i.getBitWidth();
            }
            case FloatingPoint -> switch (((ArrowType.FloatingPoint) type).getPrecision()) {
                case HALF -> "float16";
                case SINGLE -> "float32";
                case DOUBLE -> "float64";
            };
            case Utf8 -> "utf8";
            case LargeUtf8 -> "large_utf8";
            case Utf8View -> "string_view";
            case Binary -> "binary";
            case LargeBinary -> "large_binary";
            case BinaryView -> "binary_view";
            case Bool -> "bool";
            case List -> "list<" + typeName(field.getChildren().get(0)) + ">";
            case LargeList -> "large_list<" + typeName(field.getChildren().get(0)) + ">";
            case FixedSizeList -> "fixed_size_list<" + typeName(field.getChildren().get(0)) + ">["
                    + ((ArrowType.FixedSizeList) type).getListSize() + "]";
            case ListView -> "list_view<" + typeName(field.getChildren().get(0)) + ">";
            case Struct -> "struct<" + field.getChildren().stream().map(c -> c.getName() + ": " + typeName(c))
                    .collect(Collectors.joining(", ")) + ">";
            default -> type.toString().toLowerCase(Locale.ROOT);
        };
    }

    private static Field list(String name, ArrowType elementType) {
        // "item" is the element name pyarrow gives, so our lists equal pa.list_(pa.int32()) there.
        Field element = new Field("item", FieldType.nullable(elementType), null);
        return new Field(name, FieldType.nullable(ArrowType.List.INSTANCE), List.of(element));
    }

    private static Field require(Schema schema, String name, String where) {
        Field field = find(schema, name);
        if (field == null) {
            String columns = schema.getFields().stream().map(Field::getName).collect(Collectors.joining(", "));
            throw new ArrowSchemaException(where + "no column " + name + " (columns: " + columns + ")");
        }
        return field;
    }

    private static Field find(Schema schema, String name) {
        for (Field f : schema.getFields()) {
            if (f.getName().equals(name)) {
                return f;
            }
        }
        return null;
    }
}
