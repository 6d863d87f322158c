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

    /**
     * The issue-24 families' checkpoints (Granite MoE, DeepSeek-V3, GLM-4.5), made on the GPU machine by
     * {@value #FAMILY_FIXTURES_COMMAND}; until they are committed a test over them skips, saying so.
     */
    public static List<Path> familyFixtures() {
        Path dir = repoRoot().resolve("gpu-runtime/src/test/resources/hf");
        return List.of("granitemoe-bf16-tied", "granitemoe-fp32", "deepseekv3-bf16-yarn", "deepseekv3-fp32-qproj",
                "glm4moe-bf16", "glm4moe-fp32", "gptoss-fp32", "gptoss-bf16", "gptoss-mxfp4").stream()
                .map(dir::resolve).toList();
    }

    /** How the family fixtures are made (GPU machine, from the repository root). */
    public static final String FAMILY_FIXTURES_COMMAND = "python3 gpu-runtime/src/test/python/make_hf_fixtures.py "
            + "/tmp/hf granitemoe deepseekv3 glm4moe && python3 gpu-runtime/src/test/python/make_gptoss_fixtures.py "
            + "/tmp/hf && cp -r /tmp/hf/* gpu-runtime/src/test/resources/hf/";

    /** Skips the calling test while a family fixture is not generated yet. */
    public static void assumeFixture(Path model) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(model.resolve("reference.json")),
                () -> model.getFileName() + " is not generated yet: run `" + FAMILY_FIXTURES_COMMAND
                        + "` on the GPU machine");
    }
}
