package io.moescore.bench.layering;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.bench.layering.LayeringRules.Violation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checker on a small synthetic repository shaped like ours: clean, it finds nothing; each forbidden import (or
 * qualified name) added to one file is reported once, with file:line, the text written and the rule.
 */
class LayeringRulesTest {
    @TempDir
    Path root;

    /** A clean tree: every layer, backend's parts, arrow-io on batch types, spark-job on select, bench on all. */
    @BeforeEach
    void cleanTree() throws IOException {
        for (String module : List.of("gpu-runtime", "arrow-io", "spark-job", "bench")) {
            Files.createDirectories(root.resolve(module));
            Files.writeString(root.resolve(module).resolve("pom.xml"), "<project/>");
        }
        write("gpu-runtime", "io.moescore.batch", "TokenBatch", "");
        write("gpu-runtime", "io.moescore.model", "ModelConfig", "");
        write("gpu-runtime", "io.moescore.sparse", "Sparse24", "import io.moescore.model.ModelConfig;");
        write("gpu-runtime", "io.moescore.routing", "Router", "import io.moescore.sparse.Sparse24;");
        write("gpu-runtime", "io.moescore.backend", "Backend", "import io.moescore.routing.Router;");
        write("gpu-runtime", "io.moescore.backend.cpu", "CpuBackend", "import io.moescore.backend.Backend;");
        write("gpu-runtime", "io.moescore.backend.cuda", "CudaBackend",
                "import io.moescore.backend.Backend;\nimport io.moescore.backend.cuda.launch.Launches;");
        write("gpu-runtime", "io.moescore.backend.cuda.launch", "Launches", "import io.moescore.backend.Backend;");
        write("gpu-runtime", "io.moescore.backend.select", "Backends",
                "import io.moescore.backend.cpu.CpuBackend;\nimport io.moescore.backend.cuda.CudaBackend;");
        write("gpu-runtime", "io.moescore.engine", "Engine",
                "import io.moescore.backend.Backend;\nimport io.moescore.batch.TokenBatch;");
        write("gpu-runtime", "io.moescore.sparsify", "Sparsifier",
                "import io.moescore.engine.Engine;\nimport io.moescore.backend.select.Backends;");
        write("gpu-runtime", "io.moescore.score", "LocalScorer", "import io.moescore.backend.select.Backends;\n"
                + "import io.moescore.settings.Settings;");
        // a package another branch adds, not placed in the layer list yet: part of the top layer
        write("gpu-runtime", "io.moescore.settings", "Settings", "import io.moescore.engine.Engine;\n"
                + "import io.moescore.backend.select.Backends;");
        write("arrow-io", "io.moescore.arrow", "Columns", "import io.moescore.batch.TokenBatch;\n"
                + "import org.apache.arrow.vector.VectorSchemaRoot;");
        write("spark-job", "io.moescore.spark", "MoeScoreJob", "import io.moescore.backend.select.Backends;\n"
                + "import org.apache.spark.sql.SparkSession;\nimport io.moescore.arrow.Columns;");
        write("spark-job", "io.moescore.cli", "SparsifyCommand",
                "import io.moescore.spark.MoeScoreJob;\n"
                        + "// io.moescore.bench.SparsityAccuracy.calibrationRows(p) in a comment is no reference\n"
                        + "class Use { String s = \"io.moescore.bench.SparsityAccuracy\"; char q = '\"'; }");
        write("bench", "io.moescore.bench", "SparsityAccuracy", "import io.moescore.backend.cuda.CudaBackend;\n"
                + "import jcuda.driver.JCudaDriver;\nimport io.moescore.spark.MoeScoreJob;");
    }

    /** Writes module/src/main/java/PKG/NAME.java: package line, the given lines (from line 3), an empty class. */
    private Path write(String module, String pkg, String name, String lines) throws IOException {
        return write(module, "main", pkg, name, lines);
    }

