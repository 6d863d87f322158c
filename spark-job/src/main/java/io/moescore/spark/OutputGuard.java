package io.moescore.spark;

import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.GlobPattern;
import org.apache.hadoop.fs.Path;

/**
 * Refuses a write that could delete, overwrite or add files into what a run reads: an output (or summary) path
 * that is, is inside, or contains an input or the model directory. Paths are compared as the file systems see
 * them: qualified with scheme, authority and working directory, symbolic links resolved (the real path on the local
 * file system, {@link FileSystem#resolvePath} elsewhere, for the part of the path that exists), glob inputs
 * expanded to what they match. Paths on different file systems never overlap.
 */
public final class OutputGuard {
    private static final Pattern GLOB = Pattern.compile("[*?\\[\\]{}]");

    private OutputGuard() {
    }

    /**
     * The job's check, before it writes anything: neither {@code --output}, the summary nor {@code --routing-trace}
     * may overlap an input or the model directory, nor the routing trace the output. Throws
     * {@link IllegalArgumentException} naming both paths.
     */
    static void check(ScoreJobOptions options, Configuration conf) {
        List<String[]> written = List.of(new String[] {options.output(), "--output"},
                new String[] {options.resolvedSummaryPath(), options.summaryPath() != null ? "--summary"
                        : "the summary (OUTPUT.summary.json)"},
                new String[] {options.routingTrace(), "--routing-trace"});
        for (String[] w : written) {
            for (String input : options.inputs()) {
                refuseOverlap(w[0], w[1], input, "the input (--input " + input + ")", conf);
            }
            refuseOverlap(w[0], w[1], options.model(), "the model directory (--model " + options.model() + ")", conf);
        }
        refuseOverlap(options.routingTrace(), "--routing-trace", options.output(), "the output (--output "
                + options.output() + ")", conf);
    }

    /**
     * Throws {@link IllegalArgumentException} when {@code written} (what {@code writtenRole} writes, e.g.
     * "--output") is, is inside, or contains {@code kept} ({@code keptRole}, e.g. "the input (--input X)"),
     * naming both as qualified paths. {@code kept} may be a glob: each path it matches is kept, and so is any path
     * the pattern would match.
     */
    public static void refuseOverlap(String written, String writtenRole, String kept, String keptRole,
                                     Configuration conf) {
        if (written == null || kept == null || written.isBlank() || kept.isBlank()) {
            return;
        }
        try {
            Path w = canonical(new Path(written), conf);
            List<Path> keptPaths = new ArrayList<>();
            Path k = new Path(kept);
            if (GLOB.matcher(kept).find()) {
                Path pattern = k.getFileSystem(conf).makeQualified(k);
                refuseGlobMatch(w, writtenRole, pattern, keptRole);
                FileStatus[] matches = k.getFileSystem(conf).globStatus(k);
                for (FileStatus m : matches == null ? new FileStatus[0] : matches) {
                    keptPaths.add(canonical(m.getPath(), conf));
                }
            } else {
                keptPaths.add(canonical(k, conf));
            }
            for (Path kp : keptPaths) {
                String relation = relation(w, kp);
                if (relation != null) {
                    throw new IllegalArgumentException(writtenRole + " " + w + " " + relation + " " + keptRole
                            + ", " + kp + ": writing there could delete or change it; choose a path outside every "
                            + "input and the model directory");
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot compare " + writtenRole + " " + written + " with " + keptRole
                    + ": " + e.getMessage(), e);
        }
    }

    /** "is", "is inside" or "contains" where {@code written} and {@code kept} overlap; null where they do not. */
    static String relation(Path written, Path kept) {
        if (!sameFileSystem(written.toUri(), kept.toUri())) {
            return null;
        }
        List<String> w = components(written);
        List<String> k = components(kept);
        if (w.equals(k)) {
            return "is";
        }
        if (w.size() > k.size() && w.subList(0, k.size()).equals(k)) {
            return "is inside";
        }
        if (k.size() > w.size() && k.subList(0, w.size()).equals(w)) {
            return "contains";
        }
        return null;
    }

    /** A written path that the kept glob matches, or one of whose folders it matches, would be read as input. */
    private static void refuseGlobMatch(Path written, String writtenRole, Path pattern, String keptRole) {
        if (!sameFileSystem(written.toUri(), pattern.toUri())) {
            return;
        }
        GlobPattern glob = new GlobPattern(pattern.toUri().getPath());
        for (Path p = written; p != null; p = p.getParent()) {
            if (glob.matches(p.toUri().getPath())) {
                throw new IllegalArgumentException(writtenRole + " " + written + (p.equals(written) ? " matches "
                        : " is inside " + p + ", which matches ") + keptRole + ", " + pattern
                        + ": writing there could change what the input reads; choose a path outside every input and "
                        + "the model directory");
            }
        }
    }

    private static boolean sameFileSystem(URI a, URI b) {
        return String.valueOf(a.getScheme()).equalsIgnoreCase(String.valueOf(b.getScheme()))
                && String.valueOf(a.getAuthority()).toLowerCase(Locale.ROOT)
                        .equals(String.valueOf(b.getAuthority()).toLowerCase(Locale.ROOT));
    }

    private static List<String> components(Path p) {
        List<String> out = new ArrayList<>();
        for (String c : p.toUri().getPath().split("/")) {
            if (!c.isEmpty()) {
                out.add(c);
            }
        }
        return out;
    }

    /**
     * The path as its file system resolves it: qualified, and its longest existing part with links resolved (the
     * rest appended as written, once normalized).
     */
    static Path canonical(Path path, Configuration conf) throws IOException {
        FileSystem fs = path.getFileSystem(conf);
        Path qualified = fs.makeQualified(path);
        List<String> missing = new ArrayList<>();
        Path existing = qualified;
        while (existing != null && !fs.exists(existing)) {
            missing.add(0, existing.getName());
            existing = existing.getParent();
        }
        if (existing == null) {
            return qualified;
        }
        Path resolved = resolveLinks(fs, existing);
        for (String name : missing) {
            resolved = new Path(resolved, name);
        }
        return resolved;
    }

    private static Path resolveLinks(FileSystem fs, Path existing) throws IOException {
        if ("file".equalsIgnoreCase(existing.toUri().getScheme())) {
            return fs.makeQualified(new Path(java.nio.file.Path.of(existing.toUri()).toRealPath().toString()));
        }
        try {
            return fs.resolvePath(existing);
        } catch (UnsupportedOperationException e) {
            return existing;
        }
    }
}
