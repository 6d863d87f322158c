package io.moescore.spark;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.metadata.BlockMetaData;
import org.apache.parquet.hadoop.metadata.ColumnChunkMetaData;
import org.apache.parquet.hadoop.util.HadoopInputFile;

/**
 * Reads every input Parquet file's footer on the driver before the job starts and refuses a file whose footer
 * cannot be read or whose column chunks declare ranges past the end of the file. parquet-hadoop allocates a
 * chunk's declared size before reading it, so one corrupt size near 2^31 would cost every task attempt a 2 GiB
 * allocation and end in an executor out of memory instead of an error naming the file (spark-job/fuzz-results.md).
 * Conf {@code spark.moescore.checkParquetFooters=false} skips the check (one footer read per file).
 */
public final class ParquetInputCheck {
    private ParquetInputCheck() {
    }

    /** @throws IllegalArgumentException naming the first bad file */
    static void check(List<String> inputs, Configuration conf) {
        List<Path> files = new ArrayList<>();
        for (String input : inputs) {
            Path pattern = new Path(input);
            try {
                FileSystem fs = pattern.getFileSystem(conf);
                FileStatus[] roots = fs.globStatus(pattern);  // missing inputs: left to the reader's own message
                for (FileStatus root : roots == null ? new FileStatus[0] : roots) {
                    addFiles(fs, root, files, true);
                }
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot list input " + input + ": " + e.getMessage(), e);
            }
        }
        files.parallelStream().forEach(f -> checkFile(f, conf));
    }

    /** The data files under a file or folder: hidden names (_SUCCESS, .crc, _temporary) left out. */
    private static void addFiles(FileSystem fs, FileStatus status, List<Path> files, boolean root) throws IOException {
        String name = status.getPath().getName();
        if (!root && (name.startsWith("_") || name.startsWith("."))) {
            return;
        }
        if (!status.isDirectory()) {
            files.add(status.getPath());
            return;
        }
        for (FileStatus child : fs.listStatus(status.getPath())) {
            addFiles(fs, child, files, false);
        }
    }

    /** @throws IllegalArgumentException naming the file, when its footer is unreadable or a chunk runs past the end */
    public static void checkFile(Path file, Configuration conf) {
        long length;
        List<BlockMetaData> blocks;
        try {
            HadoopInputFile input = HadoopInputFile.fromPath(file, conf);
            length = input.getLength();
            try (ParquetFileReader reader = ParquetFileReader.open(input)) {
                blocks = reader.getFooter().getBlocks();
            }
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("input file " + file + " is not a readable Parquet file: "
                    + e.getMessage(), e);
        }
        for (BlockMetaData block : blocks) {
            for (ColumnChunkMetaData chunk : block.getColumns()) {
                long begin = chunk.getStartingPos();
                long end = begin + chunk.getTotalSize();
                if (begin < 0 || chunk.getTotalSize() < 0 || end < 0 || end > length) {
                    throw new IllegalArgumentException("input file " + file + " is corrupt: column chunk "
                            + chunk.getPath() + " declares bytes [" + begin + ", " + end + ") in a file of "
                            + length + " bytes");
                }
            }
        }
    }
}