    private Path write(String module, String set, String pkg, String name, String lines) throws IOException {
        Path dir = root.resolve(module).resolve("src").resolve(set).resolve("java").resolve(pkg.replace('.', '/'));
        Files.createDirectories(dir);
        Path file = dir.resolve(name + ".java");
        Files.writeString(file, "package " + pkg + ";\n\n" + lines + "\n\npublic final class " + name + " {\n}\n");
        return file;
    }

    private List<String> violations() {
        return LayeringRules.check(root).stream().map(Violation::toString).collect(Collectors.toList());
    }

    private void assertOne(String fileAndLine, String written, String rule) {
        List<String> v = violations();
        assertEquals(1, v.size(), "one violation expected: " + v);
        String message = v.get(0);
        System.out.println("sample failure: " + message);
        assertTrue(message.startsWith(fileAndLine + ": " + written + " breaks \""), message);
        assertTrue(message.contains(rule), "names the rule '" + rule + "': " + message);
    }

    @Test
    void theCleanTreePasses() {
        assertEquals(List.of(), violations());
    }

    @Test
    void aLowerLayerImportingAHigherOneFails() throws IOException {
        write("gpu-runtime", "io.moescore.backend", "Backend",
                "import io.moescore.routing.Router;\nimport io.moescore.engine.Engine;");
        assertOne("gpu-runtime/src/main/java/io/moescore/backend/Backend.java:4", "import io.moescore.engine.Engine;",
                "gpu-runtime layers, lowest first: batch < model < placement < sparse < routing < backend < engine "
                        + "< sparsify, score");
    }

    @Test
    void siblingsOfTheTopLayerDoNotImportEachOther() throws IOException {
        write("gpu-runtime", "io.moescore.score", "LocalScorer", "import io.moescore.sparsify.Sparsifier;");
        assertOne("gpu-runtime/src/main/java/io/moescore/score/LocalScorer.java:3",
                "import io.moescore.sparsify.Sparsifier;", "a package imports only lower layers or itself");
    }

    @Test
    void aPackageNotInTheListCountsAsTheTopLayer() throws IOException {
        write("gpu-runtime", "io.moescore.engine", "Engine", "import io.moescore.settings.Settings;");
        assertOne("gpu-runtime/src/main/java/io/moescore/engine/Engine.java:3", "import io.moescore.settings.Settings;",
                "not placed in LayeringRules.GPU_RUNTIME_LAYERS");
        write("gpu-runtime", "io.moescore.engine", "Engine", "import io.moescore.backend.Backend;");
        write("gpu-runtime", "io.moescore.settings", "Settings", "import io.moescore.backend.cpu.CpuBackend;");
        assertOne("gpu-runtime/src/main/java/io/moescore/settings/Settings.java:3",
                "import io.moescore.backend.cpu.CpuBackend;", "never import an implementation");
    }

    @Test
    void backendsRootImportsNoneOfItsParts() throws IOException {
        write("gpu-runtime", "io.moescore.backend", "Backend", "import io.moescore.backend.select.Backends;");
        assertOne("gpu-runtime/src/main/java/io/moescore/backend/Backend.java:3",
                "import io.moescore.backend.select.Backends;", "inside backend");
    }

    @Test
    void implementationsDoNotImportEachOtherNorSelect() throws IOException {
        write("gpu-runtime", "io.moescore.backend.cuda.launch", "Launches", "import io.moescore.backend.cpu.*;");
        assertOne("gpu-runtime/src/main/java/io/moescore/backend/cuda/launch/Launches.java:3",
                "import io.moescore.backend.cpu.*;", "an implementation (cpu, cuda, ...) imports only");
        write("gpu-runtime", "io.moescore.backend.cuda.launch", "Launches", "import io.moescore.backend.select.Backends;");
        assertOne("gpu-runtime/src/main/java/io/moescore/backend/cuda/launch/Launches.java:3",
                "import io.moescore.backend.select.Backends;", "inside backend");
    }

