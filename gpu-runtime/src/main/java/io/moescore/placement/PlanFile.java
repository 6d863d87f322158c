package io.moescore.placement;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A placement plan as a user gave it ({@code --placement PLAN.json}): the file's name and its JSON, read and checked
 * once where the option is resolved, so that the text travels with the settings (a Spark driver's file reaches its
 * executors as part of them) and errors name the file.
 *
 * @param path the file as given ("" for {@link #NONE})
 * @param json its text
 */
public record PlanFile(String path, String json) implements Serializable {
    /** No plan given. */
    public static final PlanFile NONE = new PlanFile("", "");

    /**
     * The text of {@code file}, not yet checked ({@link #plan} parses it).
     *
     * @throws IllegalArgumentException naming the file where it cannot be read
     */
    public static PlanFile read(Path file) {
        try {
            return new PlanFile(file.toString(), Files.readString(file));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e, e);
        }
    }

    /**
     * "" for none, else the plan in that file, read and checked ({@link PlacementPlan#parse}).
     *
     * @throws IllegalArgumentException naming the file and what is wrong
     */
    public static PlanFile parse(String path) {
        if (path.isBlank()) {
            return NONE;
        }
        PlanFile file = read(Path.of(path.trim()));
        file.plan();
        return file;
    }

    public boolean isNone() {
        return path.isEmpty();
    }

    /** The plan (errors name the file); not for {@link #NONE}. */
    public PlacementPlan plan() {
        if (isNone()) {
            throw new IllegalStateException("no placement plan given");
        }
        return PlacementPlan.parse(json, path);
    }

    @Override
    public String toString() {
        return path;
    }
}
