package io.moescore.spark;

import io.moescore.backend.Devices;
import io.moescore.engine.Engine;
import io.moescore.model.TextTokenizer;
import io.moescore.routing.RoutingSpec;
import io.moescore.score.ScoreSettings;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engines of this executor JVM: one per (model, backend, device), loaded by the first task that needs it
 * and shared by every later and concurrent task. A task never loads a model. Router variants ({@code --routing})
 * share the weights: one engine per variant over the same weights, so that jobs scoring one model with several
 * routers (the routing study) hold it once. Released at JVM exit.
 */
public final class ExecutorEngines {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorEngines.class);

    /**
     * An engine with the devices it owns and the tokenizer beside it (loaded on first use), and the engines of other
     * routers over its weights (created on first use; they own nothing).
     */
    public static final class Loaded {
        private final Engine engine;
        private final Devices devices;
        private final Path modelDir;
        private final Map<RoutingSpec, Engine> routed = new ConcurrentHashMap<>();
        private volatile TextTokenizer tokenizer;

        Loaded(Engine engine, Devices devices, Path modelDir) {
            this.engine = engine;
            this.devices = devices;
            this.modelDir = modelDir;
        }

        /** The engine with the model's own routers, the weights' owner. */
        public Engine engine() {
            return engine;
        }

        /** The engine routing as {@code routing} says, over the same weights. */
        public Engine engine(RoutingSpec routing) {
            return routing.isModel() ? engine : routed.computeIfAbsent(routing, engine::withRouting);
        }

        /** The devices the engine computes on ("CPU (2 threads)", "2 devices: ..."). */
        public Devices devices() {
            return devices;
        }

        public synchronized TextTokenizer tokenizer() {
            if (tokenizer == null) {
                tokenizer = TextTokenizer.load(modelDir);
            }
            return tokenizer;
        }

        void close() {
            engine.close();
            devices.close();
            if (tokenizer != null) {
                tokenizer.close();
            }
        }
    }

    /**
     * What an engine's weights depend on: the model, the settings that load it ({@link ScoreSettings#forEngine},
     * less the routing), the GPU.
     */
    private record Key(String modelUri, ScoreSettings settings, int device) {
    }

    private static final Map<Key, Loaded> ENGINES = new ConcurrentHashMap<>();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(ExecutorEngines::closeAll, "moescore-engines-shutdown"));
    }

    private ExecutorEngines() {
    }

    /** The shared engine for this spec on this device, loading it if this JVM has none yet. */
    public static Loaded get(ScoringSpec spec, int device) {
        ScoreSettings weights = spec.settings().forEngine().with(ScoreSettings.ROUTING, RoutingSpec.MODEL);
        return ENGINES.computeIfAbsent(new Key(spec.modelUri(), weights, device), key -> load(key.settings(), spec,
                device));
    }

    /** The shared engine for this spec on the GPU Spark assigned the running task (device 0 when none). */
    public static Loaded forTask(ScoringSpec spec) {
        return get(spec, PartitionScorer.gpuAddress(org.apache.spark.TaskContext.get()));
    }

    /** Closes and forgets this JVM's engines of a model no task will use again (a sparsify pass's model copy). */
    public static void release(String modelUri) {
        for (Key key : ENGINES.keySet()) {
            if (key.modelUri().equals(modelUri)) {
                Loaded loaded = ENGINES.remove(key);
                if (loaded != null) {
                    loaded.close();
                }
            }
        }
    }

    /** Loads the model with its own routers ({@code settings}: the spec's, routing the model's own). */
    private static Loaded load(ScoreSettings settings, ScoringSpec spec, int device) {
        long start = System.nanoTime();
        Path local = ModelFiles.localize(spec.modelUri(), ModelFiles.hadoopConf(spec.hadoopConf()));
        Devices devices = settings.openDevices(device);
        try {
            Engine engine = Engine.load(local, devices, settings.loadOptions());
            LOG.info("moescore: loaded {} from {} on {} in {} ms", engine.config(), spec.modelUri(),
                    devices.describe(), (System.nanoTime() - start) / 1_000_000);
            return new Loaded(engine, devices, local);
        } catch (RuntimeException e) {
            devices.close();
            throw e;
        }
    }

    static void closeAll() {
        ENGINES.values().forEach(Loaded::close);
        ENGINES.clear();
    }
}
