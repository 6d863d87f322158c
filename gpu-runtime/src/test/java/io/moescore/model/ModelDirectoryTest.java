package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.TestModels;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model folder cannot reach outside itself or hang the loader: names and links that resolve elsewhere are
 * refused, a FIFO where a model file should be is refused at once by its attributes, and no message prints a
 * byte of what a file holds. Broken copies of the demo model.
 */
class ModelDirectoryTest {
    /** What an outside file holds: no message may show it, nor the number its first 8 bytes make. */
    static final String SECRET = "root:x:0:0:secret-words-never-printed\n";
    static final long SECRET_AS_LENGTH = java.nio.ByteBuffer.wrap(SECRET.getBytes(StandardCharsets.UTF_8))
            .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
    static final Duration AT_ONCE = Duration.ofSeconds(20);

    @TempDir
    Path tmp;

    /** A copy of the demo model (config, index, shards, tokenizer). */
    Path demoCopy() throws IOException {
        return TestModels.demoCopy(tmp.resolve("model"));
    }

    Path outsideFolderWithSecret() throws IOException {
        Path outside = Files.createDirectories(tmp.resolve("etc"));
        Files.writeString(outside.resolve("passwd"), SECRET);
        return outside;
    }

    /** Points the index's tensors of shard 3 at {@code shard} instead. */
    static void renameShardInIndex(Path model, String shard) throws IOException {
        Path index = model.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(index, Files.readString(index).replace("model-00003-of-00003.safetensors", shard));
    }

    static ModelFormatException refused(Executable load, String... mustContain) {
        ModelFormatException e = assertTimeoutPreemptively(AT_ONCE, () -> assertThrows(ModelFormatException.class, load));
        String m = e.getMessage();
        for (String s : mustContain) {
            assertTrue(m.contains(s), () -> "message should contain '" + s + "': " + m);
        }
        assertFalse(m.contains("secret-words"), () -> "message prints a file's content: " + m);
        assertFalse(m.contains(Long.toString(SECRET_AS_LENGTH)), () -> "message prints the first 8 bytes: " + m);
        return e;
    }

