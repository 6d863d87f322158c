package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The safetensors weights of a model directory: a single {@code model.safetensors}, or shards listed by
 * {@code model.safetensors.index.json}. Every tensor name resolves to a {@link TensorRef}; the index is checked
 * against the shards so a tensor the index promises but a shard lacks is reported with both file names.
 */
public final class Checkpoint implements AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path directory;
    private final List<SafeTensorsFile> files;
    private final Map<String, TensorRef> tensors;

    private Checkpoint(Path directory, List<SafeTensorsFile> files, Map<String, TensorRef> tensors) {
        this.directory = directory;
        this.files = files;
        this.tensors = tensors;
    }

    public static Checkpoint open(Path directory) {
        Path index = ModelDirectory.find(directory, INDEX_FILE);
        List<SafeTensorsFile> files = new ArrayList<>();
        try {
            Map<String, TensorRef> tensors = new LinkedHashMap<>();
            if (index != null) {
                Map<String, String> weightMap = readWeightMap(index);
                Map<String, SafeTensorsFile> byName = new LinkedHashMap<>();
                for (String shard : new java.util.TreeSet<>(weightMap.values())) {
                    SafeTensorsFile file = SafeTensorsFile.open(shardPath(directory, index, shard));
                    files.add(file);
                    byName.put(shard, file);
                }
                for (Map.Entry<String, String> e : weightMap.entrySet()) {
                    SafeTensorsFile file = byName.get(e.getValue());
                    SafeTensorsFile.Entry entry = file.entries().get(e.getKey());
                    if (entry == null) {
                        throw new ModelFormatException(index + " places tensor " + e.getKey() + " in "
                                + file.path() + ", which does not contain it");
                    }
                    tensors.put(e.getKey(), new TensorRef(file, entry));
                }
            } else {
                Path single = ModelDirectory.find(directory, SINGLE_FILE);
                if (single == null) {
                    throw new ModelFormatException("model directory " + directory + " has neither " + SINGLE_FILE
                            + " nor " + INDEX_FILE + listSafetensors(directory));
                }
                SafeTensorsFile file = SafeTensorsFile.open(single);
                files.add(file);
                for (SafeTensorsFile.Entry entry : file.entries().values()) {
                    tensors.put(entry.name(), new TensorRef(file, entry));
                }
            }
            return new Checkpoint(directory, List.copyOf(files), tensors);
        } catch (RuntimeException e) {
            files.forEach(SafeTensorsFile::close);
            throw e;
        }
    }

    /** A shard the index names, checked to be a regular file inside the model directory (ModelDirectory). */
    private static Path shardPath(Path directory, Path index, String shard) {
        Path path;
        try {
            path = ModelDirectory.find(directory, shard);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(index + " names shard " + shard + ": " + e.getMessage(), e);
        }
        if (path == null) {
            throw new ModelFormatException(index + " names shard " + shard + ", but "
                    + directory.resolve(shard).normalize() + " does not exist");
        }
        return path;
    }

    private static Map<String, String> readWeightMap(Path index) {
        JsonNode root = ModelJson.read(index, "shard index");
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new ModelFormatException("shard index " + index + " has no weight_map object");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new ModelFormatException("shard index " + index + ": tensor " + e.getKey()
                        + " maps to " + e.getValue() + ", not a file name");
            }
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        return weightMap;
    }

    private static String listSafetensors(Path directory) {
        try (Stream<Path> s = Files.list(directory)) {
            List<String> names = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors"))
                    .sorted().toList();
            return names.isEmpty() ? "" : " (it has " + names + " without an index)";
        } catch (IOException e) {
            return "";
        }
    }

    public Path directory() {
        return directory;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor of that name, or an error naming it and the model directory. */
    public TensorRef get(String name) {
        TensorRef ref = tensors.get(name);
        if (ref == null) {
            throw new ModelFormatException("model " + directory + " has no tensor " + name);
        }
        return ref;
    }

    /** The tensor of that name, checked to have exactly the given shape. */
    public TensorRef get(String name, long... expectedShape) {
        TensorRef ref = get(name);
        if (!Arrays.equals(ref.shape(), expectedShape)) {
            throw new ModelFormatException("tensor " + name + " in " + ref.file() + " has shape "
                    + Arrays.toString(ref.shape()) + " but config.json implies " + Arrays.toString(expectedShape));
        }
        return ref;
    }

    /**
     * The tensor of that name, checked to have the shape config.json implies; a mismatch names the config
     * fields behind each dimension that disagrees (every dimension where the ranks differ).
     */
    public TensorRef get(String name, ConfigDim... expected) {
        TensorRef ref = get(name);
        long[] shape = ref.shape();
        long[] sizes = Arrays.stream(expected).mapToLong(ConfigDim::size).toArray();
        if (Arrays.equals(shape, sizes)) {
            return ref;
        }
        List<String> fields = new ArrayList<>();
        for (int d = 0; d < expected.length; d++) {
            if (shape.length != sizes.length || shape[d] != sizes[d]) {
                fields.add((shape.length == sizes.length ? "dimension " + d + " is " : "") + expected[d].describe());
            }
        }
        throw new ModelFormatException("tensor " + name + " in " + ref.file() + " has shape " + Arrays.toString(shape)
                + " but config.json implies " + Arrays.toString(sizes) + ": " + String.join(", ", fields));
    }

    public Iterable<String> tensorNames() {
        return tensors.keySet();
    }

    @Override
    public void close() {
        files.forEach(SafeTensorsFile::close);
    }
}
