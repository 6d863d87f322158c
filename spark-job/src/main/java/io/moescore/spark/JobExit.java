package io.moescore.spark;

/** How the Spark jobs' main methods end with their exit code (0 ok, 2 bad options or input, 3 row errors, 1 other). */
public final class JobExit {
    private JobExit() {
    }

    /**
     * Exits the JVM with {@code code}, except that a successful driver in YARN cluster mode returns: there Spark's
     * application master takes any {@code System.exit} of the application, even {@code System.exit(0)}, for an
     * early exit and reports the application FAILED ("Shutdown hook called before final status was reported").
     * A failing code still exits, and YARN reports the application FAILED.
     */
    public static void exit(int code) {
        if (code == 0 && yarnClusterDriver()) {
            return;
        }
        System.exit(code);
    }

    /** True in the driver of a YARN cluster-mode application (the application master sets these properties). */
    static boolean yarnClusterDriver() {
        return System.getProperty("spark.master", "").startsWith("yarn")
                && "cluster".equals(System.getProperty("spark.submit.deployMode"));
    }
}
