package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link KernelConstants}, which the build generates from src/main/cuda/constants.cuh (gen_constants.sh), against the
 * header read here on its own: defines expanded as the C preprocessor does (textually, so a parameter the header
 * forgot to parenthesize shows up as a difference), then evaluated in C's int arithmetic. No GPU or nvcc needed.
 */
class KernelConstantsTest {
    static final Path CUDA = Path.of("src/main/cuda");
    /** Arguments each define with parameters is evaluated at. */
    static final int[] SAMPLE_ARGUMENTS = {1, 7, 32, 64, 96, 128, 200, 256};

    @Test
    void everyDefineOfTheHeaderIsGeneratedWithItsValue() throws Exception {
        Header header = Header.read(CUDA.resolve("constants.cuh"));
        Set<String> generated = new TreeSet<>();
        for (Field f : KernelConstants.class.getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()) {
                generated.add(f.getName());
                assertEquals(header.value(f.getName(), List.of()), f.getInt(null), "constants.cuh: " + f.getName());
            }
        }
        for (Method m : KernelConstants.class.getDeclaredMethods()) {
            if (!Modifier.isStatic(m.getModifiers()) || m.isSynthetic()) {
                continue;
            }
            generated.add(m.getName());
            for (int a : SAMPLE_ARGUMENTS) {
                Object[] args = new Object[m.getParameterCount()];
                Arrays.fill(args, a);
                List<Integer> values = Arrays.stream(args).map(x -> (Integer) x).toList();
                assertEquals(header.value(m.getName(), values), m.invoke(null, args),
                        "constants.cuh: " + m.getName() + values);
            }
        }
        assertEquals(new TreeSet<>(header.defines.keySet()), generated, "defines of constants.cuh vs KernelConstants");
    }

    /** The kernels read the header (through common.cuh), and no .cu file defines one of its names a second time. */
    @Test
    void theKernelsTakeTheirSizesFromTheHeaderOnly() throws IOException {
        Set<String> names = Header.read(CUDA.resolve("constants.cuh")).defines.keySet();
        assertTrue(Files.readString(CUDA.resolve("common.cuh")).contains("#include \"constants.cuh\""),
                "common.cuh includes constants.cuh");
        Pattern define = Pattern.compile("^\\s*#\\s*define\\s+([A-Za-z_][A-Za-z0-9_]*)", Pattern.MULTILINE);
        List<String> again = new ArrayList<>();
        try (Stream<Path> files = Files.list(CUDA)) {
            for (Path f : files.filter(p -> !p.getFileName().toString().equals("constants.cuh")
                    && p.getFileName().toString().matches(".*\\.cuh?")).sorted().toList()) {
                Matcher m = define.matcher(Files.readString(f));
                while (m.find()) {
                    if (names.contains(m.group(1))) {
                        again.add(f.getFileName() + ": " + m.group(1));
                    }
                }
            }
        }
        assertEquals(List.of(), again, "header constants defined again in a .cu file (a second source)");
    }

    /** The generator refuses a header it cannot translate into Java, naming the line, and writes nothing. */
    @Test
    void theGeneratorRefusesWhatItCannotTranslate(@TempDir Path dir) throws Exception {
        String[][] cases = {
            {"#define A 1\n#define B (A * 1.5f)\n", ":2:"},
            {"#define A (B + 1)\n", "neither a parameter nor a name defined above"},
            {"#define A 1 \\\n  + 2\n", "one line per define"},
            {"#include <stdint.h>\n", "only comments"},
        };
        for (String[] c : cases) {
            Path header = dir.resolve("bad.cuh");
            Files.writeString(header, c[0]);
            Path out = dir.resolve("out");
            Process p = new ProcessBuilder("bash", CUDA.resolve("gen_constants.sh").toString(), header.toString(),
                    out.toString()).redirectErrorStream(true).start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertNotEquals(0, p.waitFor(), c[0] + " accepted: " + output);
            assertTrue(output.contains(c[1]), c[0] + ": " + output);
            assertTrue(!Files.exists(out.resolve("io/moescore/backend/cuda/KernelConstants.java")),
                    c[0] + ": a class was written");
        }
    }

    /** constants.cuh as the C preprocessor reads it: one-line defines, expanded textually, evaluated as C ints. */
    static final class Header {
        record Define(String name, List<String> params, List<String> body) {
        }

        final Map<String, Define> defines = new LinkedHashMap<>();

        static Header read(Path file) throws IOException {
            Header h = new Header();
            Pattern define = Pattern.compile("#define\\s+([A-Za-z_][A-Za-z0-9_]*)(\\(([^)]*)\\))?\\s+(.*)");
            for (String line : Files.readAllLines(file)) {
                Matcher m = define.matcher(line.strip());
                if (m.matches()) {
                    List<String> params = m.group(2) == null ? null
                            : Arrays.stream(m.group(3).split(",")).map(String::strip).toList();
                    h.defines.put(m.group(1), new Define(m.group(1), params, tokens(m.group(4))));
                }
            }
            return h;
        }

        /** The value of NAME, or of NAME(args) for a define with parameters. */
        int value(String name, List<Integer> args) {
            List<String> use = new ArrayList<>(List.of(name));
            if (!args.isEmpty()) {
                use.add("(");
                for (int i = 0; i < args.size(); i++) {
                    if (i > 0) {
                        use.add(",");
                    }
                    use.add(Integer.toString(args.get(i)));
                }
                use.add(")");
            }
            Evaluator e = new Evaluator(expand(use, Set.of()));
            long v = e.sum();
            assertEquals(e.tokens.size(), e.at, name + ": tokens left over in " + e.tokens);
            assertEquals((int) v, v, name + " overflows int");
            return (int) v;
        }

        static List<String> tokens(String text) {
            List<String> out = new ArrayList<>();
            Matcher m = Pattern.compile("\\s*([0-9]+|[A-Za-z_][A-Za-z0-9_]*|[-+*/%(),])").matcher(text);
            int at = 0;
            while (!text.substring(at).isBlank()) {
                m.region(at, text.length());
                assertTrue(m.lookingAt(), "unexpected text in \"" + text + "\" at " + at);
                out.add(m.group(1));
                at = m.end();
            }
            return out;
        }

        /** Macro expansion: a define's body replaces its name, arguments (expanded first) replace parameters. */
        List<String> expand(List<String> in, Set<String> hidden) {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < in.size(); i++) {
                Define d = defines.get(in.get(i));
                if (d == null || hidden.contains(d.name)) {
                    out.add(in.get(i));
                    continue;
                }
                Set<String> hide = new HashSet<>(hidden);
                hide.add(d.name);
                if (d.params == null) {
                    out.addAll(expand(d.body, hide));
                    continue;
                }
                List<List<String>> args = new ArrayList<>();
                List<String> arg = new ArrayList<>();
                int depth = 0;
                int j = i + 1;
                assertEquals("(", in.get(j), d.name + " without arguments");
                for (j = j + 1; depth > 0 || !in.get(j).equals(")"); j++) {
                    String t = in.get(j);
                    depth += t.equals("(") ? 1 : t.equals(")") ? -1 : 0;
                    if (depth == 0 && t.equals(",")) {
                        args.add(arg);
                        arg = new ArrayList<>();
                    } else {
                        arg.add(t);
                    }
                }
                args.add(arg);
                assertEquals(d.params.size(), args.size(), d.name + " arguments");
                List<String> body = new ArrayList<>();
                for (String t : d.body) {
                    int p = d.params.indexOf(t);
                    body.addAll(p < 0 ? List.of(t) : expand(args.get(p), hidden));
                }
                out.addAll(expand(body, hide));
                i = j;
            }
            return out;
        }
    }

    /** C integer arithmetic over expanded tokens: + - * / % with the usual precedence, unary minus, parentheses. */
    static final class Evaluator {
        final List<String> tokens;
        int at;

        Evaluator(List<String> tokens) {
            this.tokens = tokens;
        }

        long sum() {
            long v = product();
            while (at < tokens.size() && (tokens.get(at).equals("+") || tokens.get(at).equals("-"))) {
                v = tokens.get(at++).equals("+") ? v + product() : v - product();
            }
            return v;
        }

        long product() {
            long v = unary();
            while (at < tokens.size() && "*/%".contains(tokens.get(at)) && tokens.get(at).length() == 1) {
                String op = tokens.get(at++);
                long r = unary();
                v = op.equals("*") ? v * r : op.equals("/") ? v / r : v % r;
            }
            return v;
        }

        long unary() {
            if (tokens.get(at).equals("-")) {
                at++;
                return -unary();
            }
            if (tokens.get(at).equals("(")) {
                at++;
                long v = sum();
                assertEquals(")", tokens.get(at++), "unbalanced parentheses in " + tokens);
                return v;
            }
            String t = tokens.get(at++);
            assertTrue(t.matches("[0-9]+"), "not a number after expansion: " + t + " in "
                    + tokens.stream().collect(Collectors.joining(" ")));
            return Long.parseLong(t);
        }
    }
}
