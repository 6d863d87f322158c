package io.moescore.bench.layering;

import io.moescore.bench.layering.SourceScan.Reference;
import io.moescore.bench.layering.SourceScan.SourceFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * The import rules of ../shared/docs/architecture.md ("Never" list) and of gpu-runtime's package layers, as data, and
 * the check that applies them to a {@link SourceScan}. Rules speak of package prefixes (a package and its
 * subpackages) and of modules (a referenced type belongs to the module whose sources hold it), so new subpackages and
 * new modules fall under the rule of their parent without edits here. A package gpu-runtime adds at the top level
 * ({@code io.moescore.X}) and that {@link #GPU_RUNTIME_LAYERS} does not list counts as part of the top layer: it may
 * import every layer, the top layer's packages may import it, and a lower layer that needs it says it must be placed.
 */
final class LayeringRules {
    static final String ROOT = "io.moescore";
    static final String BENCH = "bench";

    /** gpu-runtime's layers, lowest first; packages in one layer are siblings and do not import each other. */
    static final List<List<String>> GPU_RUNTIME_LAYERS = List.of(List.of("batch"), List.of("model"),
            List.of("placement"), List.of("sparse"), List.of("routing"), List.of("backend"), List.of("engine"),
            List.of("sparsify", "score"));
    static final String BACKEND = ROOT + ".backend";
    /** backend's subpackage that chooses an implementation by name; every other subpackage is an implementation. */
    static final String BACKEND_SELECT = BACKEND + ".select";
    /** Layers above the engine, which may use {@link #BACKEND_SELECT}; the engine is handed a backend. */
    static final int SELECT_FROM_LAYER = layerIndex(ROOT + ".engine") + 1;

    /** A rule broken: the file and line, what it wrote, which rule and why. */
    record Violation(Path file, int line, String written, String rule, String why) {
        @Override
        public String toString() {
            return file + ":" + line + ": " + written + " breaks \"" + rule + "\" (" + why + ")";
        }
    }

    /** Where a reference points: its package and the modules whose sources hold it (empty: outside the project). */
    record Target(Reference ref, Set<String> modules) {
        boolean in(String module) {
            return modules.contains(module);
        }

        boolean under(String prefix) {
            return isUnder(ref.pkg(), prefix);
        }
    }

    /**
     * One rule: the sources it governs, and what it says of one reference from them (null: allowed).
     */
    record Rule(String name, Predicate<SourceFile> governs, Judge judge) {
    }

    interface Judge {
        String why(SourceFile from, Target to);
    }

    static final List<Rule> RULES = List.of(
            new Rule("gpu-runtime never imports Spark, Arrow, Hadoop or Scala", main("gpu-runtime"),
                    (from, to) -> firstPrefix(to.ref(), "org.apache.spark", "org.apache.arrow", "org.apache.hadoop",
                            "scala") == null ? null : "gpu-runtime runs without them on the classpath"),
            new Rule("arrow-io imports nothing of spark-job", main("arrow-io"),
                    (from, to) -> to.in("spark-job") ? to.ref().pkg() + " is spark-job's" : null),
            new Rule("arrow-io imports of gpu-runtime only io.moescore.batch", main("arrow-io"),
                    (from, to) -> to.in("gpu-runtime") && !to.under(ROOT + ".batch")
                            ? to.ref().pkg() + " is gpu-runtime's, outside its batch types" : null),
            new Rule("spark-job never calls JCuda nor a concrete backend (it asks gpu-runtime's Backend, backend.select)",
                    main("spark-job"),
                    (from, to) -> firstPrefix(to.ref(), "jcuda", BACKEND + ".cpu", BACKEND + ".cuda") == null ? null
                            : to.ref().pkg() + " is " + (to.under("jcuda") ? "JCuda" : "a concrete backend")),
            new Rule("no product module imports the bench module", f -> !f.module().equals(BENCH),
                    (from, to) -> to.in(BENCH) || to.under(ROOT + ".bench") ? to.ref().pkg() + " is bench's" : null),
            new Rule("gpu-runtime layers, lowest first: " + GPU_RUNTIME_LAYERS.stream().map(l -> String.join(", ", l))
                    .collect(Collectors.joining(" < ")) + "; a package imports only lower layers or itself",
                    main("gpu-runtime"), LayeringRules::layerBreach),
            new Rule("inside backend: its root imports none of its subpackages; an implementation (cpu, cuda, ...) "
                    + "imports only backend's root and itself", main("gpu-runtime").and(f -> isUnder(f.pkg(), BACKEND)),
                    LayeringRules::backendBreach),
            new Rule("above backend only backend's root: engine never imports backend.select or an implementation; "
                    + "sparsify, score never import an implementation (backend.cpu, backend.cuda)",
                    main("gpu-runtime").and(f -> layerIndex(f.pkg()) > layerIndex(BACKEND)),
                    LayeringRules::aboveBackendBreach));

    private LayeringRules() {
    }

    /** Every rule broken in the sources under {@code root}, in file and line order. */
    static List<Violation> check(Path root) {
        return check(SourceScan.scan(root));
    }

    static List<Violation> check(List<SourceFile> files) {
        Map<String, Set<String>> typeModules = new HashMap<>();
        Map<String, Set<String>> packageModules = new HashMap<>();
        for (SourceFile f : files) {
            typeModules.computeIfAbsent(f.typeName(), k -> new TreeSet<>()).add(f.module());
            packageModules.computeIfAbsent(f.pkg(), k -> new TreeSet<>()).add(f.module());
        }
        List<Violation> out = new ArrayList<>();
        for (SourceFile f : files) {
            for (Reference r : f.references()) {
                if (r.pkg().equals(f.pkg())) {
                    continue;
                }
                Set<String> modules = r.type() != null && typeModules.containsKey(r.qualifiedType())
                        ? typeModules.get(r.qualifiedType()) : packageModules.getOrDefault(r.pkg(), Set.of());
                Target to = new Target(r, modules);
                for (Rule rule : RULES) {
                    if (rule.governs().test(f)) {
                        String why = rule.judge().why(f, to);
                        if (why != null) {
                            out.add(new Violation(f.path(), r.line(), r.written(), rule.name(), why));
                        }
                    }
                }
            }
        }
        return out;
    }

    private static Predicate<SourceFile> main(String module) {
        return f -> f.module().equals(module) && !f.test();
    }

    static boolean isUnder(String pkg, String prefix) {
        return pkg.equals(prefix) || pkg.startsWith(prefix + ".");
    }

    private static String firstPrefix(Reference r, String... prefixes) {
        for (String p : prefixes) {
            if (isUnder(r.pkg(), p)) {
                return p;
            }
        }
        return null;
    }

    /** io.moescore.X for a package io.moescore.X[.Y...], else the package itself. */
    static String topPackage(String pkg) {
        if (!isUnder(pkg, ROOT) || pkg.equals(ROOT)) {
            return pkg;
        }
        int next = pkg.indexOf('.', ROOT.length() + 1);
        return next < 0 ? pkg : pkg.substring(0, next);
    }

    /** The layer of a gpu-runtime package; a top-level package the list does not name counts as the top layer. */
    static int layerIndex(String pkg) {
        int placed = placedLayer(pkg);
        return placed >= 0 ? placed : GPU_RUNTIME_LAYERS.size() - 1;
    }

    /** The layer the list names a package's top-level package in, or -1. */
    private static int placedLayer(String pkg) {
        String top = topPackage(pkg);
        for (int i = 0; i < GPU_RUNTIME_LAYERS.size(); i++) {
            for (String name : GPU_RUNTIME_LAYERS.get(i)) {
                if (top.equals(ROOT + "." + name)) {
                    return i;
                }
            }
        }
        return -1;
    }

    private static String layerName(String pkg) {
        int i = placedLayer(pkg);
        return i >= 0 ? "layer " + String.join("/", GPU_RUNTIME_LAYERS.get(i))
                : "not placed in LayeringRules.GPU_RUNTIME_LAYERS, so in the top layer";
    }

    private static String layerBreach(SourceFile from, Target to) {
        if (!to.in("gpu-runtime")) {
            return null;
        }
        String source = topPackage(from.pkg());
        String target = topPackage(to.ref().pkg());
        int s = layerIndex(source);
        int t = layerIndex(target);
        boolean unplaced = placedLayer(source) < 0 || placedLayer(target) < 0;
        if (source.equals(target) || t < s || (t == s && unplaced)) {
            return null;
        }
        return source + " is " + layerName(source) + ", " + target + " is " + layerName(target)
                + (t == s ? " (a sibling)" : " (above it)");
    }

    /** The backend subpackage a package belongs to (io.moescore.backend.cuda for ...backend.cuda.x), or null. */
    private static String backendPart(String pkg) {
        if (!isUnder(pkg, BACKEND) || pkg.equals(BACKEND)) {
            return null;
        }
        int next = pkg.indexOf('.', BACKEND.length() + 1);
        return next < 0 ? pkg : pkg.substring(0, next);
    }

    private static String backendBreach(SourceFile from, Target to) {
        String target = backendPart(to.ref().pkg());
        if (target == null) {
            return null;
        }
        String source = backendPart(from.pkg());
        if (source == null) {
            return "backend's root may not depend on " + target + ", which builds on it";
        }
        if (source.equals(BACKEND_SELECT) || source.equals(target)) {
            return null;
        }
        return source + " is an implementation; " + target + " is another part of backend";
    }

    private static String aboveBackendBreach(SourceFile from, Target to) {
        String target = backendPart(to.ref().pkg());
        if (target == null) {
            return null;
        }
        if (target.equals(BACKEND_SELECT) && layerIndex(from.pkg()) >= SELECT_FROM_LAYER) {
            return null;
        }
        return topPackage(from.pkg()) + " is " + layerName(from.pkg()) + "; " + target
                + (target.equals(BACKEND_SELECT) ? " chooses a backend, which the engine is handed"
                : " is a concrete backend");
    }
}
