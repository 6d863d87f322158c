package io.moescore.bench.layering;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.moescore.bench.layering.LayeringRules.Violation;
import io.moescore.bench.layering.SourceScan.SourceFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The project's sources obey the import rules of ../shared/docs/architecture.md and gpu-runtime's package layers
 * ({@link LayeringRules#RULES}; the README's architecture section lists them). A failure names each file:line, the
 * import or qualified name written there, and the rule it breaks.
 *
 * <p>Why a scan of the sources and not ArchUnit: the rules are about what the sources say, so the scan reports the
 * import exactly as written, at its line; it sees every module's sources from here (bench's test classpath would
 * hold the others' classes too, but a scan needs no compiled code and no classpath, so a module that nothing here
 * depends on is checked as well), catches qualified names written without an import (the way
 * {@code io.moescore.bench} once crept into the CLI), adds no dependency, and runs in well under a second. What it
 * cannot see: a type reached only through inference ({@code var}, chained calls) without its name being written;
 * the compiler and the Maven module graph already stop a module from using what it does not depend on.
 */
class LayeringTest {
    @Test
    void everyModuleKeepsTheLayeringRules() {
        Path root = repositoryRoot();
        List<SourceFile> files = SourceScan.scan(root);
        Map<String, Long> perModule = files.stream().filter(f -> !f.test())
                .collect(Collectors.groupingBy(SourceFile::module, Collectors.counting()));
        for (String module : List.of("gpu-runtime", "arrow-io", "spark-job", "bench")) {
            assertTrue(perModule.getOrDefault(module, 0L) > 0, "no main sources of " + module + " found under "
                    + root + " (scanned: " + perModule + "): the check would prove nothing");
        }
        List<Violation> violations = LayeringRules.check(files);
        if (!violations.isEmpty()) {
            fail(violations.size() + " import(s) break the layering rules (" + files.size() + " files scanned):\n"
                    + violations.stream().map(Violation::toString).collect(Collectors.joining("\n")));
        }
    }

    /** The folder holding the parent pom and the modules (surefire runs in bench/). */
    static Path repositoryRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !(Files.isRegularFile(p.resolve("pom.xml")) && Files.isDirectory(p.resolve("gpu-runtime")))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("no repository root (pom.xml beside gpu-runtime/) above "
                    + Path.of("").toAbsolutePath());
        }
        return p;
    }
}
