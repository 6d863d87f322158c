package io.moescore.model;

/**
 * One dimension that config.json implies for a weight: its size and the config field(s) it comes from, so a
 * checkpoint that disagrees is told which field to look at ({@code hidden_size}, {@code 2 x intermediate_size},
 * {@code num_key_value_heads x head_dim}).
 */
public record ConfigDim(long size, String fields) {
    public static ConfigDim of(String field, long size) {
        return new ConfigDim(size, field);
    }

    /** The product of two fields' dimensions ({@code num_attention_heads x head_dim}). */
    public ConfigDim times(ConfigDim other) {
        return new ConfigDim(size * other.size, fields + " x " + other.fields);
    }

    /** {@code factor} times this ({@code 2 x intermediate_size}: gate and up rows fused). */
    public ConfigDim times(int factor) {
        return new ConfigDim(factor * size, factor + " x " + fields);
    }

    /** This divided by {@code divisor} (a packed format's columns: {@code hidden_size / 2}). */
    public ConfigDim divide(int divisor) {
        return new ConfigDim(size / divisor, fields + " / " + divisor);
    }

    /** The size as an int, for the loaders that index with ints (ModelConfig bounds every field it names). */
    public int intSize() {
        return Math.toIntExact(size);
    }

    /** "hidden_size = 2048". */
    public String describe() {
        return fields + " = " + size;
    }
}
