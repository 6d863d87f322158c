package io.moescore.sparse;

import com.fasterxml.jackson.databind.JsonNode;
import io.moescore.model.DType;
import io.moescore.model.ModelDirectory;
import io.moescore.model.ModelFormatException;
import io.moescore.model.ModelJson;
import io.moescore.model.SafeTensorsWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The structured sparsity patterns of routed expert weights, by the names {@code --pattern} and the manifest
 * (sparsity.json) use, and how each is pruned and written. Tensors of a weight NAME: 2:4 {@code NAME.sp24_values}
 * [rows, cols/2] and {@code NAME.sp24_meta} [rows, cols/32] ({@link Sparse24.Packed}); 128:2:8 the same two for its
 * condensed matrix [rows/2, cols] and {@code NAME.vs128_keep} [rows/2, slices] (U8, {@link VectorSparse.Packed}).
 */
public enum SparsityPattern {
    /** 2 of every 4 along the input dimension ({@link Sparse24}), 50%. */
    TWO_FOUR("2:4"),
    /** Samoyeds' vector-wise 2 of every 8 ({@link VectorSparse}), 75%. */
    VECTOR_128_2_8(VectorSparse.PATTERN);

    /** Suffixes of a 2:4 sparse weight's packed values and metadata (the sparsify tool's format). */
    public static final String SPARSE_VALUES = ".sp24_values";
    public static final String SPARSE_META = ".sp24_meta";
    /** Suffix of a 128:2:8 weight's row choices, U8 [rows/2, slices]; its condensed matrix is 2:4 packed as above. */
    public static final String VECTOR_SPARSE_KEEP = ".vs128_keep";

    /** The manifest the sparsify tool writes beside a compressed checkpoint's weights. */
    public static final String MANIFEST = "sparsity.json";

    private final String userName;

    SparsityPattern(String userName) {
        this.userName = userName;
    }

    /** As {@code --pattern}, the manifest and {@code experts=} write it: "2:4", "128:2:8". */
    public String userName() {
        return userName;
    }

    public static List<String> names() {
        return Arrays.stream(values()).map(SparsityPattern::userName).toList();
    }

    /** The pattern of that name, or an error naming {@code --pattern} and the choices. */
    public static SparsityPattern parse(String name) {
        return named(name).orElseThrow(
                () -> new IllegalArgumentException("--pattern must be one of " + names() + ", got '" + name + "'"));
    }

    private static Optional<SparsityPattern> named(String name) {
        return Arrays.stream(values()).filter(p -> p.userName.equals(name)).findFirst();
    }

    /**
     * The pattern a model directory's manifest names; null where it has no manifest (a dense checkpoint, or a 2:4 one
     * written before manifests). An unreadable manifest or an unknown pattern is an error naming the file.
     */
    public static SparsityPattern ofCheckpoint(Path directory) {
        Path manifest = ModelDirectory.find(directory, MANIFEST);
        if (manifest == null) {
            return null;
        }
        return ofManifest(ModelJson.read(manifest, "sparsity manifest"), manifest.toString());
    }

    /** The pattern a parsed manifest names ({@code where}: the file, for errors), as {@link #ofCheckpoint}. */
    public static SparsityPattern ofManifest(JsonNode manifest, String where) {
        JsonNode pattern = manifest.get("pattern");
        if (pattern == null || !pattern.isTextual()) {
            throw new ModelFormatException(where + " names no \"pattern\"");
        }
        return named(pattern.asText()).orElseThrow(() -> new ModelFormatException(where + ": pattern '"
                + pattern.asText() + "' is not one of " + names()));
    }

    /** The pattern of the fewest bytes per weight: a lower bound for a checkpoint whose pattern is not known. */
    public static SparsityPattern smallest() {
        return Arrays.stream(values()).min(java.util.Comparator.comparingDouble(SparsityPattern::bytesPerWeight))
                .orElseThrow();
    }

    /**
     * Bytes per weight of the dense matrix, stored with 16-bit values: 2:4 half the values + a 4-bit metadata nibble
     * per 4 (1.125); 128:2:8 a quarter of the values, their 2:4 metadata and a keep byte per 2 x 128 (0.566).
     */
    public double bytesPerWeight() {
        return this == TWO_FOUR ? 0.5 * 2 + 1 / 8.0 : 0.25 * 2 + 1 / 16.0 + 1 / 256.0;
    }

    public float[] pruneMagnitude(float[] w, int rows, int cols) {
        return this == TWO_FOUR ? Sparse24.pruneMagnitude(w, rows, cols) : VectorSparse.pruneMagnitude(w, rows, cols);
    }

    public float[] pruneWanda(float[] w, int rows, int cols, double[] inputNorms) {
        return this == TWO_FOUR ? Sparse24.pruneWanda(w, rows, cols, inputNorms)
                : VectorSparse.pruneWanda(w, rows, cols, inputNorms);
    }

    /** Packs a weight already pruned to this pattern and adds its tensors, as the engine's weight loader reads them. */
    public void addPacked(SafeTensorsWriter writer, String name, DType stored, float[] pruned, int rows, int cols) {
        if (this == TWO_FOUR) {
            addTwoFour(writer, name, stored, Sparse24.pack(pruned, rows, cols));
            return;
        }
        VectorSparse.Packed p = VectorSparse.pack(pruned, rows, cols);
        addTwoFour(writer, name, stored, p.condensed());
        writer.addBytes(name + VECTOR_SPARSE_KEEP, p.keep(), rows / 2, p.slices());
    }

    private static void addTwoFour(SafeTensorsWriter writer, String name, DType stored, Sparse24.Packed p) {
        writer.add(name + SPARSE_VALUES, stored, p.values(), p.rows(), p.cols() / 2);
        writer.addInts(name + SPARSE_META, p.meta(), p.rows(), p.cols() / 32);
    }
}