    @Test
    void theEngineUsesNeitherSelectNorAConcreteBackend() throws IOException {
        write("gpu-runtime", "io.moescore.engine", "Engine", "import io.moescore.backend.select.Backends;");
        assertOne("gpu-runtime/src/main/java/io/moescore/engine/Engine.java:3",
                "import io.moescore.backend.select.Backends;", "engine never imports backend.select");
        write("gpu-runtime", "io.moescore.score", "LocalScorer", "\n\nimport io.moescore.backend.cuda.CudaBackend;");
        write("gpu-runtime", "io.moescore.engine", "Engine", "import io.moescore.backend.Backend;");
        assertOne("gpu-runtime/src/main/java/io/moescore/score/LocalScorer.java:5",
                "import io.moescore.backend.cuda.CudaBackend;", "never import an implementation");
    }

    @Test
    void gpuRuntimeNeverImportsSparkArrowHadoopOrScala() throws IOException {
        write("gpu-runtime", "io.moescore.model", "ModelConfig", "import scala.Tuple2;");
        assertOne("gpu-runtime/src/main/java/io/moescore/model/ModelConfig.java:3", "import scala.Tuple2;",
                "gpu-runtime never imports Spark, Arrow, Hadoop or Scala");
    }

    @Test
    void arrowIoUsesOnlyTheBatchTypesOfGpuRuntimeAndNothingOfSparkJob() throws IOException {
        write("arrow-io", "io.moescore.arrow", "Columns", "import io.moescore.batch.TokenBatch;\n"
                + "import io.moescore.model.ModelConfig;");
        assertOne("arrow-io/src/main/java/io/moescore/arrow/Columns.java:4", "import io.moescore.model.ModelConfig;",
                "arrow-io imports of gpu-runtime only io.moescore.batch");
        write("arrow-io", "io.moescore.arrow", "Columns", "import io.moescore.spark.MoeScoreJob;");
        assertOne("arrow-io/src/main/java/io/moescore/arrow/Columns.java:3", "import io.moescore.spark.MoeScoreJob;",
                "arrow-io imports nothing of spark-job");
    }

    @Test
    void sparkJobNeverCallsJcudaNorAConcreteBackend() throws IOException {
        write("spark-job", "io.moescore.spark", "MoeScoreJob", "import static jcuda.driver.JCudaDriver.cuInit;");
        assertOne("spark-job/src/main/java/io/moescore/spark/MoeScoreJob.java:3",
                "import static jcuda.driver.JCudaDriver.cuInit;", "spark-job never calls JCuda");
        write("spark-job", "io.moescore.spark", "MoeScoreJob",
                "class X { Object b = new io.moescore.backend.cuda.CudaBackend(); }");
        assertOne("spark-job/src/main/java/io/moescore/spark/MoeScoreJob.java:3",
                "io.moescore.backend.cuda.CudaBackend", "nor a concrete backend");
    }

    @Test
    void aQualifiedNameOfBenchInProductCodeFailsThoughNoImportSaysIt() throws IOException {
        write("spark-job", "io.moescore.cli", "SparsifyCommand", "class Use {\n"
                + "    Object rows = io.moescore.bench.SparsityAccuracy.calibrationRows(null);\n}");
        assertOne("spark-job/src/main/java/io/moescore/cli/SparsifyCommand.java:4",
                "io.moescore.bench.SparsityAccuracy.calibrationRows", "no product module imports the bench module");
    }

    @Test
    void productTestsMayNotImportBenchEither() throws IOException {
        write("gpu-runtime", "test", "io.moescore.sparsify", "SparsifierTest", "import io.moescore.bench.SparsityAccuracy;");
        assertOne("gpu-runtime/src/test/java/io/moescore/sparsify/SparsifierTest.java:3",
                "import io.moescore.bench.SparsityAccuracy;", "no product module imports the bench module");
    }
}