    static void mkfifo(Path path) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("mkfifo", path.toString()).redirectErrorStream(true).start();
        assumeTrue(p.waitFor() == 0 && Files.exists(path), "mkfifo is not available here");
    }

    @Test
    void unmodifiedCopyLoads() throws IOException {
        Path model = demoCopy();
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            assertTrue(ckpt.has("lm_head.weight"));
        }
        assertEquals(ModelConfig.load(TestModels.demoModel()).toString(), ModelConfig.load(model).toString());
    }

    @Test
    void shardInALinkedFolderOutsideIsRefused() throws IOException {
        Path model = demoCopy();
        Files.createSymbolicLink(model.resolve("sub"), outsideFolderWithSecret());
        renameShardInIndex(model, "sub/passwd");
        refused(() -> Checkpoint.open(model).close(), "sub/passwd", "outside the model directory",
                Checkpoint.INDEX_FILE);
    }

    @Test
    void linkedShardOutsideIsRefused() throws IOException {
        Path model = demoCopy();
        Path outside = Files.move(model.resolve("model-00003-of-00003.safetensors"),
                tmp.resolve("elsewhere.safetensors"));
        Files.createSymbolicLink(model.resolve("model-00003-of-00003.safetensors"), outside);
        refused(() -> Checkpoint.open(model).close(), "model-00003-of-00003.safetensors", "outside");
    }

    @Test
    void linkedConfigOutsideIsRefused() throws IOException {
        Path model = demoCopy();
        Files.delete(model.resolve("config.json"));
        Files.createSymbolicLink(model.resolve("config.json"), outsideFolderWithSecret().resolve("passwd"));
        refused(() -> ModelConfig.load(model), "config.json", "outside");
    }

    @Test
    void linksInsideTheFolderAreFollowed() throws IOException {
        Path model = demoCopy();
        Path blobs = Files.createDirectories(model.resolve("blobs"));
        Files.move(model.resolve("model-00002-of-00003.safetensors"), blobs.resolve("abc"));
        Files.createSymbolicLink(model.resolve("model-00002-of-00003.safetensors"), Path.of("blobs/abc"));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            assertTrue(ckpt.has("lm_head.weight"));
        }
    }

    @Test
    void huggingFaceCacheSnapshotLinksIntoItsBlobs() throws IOException {
        // models--org--name/snapshots/REV/FILE -> ../../blobs/HASH, as huggingface_hub lays out its cache
        Path repo = tmp.resolve("hub/models--org--demo");
        Path blobs = Files.createDirectories(repo.resolve("blobs"));
        Path snapshot = Files.createDirectories(repo.resolve("snapshots/0123abcd"));
        try (Stream<Path> files = Files.list(TestModels.demoModel())) {
            int n = 0;
            for (Path f : files.toList()) {
                Path blob = Files.copy(f, blobs.resolve("blob" + n++));
                Files.createSymbolicLink(snapshot.resolve(f.getFileName()),
                        snapshot.relativize(blob));
            }
        }
        assertEquals(ModelConfig.load(TestModels.demoModel()).toString(), ModelConfig.load(snapshot).toString());
        try (Checkpoint ckpt = Checkpoint.open(snapshot)) {
            assertTrue(ckpt.has("lm_head.weight"));
        }
        // the exception is that repository's blobs only, not any folder named blobs
        Path other = Files.createDirectories(tmp.resolve("hub/models--org--other/blobs"));
        Files.writeString(other.resolve("x"), SECRET);
        Files.delete(snapshot.resolve("config.json"));
        Files.createSymbolicLink(snapshot.resolve("config.json"), other.resolve("x"));
        refused(() -> ModelConfig.load(snapshot), "outside");
    }

    @Test
    void fifoAsConfigIsRefusedAtOnce() throws Exception {
        Path model = demoCopy();
        Files.delete(model.resolve("config.json"));
        mkfifo(model.resolve("config.json"));
        refused(() -> ModelConfig.load(model), "config.json", "FIFO", "not a regular file");
    }

    @Test
    void fifoAsShardIsRefusedAtOnce() throws Exception {
        Path model = demoCopy();
        Files.delete(model.resolve("model-00003-of-00003.safetensors"));
        mkfifo(model.resolve("model-00003-of-00003.safetensors"));
        refused(() -> Checkpoint.open(model).close(), "model-00003-of-00003.safetensors", "FIFO");
    }

    @Test
    void fifoAsSingleWeightFileIsRefusedAtOnce() throws Exception {
        Path model = Files.createDirectories(tmp.resolve("single"));
        mkfifo(model.resolve(Checkpoint.SINGLE_FILE));
        refused(() -> Checkpoint.open(model).close(), Checkpoint.SINGLE_FILE, "FIFO");
        refused(() -> SafeTensorsFile.open(model.resolve(Checkpoint.SINGLE_FILE)).close(), "FIFO");
    }

    @Test
    void fifoAsIndexOrTokenizerIsRefusedAtOnce() throws Exception {
        Path model = demoCopy();
        Files.delete(model.resolve(Checkpoint.INDEX_FILE));
        mkfifo(model.resolve(Checkpoint.INDEX_FILE));
        refused(() -> Checkpoint.open(model).close(), Checkpoint.INDEX_FILE, "FIFO");
        Files.delete(model.resolve(TextTokenizer.FILE));
        mkfifo(model.resolve(TextTokenizer.FILE));
        refused(() -> TextTokenizer.load(model).close(), TextTokenizer.FILE, "FIFO");
    }

    @Test
    void directoryAsShardIsRefused() throws IOException {
        Path model = demoCopy();
        Files.delete(model.resolve("model-00003-of-00003.safetensors"));
        Files.createDirectory(model.resolve("model-00003-of-00003.safetensors"));
        refused(() -> Checkpoint.open(model).close(), "a directory");
    }

    @Test
    void messagesNeverPrintContent() throws IOException {
        Path model = demoCopy();
        // a text file where a shard should be: its first 8 bytes are no header length to print
        Files.writeString(model.resolve("model-00003-of-00003.safetensors"), SECRET + SECRET);
        refused(() -> Checkpoint.open(model).close(), "model-00003-of-00003.safetensors", "not a safetensors");
        // text where JSON should be: the parser's position, not its quote of the text
        Files.writeString(model.resolve("config.json"), "secret-words " + SECRET);
        refused(() -> ModelConfig.load(model), "config.json", "not valid JSON", "line 1");
        Files.writeString(model.resolve(Checkpoint.INDEX_FILE), "{\"weight_map\": secret-words}");
        refused(() -> Checkpoint.open(model).close(), Checkpoint.INDEX_FILE, "not valid JSON");
    }

    @Test
    void danglingLinkIsNamed() throws IOException {
        Path model = demoCopy();
        Files.delete(model.resolve("config.json"));
        Files.createSymbolicLink(model.resolve("config.json"), tmp.resolve("gone.json"));
        refused(() -> ModelConfig.load(model), "config.json", "does not exist");
    }
}
