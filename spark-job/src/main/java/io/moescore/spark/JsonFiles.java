package io.moescore.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** JSON documents (job summaries) written to any Hadoop file system path. */
public final class JsonFiles {
    private JsonFiles() {
    }

    /** Writes {@code json}, pretty-printed, to {@code path}, replacing what is there. */
    public static void write(String path, Configuration conf, JsonNode json) throws IOException {
        Path p = new Path(path);
        FileSystem fs = p.getFileSystem(conf);
        try (OutputStream out = fs.create(p, true)) {
            new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out, json);
        }
    }
}
