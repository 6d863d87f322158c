package io.moescore.arrow.spark;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;

import io.moescore.arrow.ArrowIpcReader;
import io.moescore.arrow.ArrowSchemas;
import io.moescore.arrow.IpcFormat;

/** Finding and opening Arrow files on a Hadoop file system. */
final class HadoopFiles {
    private HadoopFiles() {
    }

    /**
     * The files to read: each path that is a file, and the {@code .arrow} / {@code .arrows} files directly in
     * each path that is a directory (names starting with {@code _} or {@code .} skipped), sorted by name.
     */
    static List<String> listArrowFiles(List<String> paths, Configuration conf) throws IOException {
        List<String> files = new ArrayList<>();
        for (String p : paths) {
            Path path = new Path(p);
            FileSystem fs = path.getFileSystem(conf);
            FileStatus status;
            try {
                status = fs.getFileStatus(path);
            } catch (FileNotFoundException e) {
                throw new FileNotFoundException("arrow data source: path does not exist: " + p);
            }
            if (!status.isDirectory()) {
                files.add(status.getPath().toString());
                continue;
            }
            FileStatus[] children = fs.listStatus(path);
            Arrays.sort(children, Comparator.comparing(s -> s.getPath().getName()));
            int before = files.size();
            for (FileStatus child : children) {
                if (child.isFile() && IpcFormat.isArrowFileName(child.getPath().getName())) {
                    files.add(child.getPath().toString());
                }
            }
            if (files.size() == before) {
                throw new FileNotFoundException("arrow data source: no .arrow or .arrows files in directory " + p);
            }
        }
        return files;
    }

    /** Opens {@code file} for reading; the channel reads it from the start. */
    static SeekableByteChannel open(String file, Configuration conf) throws IOException {
        Path path = new Path(file);
        FileSystem fs = path.getFileSystem(conf);
        long size = fs.getFileStatus(path).getLen();
        FSDataInputStream in = fs.open(path);
        return new HadoopInputChannel(in, size);
    }

    /**
     * The Spark schema of an Arrow schema (after {@link io.moescore.arrow.NormalizedRoot}), column by column: a
     * column of a type Spark cannot hold is refused naming {@code file}, the column and its Arrow type.
     */
    static StructType sparkSchema(Schema arrow, String file) {
        List<StructField> fields = new ArrayList<>();
        for (Field f : arrow.getFields()) {
            DataType type;
            try {
                type = ArrowUtils.fromArrowField(f);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(file + ": column " + f.getName() + " has type "
                        + ArrowSchemas.typeName(f) + ", which Spark cannot read", e);
            }
            fields.add(new StructField(f.getName(), type, f.isNullable(), Metadata.empty()));
        }
        return new StructType(fields.toArray(StructField[]::new));
    }

    /** The Arrow schema of {@code file}, read from its header (stream) or footer (file). */
    static Schema readSchema(String file, Configuration conf) throws IOException {
        try (BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore schema " + file, 0,
                Long.MAX_VALUE);
             ArrowIpcReader in = ArrowIpcReader.open(open(file, conf), file, allocator)) {
            return in.schema();
        }
    }
}
