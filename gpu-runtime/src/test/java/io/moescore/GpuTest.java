package io.moescore;

import io.moescore.backend.cuda.GpuRuntime;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A test class that needs a CUDA device: tagged {@code gpu} (the GPU machine runs them with {@code --include-tag
 * gpu}: README, developer notes) and skipped as a whole, before any of its set-up runs, where GPU 0 cannot be used,
 * saying why ({@link GpuRuntime#whyUnavailable}: no driver, no device, no kernels in this build).
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Tag("gpu")
@ExtendWith(GpuTest.DeviceAvailable.class)
public @interface GpuTest {
    /** Enables the class only where GPU 0 is usable. */
    final class DeviceAvailable implements ExecutionCondition {
        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            String why = GpuRuntime.whyUnavailable(0);
            return why == null ? ConditionEvaluationResult.enabled("GPU 0 is usable")
                    : ConditionEvaluationResult.disabled(why + ": skipping GPU tests");
        }
    }
}
