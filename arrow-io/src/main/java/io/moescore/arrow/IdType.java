package io.moescore.arrow;

import org.apache.arrow.vector.types.pojo.ArrowType;

/** The two types a row id may have, in input and result alike. */
public enum IdType {
    INT64(new ArrowType.Int(64, true)),
    UTF8(ArrowType.Utf8.INSTANCE);

    private final ArrowType arrowType;

    IdType(ArrowType arrowType) {
        this.arrowType = arrowType;
    }

    public ArrowType arrowType() {
        return arrowType;
    }

    /** The id type whose Arrow type is {@code type}, or null when ids may not have that type. */
    static IdType of(ArrowType type) {
        for (IdType t : values()) {
            if (t.arrowType.equals(type)) {
                return t;
            }
        }
        return null;
    }
}
