package io.moescore.job;

import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.model.TensorRef;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.stream.Stream;

/** Broken copies of the demo model (bf16, sharded) for the job tests: one tensor's values edited. */
public final class BrokenModels {
    private BrokenModels() {
    }

    /**
     * A copy of the demo model in {@code dir} whose tensor {@code name} is edited in place by {@code edit}
     * (its values as floats, and its shape); the shard holding it is rewritten, the rest copied.
     */
    public static Path withEdit(Path dir, String name, BiConsumer<float[], long[]> edit) throws IOException {
        Path model = Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(SparkTests.demoModel())) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        Path shard;
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        try (Checkpoint ckpt = Checkpoint.open(SparkTests.demoModel())) {
            shard = ckpt.get(name).file().getFileName();
            for (String t : ckpt.tensorNames()) {
                TensorRef ref = ckpt.get(t);
                if (!ref.file().getFileName().equals(shard)) {
                    continue;
                }
                float[] values = ref.toFloats();
                if (t.equals(name)) {
                    edit.accept(values, ref.shape());
                }
                writer.add(t, DType.BF16, values, ref.shape());
            }
        }
        writer.write(model.resolve(shard));
        return model;
    }
}
