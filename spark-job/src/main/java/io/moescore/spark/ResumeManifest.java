package io.moescore.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.score.ScoreSettings;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * What a resumable output was started with: the input (a hash of every input file's path, size and modification
 * time), the model (a hash of config.json and of every file's name and size in the model directory) and each option
 * that changes the scores or the output's shape. A restart may reuse committed splits only when every field is
 * equal; {@link #differences} names the fields that are not.
 */
record ResumeManifest(Map<String, String> fields) {
    private static final int VERSION = 1;

    ResumeManifest {
        fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    }

    static ResumeManifest of(ScoreJobOptions options, Configuration conf) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("input", inputHash(options.inputs(), conf));
        f.put("model", modelHash(options.model(), conf));
        f.put("inputFormat", options.inputFormat());
        f.put("outputFormat", options.outputFormat());
        // every scoring setting but those that change no score: the CPU's thread count, the memory cap, the devices
        // and the experts' placement on them
        Set<String> same = Set.of(ScoreSettings.CPU_THREADS.key(), ScoreSettings.DEVICE_MEMORY.key(),
                ScoreSettings.DEVICES.key(), ScoreSettings.PLACEMENT.key());
        options.scoring().describe().forEach((key, value) -> {
            if (!same.contains(key)) {
                f.put(key, String.valueOf(value));
            }
        });
        f.put("idColumn", options.idColumn());
        f.put("tokensColumn", options.tokensColumn());
        f.put("textColumn", options.textColumn());
        f.put("partitions", String.valueOf(options.partitions()));
        return new ResumeManifest(f);
    }

    /** "name (was X, now Y)" for every field that differs from {@code now}'s, in field order. */
    List<String> differences(ResumeManifest now) {
        List<String> out = new ArrayList<>();
        List<String> names = new ArrayList<>(fields.keySet());
        now.fields.keySet().stream().filter(k -> !fields.containsKey(k)).forEach(names::add);
        for (String name : names) {
            String was = fields.get(name);
            String is = now.fields.get(name);
            if (!Objects.equals(was, is)) {
                out.add(name + " (was " + was + ", now " + is + ")");
            }
        }
        return out;
    }

    void write(Path file, Configuration conf) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("version", VERSION);
        ObjectNode f = root.putObject("fields");
        fields.forEach(f::put);
        FileSystem fs = file.getFileSystem(conf);
        Path partial = new Path(file.getParent(), "." + file.getName() + ".partial");
        try (OutputStream out = fs.create(partial, true)) {
            json.writerWithDefaultPrettyPrinter().writeValue(out, root);
        }
        if (!fs.rename(partial, file)) {
            throw new IOException("cannot rename " + partial + " to " + file);
        }
    }

    static ResumeManifest read(Path file, Configuration conf) throws IOException {
        JsonNode root;
        try (InputStream in = file.getFileSystem(conf).open(file)) {
            root = new ObjectMapper().readTree(in);
        }
        if (root == null || root.path("version").asInt() != VERSION || !root.path("fields").isObject()) {
            throw new IOException(file + " is not a version " + VERSION + " moescore resume manifest");
        }
        Map<String, String> f = new LinkedHashMap<>();
        root.get("fields").fields().forEachRemaining(e -> f.put(e.getKey(), e.getValue().asText()));
        return new ResumeManifest(f);
    }

    /** Every input file (folders listed recursively, hidden names skipped) with its size and modification time. */
    private static String inputHash(List<String> inputs, Configuration conf) {
        List<String> lines = new ArrayList<>();
        for (String input : inputs) {
            try {
                Path path = new Path(input);
                FileSystem fs = path.getFileSystem(conf);
                listFiles(fs, fs.getFileStatus(path), lines);
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot list input " + input + ": " + e.getMessage(), e);
            }
        }
        lines.sort(Comparator.naturalOrder());
        return sha256(String.join("\n", lines)) + " (" + lines.size() + " files)";
    }

    private static void listFiles(FileSystem fs, FileStatus at, List<String> lines) throws IOException {
        if (at.isFile()) {
            lines.add(at.getPath() + "\t" + at.getLen() + "\t" + at.getModificationTime());
            return;
        }
        for (FileStatus child : fs.listStatus(at.getPath())) {
            String name = child.getPath().getName();
            if (!name.startsWith("_") && !name.startsWith(".")) {
                listFiles(fs, child, lines);
            }
        }
    }

    private static String modelHash(String model, Configuration conf) {
        try {
            Path dir = new Path(model);
            FileSystem fs = dir.getFileSystem(conf);
            StringBuilder sb = new StringBuilder();
            try (InputStream in = fs.open(new Path(dir, "config.json"))) {
                sb.append(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
            List<FileStatus> files = new ArrayList<>(List.of(fs.listStatus(dir)));
            files.sort(Comparator.comparing(f -> f.getPath().getName()));
            for (FileStatus f : files) {
                if (f.isFile()) {
                    sb.append('\n').append(f.getPath().getName()).append('\t').append(f.getLen());
                }
            }
            return sha256(sb.toString());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model " + model + " for the resume manifest: "
                    + e.getMessage(), e);
        }
    }

    static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
