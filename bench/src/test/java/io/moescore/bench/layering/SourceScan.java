package io.moescore.bench.layering;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads the Java sources of every module under a repository root (each folder with a {@code pom.xml} and
 * {@code src/main/java} or {@code src/test/java}) and lists, per file, the names it refers to in other packages: its
 * imports, and qualified names written in code under the roots the rules speak of ({@code io.moescore.bench.X.m()}
 * needs no import). Comments and string literals are blanked first, so a name in a javadoc or a message is no
 * reference; line numbers are kept.
 */
final class SourceScan {
    /** Roots whose qualified names in code count as references (imports count whatever they name). */
    static final List<String> WATCHED_ROOTS = List.of("io.moescore", "jcuda", "org.apache.spark", "org.apache.arrow",
            "org.apache.hadoop", "scala");

    private static final Pattern PACKAGE = Pattern.compile("\\bpackage\\s+([\\w.]+)\\s*;");
    private static final Pattern IMPORT = Pattern.compile("(?m)^\\s*import\\s+(static\\s+)?([\\w.]+?)(\\.\\*)?\\s*;");
    private static final Pattern QUALIFIED = Pattern.compile("(?<![\\w.$])((?:"
            + String.join("|", WATCHED_ROOTS.stream().map(Pattern::quote).toList()) + ")(?:\\.\\w+)+)");

    /**
     * A name one source file refers to.
     *
     * @param line    1-based line of the reference
     * @param written the import statement, or the qualified name as it stands in code
     * @param pkg     the package it names (the segments before the first capitalised one)
     * @param type    the top-level type it names, null for a wildcard import of a package
     */
    record Reference(int line, String written, String pkg, String type) {
        String qualifiedType() {
            return type == null ? null : pkg + "." + type;
        }
    }

    /** One source file: its module (folder name), main or test, its path from the root, its package, its references. */
    record SourceFile(String module, boolean test, Path path, String pkg, List<Reference> references) {
        String typeName() {
            String file = path.getFileName().toString();
            return pkg + "." + file.substring(0, file.length() - ".java".length());
        }
    }

    private SourceScan() {
    }

    /** Every module's main and test sources under {@code root}, in path order. */
    static List<SourceFile> scan(Path root) {
        List<SourceFile> out = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(root)) {
            for (Path module : dirs.filter(d -> Files.isRegularFile(d.resolve("pom.xml"))).sorted().toList()) {
                for (String set : List.of("main", "test")) {
                    Path sources = module.resolve("src").resolve(set).resolve("java");
                    if (!Files.isDirectory(sources)) {
                        continue;
                    }
                    try (Stream<Path> files = Files.walk(sources)) {
                        for (Path f : files.filter(p -> p.toString().endsWith(".java"))
                                .sorted(Comparator.naturalOrder()).toList()) {
                            out.add(parse(module.getFileName().toString(), set.equals("test"), root.relativize(f),
                                    Files.readString(f)));
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the sources under " + root, e);
        }
        return out;
    }

    static SourceFile parse(String module, boolean test, Path path, String source) {
        String code = codeOnly(source);
        Matcher p = PACKAGE.matcher(code);
        String pkg = p.find() ? p.group(1) : "";
        StringBuilder rest = new StringBuilder(code);
        List<Reference> refs = new ArrayList<>();
        Matcher imports = IMPORT.matcher(code);
        while (imports.find()) {
            boolean isStatic = imports.group(1) != null;
            boolean wildcard = imports.group(3) != null;
            String name = imports.group(2);
            String written = "import " + (isStatic ? "static " : "") + name + (wildcard ? ".*" : "") + ";";
            refs.add(reference(lineOf(code, imports.start(2)), written, name));
            blank(rest, imports.start(), imports.end());
        }
        if (p.find(0)) {
            blank(rest, p.start(), p.end());
        }
        Matcher names = QUALIFIED.matcher(rest);
        while (names.find()) {
            Reference r = reference(lineOf(code, names.start()), names.group(1), names.group(1));
            if (r.type() != null) {  // a package name alone in code is no reference (it cannot be)
                refs.add(r);
            }
        }
        refs.sort(Comparator.comparingInt(Reference::line));
        return new SourceFile(module, test, path, pkg, List.copyOf(refs));
    }

    /** Splits a dotted name at its first capitalised segment: package, top-level type (null when there is none). */
    private static Reference reference(int line, String written, String name) {
        String[] parts = name.split("\\.");
        int i = 0;
        while (i < parts.length && !Character.isUpperCase(parts[i].charAt(0))) {
            i++;
        }
        String pkg = String.join(".", java.util.Arrays.copyOfRange(parts, 0, i));
        return new Reference(line, written, pkg, i < parts.length ? parts[i] : null);
    }

    private static int lineOf(CharSequence text, int offset) {
        int line = 1;
        for (int i = 0; i < offset; i++) {
            if (text.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    private static void blank(StringBuilder text, int from, int to) {
        for (int i = from; i < to; i++) {
            if (text.charAt(i) != '\n') {
                text.setCharAt(i, ' ');
            }
        }
    }

    /** The source with comments, string, text-block and char literals replaced by spaces (newlines kept). */
    static String codeOnly(String s) {
        StringBuilder out = new StringBuilder(s);
        int i = 0;
        int n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            int end;
            if (c == '/' && i + 1 < n && s.charAt(i + 1) == '/') {
                end = s.indexOf('\n', i);
                end = end < 0 ? n : end;
            } else if (c == '/' && i + 1 < n && s.charAt(i + 1) == '*') {
                end = s.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
            } else if (s.startsWith("\"\"\"", i)) {
                end = literalEnd(s, i + 3, "\"\"\"");
            } else if (c == '"' || c == '\'') {
                end = literalEnd(s, i + 1, String.valueOf(c));
            } else {
                i++;
                continue;
            }
            blank(out, i, end);
            i = end;
        }
        return out.toString();
    }

    /** Index just past the closing {@code quote} of a literal whose content starts at {@code from}; escapes skipped. */
    private static int literalEnd(String s, int from, String quote) {
        int i = from;
        while (i < s.length()) {
            if (s.charAt(i) == '\\') {
                i += 2;
            } else if (s.startsWith(quote, i)) {
                return i + quote.length();
            } else {
                i++;
            }
        }
        return s.length();
    }
}
