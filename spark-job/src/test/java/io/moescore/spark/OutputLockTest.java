package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The output lock on the local file system: one claim of many racing ones wins; heartbeat; release. */
class OutputLockTest {
    static final Configuration CONF = new Configuration();
    @TempDir
    Path dir;

    static ObjectNode holder(String app) {
        return new ObjectMapper().createObjectNode().put("app_id", app).put("app_name", "test");
    }

    @Test
    void ofManyClaimsRacingForOneOutputExactlyOneWins() throws Exception {
        int racers = 8;
        for (int round = 0; round < 6; round++) {
            String output = dir.resolve("out-" + round).toString();
            CountDownLatch go = new CountDownLatch(1);
            ExecutorService pool = Executors.newFixedThreadPool(racers);
            List<Future<OutputLock>> claims = new ArrayList<>();
            for (int i = 0; i < racers; i++) {
                String app = "app-" + i;
                claims.add(pool.submit(() -> {
                    go.await();
                    try {
                        return OutputLock.claim(output, holder(app), 300, CONF);
                    } catch (IllegalArgumentException e) {
                        assertTrue(e.getMessage().contains("is being written by another moescore job"), e.getMessage());
                        return null;
                    }
                }));
            }
            go.countDown();
            List<OutputLock> won = new ArrayList<>();
            for (Future<OutputLock> c : claims) {
                if (c.get() != null) {
                    won.add(c.get());
                }
            }
            pool.shutdown();
            assertEquals(1, won.size(), "round " + round + ": exactly one claim wins");
            Path marker = dir.resolve(".out-" + round + OutputLock.SUFFIX);
            assertTrue(Files.exists(marker));
            won.get(0).close();
            assertFalse(Files.exists(marker), "released");
        }
    }

    @Test
    void theHeartbeatKeepsTheLockFreshAndReleaseLeavesAnotherJobsLockAlone() throws Exception {
        String output = dir.resolve("out").toString();
        Path marker = dir.resolve(".out" + OutputLock.SUFFIX);
        try (OutputLock lock = OutputLock.claim(output, holder("app-a"), 1, CONF)) {
            assertEquals(marker.toUri().getPath(), lock.marker().toUri().getPath());
            assertTrue(Files.readString(marker).contains("\"app_id\" : \"app-a\""), Files.readString(marker));
            long first = Files.getLastModifiedTime(marker).toMillis();
            Files.setLastModifiedTime(marker, java.nio.file.attribute.FileTime.fromMillis(first - 60_000));
            Thread.sleep(1000);
            assertTrue(Files.getLastModifiedTime(marker).toMillis() > first - 30_000, "the heartbeat refreshed it");
            // another job took the lock over (it judged this one gone): releasing must not delete its lock
            Files.writeString(marker, "{\"app_id\": \"app-b\", \"token\": \"other\"}");
        }
        assertTrue(Files.exists(marker), "another job's lock is not deleted");
    }
}
