package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;

import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.Test;

class ArrowSchemasTest {
    @Test
    void tokenSchemasValidate() {
        assertEquals(IdType.INT64, ArrowSchemas.validateTokens(ArrowSchemas.tokens(IdType.INT64, false), null));
        assertEquals(IdType.UTF8, ArrowSchemas.validateTokens(ArrowSchemas.tokens(IdType.UTF8, true), null));
    }

    @Test
    void resultSchemaHasTheDocumentedColumnsInOrder() {
        Schema full = ArrowSchemas.results(IdType.INT64, true, true);
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "token_logprobs",
                "top_tokens", "error"), full.getFields().stream().map(Field::getName).toList());
        assertEquals(List.of("int64", "int32", "float64", "float64", "float64", "list<float32>", "list<int32>",
                "utf8"), full.getFields().stream().map(ArrowSchemas::typeName).toList());
        Schema plain = ArrowSchemas.results(IdType.UTF8, false, false);
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "error"),
                plain.getFields().stream().map(Field::getName).toList());
        assertEquals("utf8", ArrowSchemas.typeName(plain.findField("id")));
    }

    @Test
    void missingColumnIsNamedWithTheColumnsFound() {
        Schema schema = new Schema(List.of(Field.nullable("a", new ArrowType.Int(64, true)),
                Field.nullable("b", ArrowType.Utf8.INSTANCE)));
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class,
                () -> ArrowSchemas.validateTokens(schema, "in.arrow"));
        assertEquals("in.arrow: no column id (columns: a, b)", e.getMessage());

        Schema noTokens = new Schema(List.of(Field.nullable("id", new ArrowType.Int(64, true))));
        e = assertThrows(ArrowSchemaException.class, () -> ArrowSchemas.validateTokens(noTokens, null));
        assertEquals("no column tokens (columns: id)", e.getMessage());
    }

    @Test
    void wrongTypesNameColumnFoundAndExpected() {
        String expected = ", expected list<int32> or list<int64> (or a large_list or fixed_size_list of them)";
        assertMessage("x.arrow: column tokens has type list<int16>" + expected,
                schema(new ArrowType.Int(64, true), list(new ArrowType.Int(16, true))));
        assertMessage("x.arrow: column tokens has type list<uint32>" + expected,
                schema(new ArrowType.Int(64, true), list(new ArrowType.Int(32, false))));
        assertMessage("x.arrow: column tokens has type utf8" + expected,
                schema(new ArrowType.Int(64, true), Field.nullable("tokens", ArrowType.Utf8.INSTANCE)));
        assertMessage("x.arrow: column id has type int32, expected int64 or utf8",
                schema(new ArrowType.Int(32, true), list(new ArrowType.Int(32, true))));
        assertMessage("x.arrow: column id has type uint64, expected int64 or utf8",
                schema(new ArrowType.Int(64, false), list(new ArrowType.Int(32, true))));
        Schema badText = new Schema(List.of(Field.nullable("id", ArrowType.Utf8.INSTANCE),
                list(new ArrowType.Int(32, true)), Field.nullable("text", new ArrowType.Int(8, true))));
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class,
                () -> ArrowSchemas.validateTokens(badText, "x.arrow"));
        assertEquals("x.arrow: column text has type int8, expected utf8 (also large_utf8, string_view or "
                + "dictionary<utf8>)", e.getMessage());
    }

    @Test
    void extraColumnsAreAllowed() {
        Schema schema = new Schema(List.of(Field.nullable("extra", ArrowType.Bool.INSTANCE),
                Field.nullable("id", ArrowType.Utf8.INSTANCE), list(new ArrowType.Int(32, true))));
        assertEquals(IdType.UTF8, ArrowSchemas.validateTokens(schema, null));
    }

    private static void assertMessage(String expected, Schema schema) {
        ArrowSchemaException e = assertThrows(ArrowSchemaException.class,
                () -> ArrowSchemas.validateTokens(schema, "x.arrow"));
        assertEquals(expected, e.getMessage());
    }

    private static Schema schema(ArrowType idType, Field tokens) {
        return new Schema(List.of(Field.nullable("id", idType), tokens));
    }

    private static Field list(ArrowType element) {
        return new Field("tokens", FieldType.nullable(ArrowType.List.INSTANCE),
                List.of(Field.nullable("item", element)));
    }
}
