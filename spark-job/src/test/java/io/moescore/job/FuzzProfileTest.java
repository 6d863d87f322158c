package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.xpath.XPath;
import javax.xml.xpath.XPathFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;

/**
 * The reader fuzz tests run 2000 cases per format in every build and 10000 with {@code -Pfuzz}: the parent pom's
 * property, the profile, the surefire setting that hands the number to the test JVMs, and the tests that read it.
 */
class FuzzProfileTest {
    static final List<String> FUZZ_TESTS = List.of("gpu-runtime/src/test/java/io/moescore/model/SafeTensorsFuzzTest.java",
            "arrow-io/src/test/java/io/moescore/arrow/ArrowFuzzTest.java",
            "spark-job/src/test/java/io/moescore/job/ParquetFuzzTest.java");

    @Test
    void fuzzProfileRaisesTheCasesAndEveryFuzzTestReadsThem() throws Exception {
        Path root = SparkTests.repoRoot();
        Document pom = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(root.resolve("pom.xml").toFile());
        XPath x = XPathFactory.newInstance().newXPath();
        assertEquals("2000", x.evaluate("/project/properties/moescore.fuzz.cases", pom));
        assertEquals("10000", x.evaluate("/project/profiles/profile[id='fuzz']/properties/moescore.fuzz.cases", pom));
        assertEquals("${moescore.fuzz.cases}", x.evaluate("/project/build/pluginManagement/plugins/plugin"
                + "[artifactId='maven-surefire-plugin']/configuration/systemPropertyVariables/moescore.fuzz.cases", pom));
        // naming a profile switches off activeByDefault ones: the GPU exclusion must not live in one
        assertEquals("gpu", x.evaluate("/project/properties/moescore.excludedGroups", pom));
        assertEquals("0", x.evaluate("count(//profile/activation/activeByDefault)", pom));
        for (String test : FUZZ_TESTS) {
            assertTrue(Files.readString(root.resolve(test)).contains("Integer.getInteger(\"moescore.fuzz.cases\""),
                    test + " reads moescore.fuzz.cases");
        }
        System.out.println("moescore.fuzz.cases in this test JVM: " + System.getProperty("moescore.fuzz.cases"));
        if (System.getProperty("basedir") != null) {  // run by surefire: the number reached this JVM
            assertTrue(Integer.getInteger("moescore.fuzz.cases", -1) >= 1,
                    "surefire passes moescore.fuzz.cases: " + System.getProperty("moescore.fuzz.cases"));
        }
    }
}
