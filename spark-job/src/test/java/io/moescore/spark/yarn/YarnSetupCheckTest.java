package io.moescore.spark.yarn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How {@link YarnSetupCheck.Submission} reads the settings a spark-submit command line would use, as spark-submit
 * does: the command line over the properties file, {@code --queue} over {@code spark.yarn.queue}, and
 * spark-defaults.conf from SPARK_CONF_DIR or SPARK_HOME/conf unless {@code --properties-file} names another. The
 * checks against a ResourceManager are in YarnScoreJobIT and YarnWithoutGpuIT.
 */
class YarnSetupCheckTest {
    @TempDir
    Path dir;

    @Test
    void defaultsWithoutAnySetting() {
        YarnSetupCheck.Submission s = YarnSetupCheck.Submission.parse(List.of("--master", "yarn", "app.jar"), Map.of());
        assertEquals("default", s.queue());
        assertEquals(0, s.executorGpus());
        assertEquals("yarn.io/gpu", s.gpuResource());
    }

    @Test
    void commandLineOverTheDefaultsFileAndQueueOptionOverConf() throws IOException {
        Path conf = Files.createDirectories(dir.resolve("conf"));
        Files.writeString(conf.resolve("spark-defaults.conf"), String.join("\n",
                "spark.executor.resource.gpu.amount 2",
                "spark.yarn.queue from-defaults",
                "spark.yarn.resourceGpuDeviceName   nvidia.com/gpu", ""));
        Map<String, String> env = Map.of("SPARK_CONF_DIR", conf.toString());
        YarnSetupCheck.Submission fromFile = YarnSetupCheck.Submission.parse(List.of(), env);
        assertEquals("from-defaults", fromFile.queue());
        assertEquals(2, fromFile.executorGpus());
        assertEquals("nvidia.com/gpu", fromFile.gpuResource());

        YarnSetupCheck.Submission overridden = YarnSetupCheck.Submission.parse(List.of("--conf",
                "spark.executor.resource.gpu.amount=1", "--conf=spark.yarn.queue=from-conf"), env);
        assertEquals("from-conf", overridden.queue());
        assertEquals(1, overridden.executorGpus());
        assertEquals("nightly", YarnSetupCheck.Submission.parse(List.of("--queue", "nightly", "--conf",
                "spark.yarn.queue=from-conf"), env).queue());
    }

    @Test
    void sparkHomeConfAndPropertiesFile() throws IOException {
        Path home = Files.createDirectories(dir.resolve("spark-home/conf"));
        Files.writeString(home.resolve("spark-defaults.conf"), "spark.yarn.queue from-home\n");
        Map<String, String> env = Map.of("SPARK_HOME", dir.resolve("spark-home").toString());
        assertEquals("from-home", YarnSetupCheck.Submission.parse(List.of(), env).queue());

        Path props = dir.resolve("job.properties");
        Files.writeString(props, "spark.executor.resource.gpu.amount=1\n");
        YarnSetupCheck.Submission s = YarnSetupCheck.Submission.parse(List.of("--properties-file", props.toString()),
                env);
        assertEquals("default", s.queue(), "--properties-file replaces spark-defaults.conf");
        assertEquals(1, s.executorGpus());
        assertEquals("from-home", YarnSetupCheck.Submission.parse(List.of("--properties-file", props.toString(),
                "--load-spark-defaults"), env).queue());
    }

    @Test
    void aFractionalGpuAmountIsNamed() {
        YarnSetupCheck.Submission s = YarnSetupCheck.Submission.parse(List.of("--conf",
                "spark.executor.resource.gpu.amount=0.5"), Map.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, s::executorGpus);
        assertTrue(e.getMessage().contains("spark.executor.resource.gpu.amount=0.5"), e.getMessage());
    }
}
