package io.moescore.arrow;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

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
 * an error; a perplexity past a double's range is the largest finite double), optional {@code token_logprobs} list&lt;float32&gt; and {@code top_tokens} list&lt;int32&gt;, and
 * {@code error} utf8 (null when the row was scored). Names are in {@link Columns}.
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
        fields.add(Field.notNullable(Columns.NUM_TOKENS, INT32));
        fields.add(Field.nullable(Columns.SUM_LOGPROB, FLOAT64));
        fields.add(Field.nullable(Columns.MEAN_NLL, FLOAT64));
        fields.add(Field.nullable(Columns.PERPLEXITY, FLOAT64));
        if (tokenLogProbs) {
            fields.add(list(Columns.TOKEN_LOGPROBS, FLOAT32));
        }
        if (topTokens) {
            fields.add(list(Columns.TOP_TOKENS, INT32));
        }
        fields.add(Field.nullable(Columns.ERROR, ArrowType.Utf8.INSTANCE));
        return new Schema(fields);
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
        if (!(tokens.getType() instanceof ArrowType.List) || !tokens.getChildren().get(0).getType().equals(INT32)) {
            throw new ArrowSchemaException(where + "column " + Columns.TOKENS + " has type " + typeName(tokens)
                    + ", expected list<int32>");
        }
        Field text = find(schema, Columns.TEXT);
        if (text != null && !(text.getType() instanceof ArrowType.Utf8)) {
            throw new ArrowSchemaException(where + "column " + Columns.TEXT + " has type " + typeName(text)
                    + ", expected utf8");
        }
        return idType;
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
            case Binary -> "binary";
            case Bool -> "bool";
            case List -> "list<" + typeName(field.getChildren().get(0)) + ">";
            case LargeList -> "large_list<" + typeName(field.getChildren().get(0)) + ">";
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
