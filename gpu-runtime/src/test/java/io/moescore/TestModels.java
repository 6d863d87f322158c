package io.moescore;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** Where the committed test models live. */
public final class TestModels {
    private TestModels() {
    }

    /** The repository root, found from the module's working directory (Maven runs tests in the module). */
    public static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("demo/tiny-moe-code/config.json"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find the repository root (demo/tiny-moe-code) above "
                    + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** The trained demo model, with transformers' float32 reference log-probs. */
    public static Path demoModel() {
        return repoRoot().resolve("demo/tiny-moe-code");
    }

    /** A copy of the demo model's files in a new folder {@code into} (to break one of them). */
    public static Path demoCopy(Path into) throws IOException {
        Path model = Files.createDirectories(into);
        try (Stream<Path> files = Files.list(demoModel())) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        return model;
    }

    /** Tiny random checkpoints saved by transformers, one per family (gpu-runtime/src/test/python). */
    public static List<Path> hfFixtures() {
        Path dir = repoRoot().resolve("gpu-runtime/src/test/resources/hf");
        return List.of("mixtral-bf16", "qwen2moe-fp32", "qwen3moe-bf16-sharded", "olmoe-fp32", "olmoe-fp32-fused")
                .stream().map(dir::resolve).toList();
    }
}
