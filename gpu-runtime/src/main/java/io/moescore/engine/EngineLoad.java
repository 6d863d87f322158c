package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import java.nio.file.Path;

/**
 * {@link Engine#load(Path, Devices, LoadOptions)}: the checks before any weight is read (each device's memory:
 * {@link DeviceMemoryPlan}), the routed experts' devices (device 0 alone, or several as {@link LoadOptions#placement}
 * says: {@link ExpertPlacement}, round-robin without a plan), the weights, and the checkpoint kept open where experts
 * stream from it.
 */
final class EngineLoad {
    private EngineLoad() {
    }

    /**
     * @throws IllegalArgumentException naming the plan's file and layer where it does not fit the model or devices
     */
    static Engine load(Path modelDirectory, Devices devices, LoadOptions options) {
        ModelConfig config = ModelConfig.load(modelDirectory);
        Backend backend = devices.primary();
        Engine.requireSupported(config, backend, modelDirectory.toString());
        // one device without a plan: the plain one-backend engine; else the experts spread over the devices
        boolean spread = devices.size() > 1 || !options.placement().isNone();
        ExpertPlacement placement = spread ? ExpertPlacement.of(options.placement(), config, devices.size()) : null;
        ExpertResidency residency = DeviceMemoryPlan.of(config, modelDirectory, devices.all(), placement,
                options.deviceMemory());  // each device's memory, before any weight is read
        Engine.requireRoutable(backend, options.routing(), options.routing().routers(config));  // before any upload
        ExpertDevices on = spread ? new DeviceGroup(devices, placement) : ExpertDevices.on(backend);
        Checkpoint checkpoint = Checkpoint.open(modelDirectory);
        try {
            ModelWeights weights = ModelWeights.load(backend, config, checkpoint, options, residency, on);
            boolean streams = weights.residency().streamedLayers() > 0;
            Engine engine = new Engine(config, backend, weights, options.routing(), streams ? checkpoint : null, on);
            if (!streams) {
                checkpoint.close();
            }
            return engine;
        } catch (RuntimeException e) {
            checkpoint.close();
            on.close();
            throw e;
        }
    }
}
