package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** What executors are told to load: a relative local model path made absolute on the driver, URIs untouched. */
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
}
