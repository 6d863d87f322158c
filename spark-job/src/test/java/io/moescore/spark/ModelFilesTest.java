package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What executors are told to load (a relative local model path made absolute on the driver, URIs untouched), and
 * the model files the driver reads itself: never outside the model folder, never a FIFO (refused at once, not
 * waited on), only plain files copied from another file system.
 */
class ModelFilesTest {
    @Test
    void relativeLocalPathsBecomeAbsolute() {
        assertEquals(Path.of("demo/tiny-moe-code").toAbsolutePath().normalize().toString(),
                ModelFiles.forExecutors("demo/tiny-moe-code"));
        assertEquals("/models/olmoe", ModelFiles.forExecutors("/models/olmoe"));
    }

    @Test
    void urisStayAsGiven() {
        assertEquals("hdfs://nn:8020/models/olmoe", ModelFiles.forExecutors("hdfs://nn:8020/models/olmoe"));
        assertEquals("file:/models/olmoe", ModelFiles.forExecutors("file:/models/olmoe"));
        assertEquals("s3a://bucket/models/olmoe", ModelFiles.forExecutors("s3a://bucket/models/olmoe"));
    }

    @TempDir
    Path tmp;

    /** The local file system under another scheme, so ModelFiles treats it as remote. */
    public static class ElsewhereFileSystem extends RawLocalFileSystem {
        @Override
        public URI getUri() {
            return URI.create("elsewhere:///");
        }
    }

    static Configuration elsewhere() {
        return ModelFiles.hadoopConf(Map.of("fs.elsewhere.impl", ElsewhereFileSystem.class.getName(),
                "fs.elsewhere.impl.disable.cache", "true"));
    }

    Path model() throws IOException {
        Path model = Files.createDirectories(tmp.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{}");
        return model;
    }

    @Test
    void localModelFilesAreReadThroughTheFolderChecks() throws Exception {
        Path model = model();
        Configuration conf = new Configuration();
        assertArrayEquals("{}".getBytes(), ModelFiles.readModelFile(model.toString(), "config.json", conf));
        assertNull(ModelFiles.readModelFile(model.toString(), "tokenizer.json", conf));
        Path outside = Files.createDirectories(tmp.resolve("etc"));
        Files.writeString(outside.resolve("passwd"), "secret");
        Files.createSymbolicLink(model.resolve("sub"), outside);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelFiles.readModelFile(model.toString(), "sub/passwd", conf));
        assertTrue(e.getMessage().contains("outside") && !e.getMessage().contains("secret"), e.getMessage());
        Process p = new ProcessBuilder("mkfifo", model.resolve("tokenizer.json").toString()).start();
        assumeTrue(p.waitFor() == 0, "mkfifo is not available here");
        e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(IllegalArgumentException.class,
                () -> ModelFiles.readModelFile("file:" + model, "tokenizer.json", conf)));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("FIFO"), e.getMessage());
    }

    @Test
    void otherFileSystemsGivePlainFilesOnly() throws IOException {
        Path model = model();
        Files.createDirectories(model.resolve("tokenizer.json"));  // a folder under a file's name
        Files.createDirectories(model.resolve("nested")).resolve("x");
        Configuration conf = elsewhere();
        String uri = "elsewhere://" + model;
        assertArrayEquals("{}".getBytes(), ModelFiles.readModelFile(uri, "config.json", conf));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelFiles.readModelFile(uri, "tokenizer.json", conf));
        assertTrue(e.getMessage().contains("not a plain file"), e.getMessage());
        assertNull(ModelFiles.readModelFile(uri, "generation_config.json", conf));
        Path copy = ModelFiles.localize(uri, conf);
        assertTrue(Files.isRegularFile(copy.resolve("config.json")));
        assertFalse(Files.exists(copy.resolve("tokenizer.json")), "a folder is not copied");
        assertFalse(Files.exists(copy.resolve("nested")));
    }
}
