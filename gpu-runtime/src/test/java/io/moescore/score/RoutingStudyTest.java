package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.moescore.batch.ExpertLoad;
import io.moescore.model.ModelConfig;
import io.moescore.TestModels;
import io.moescore.routing.RoutingSpec;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The study's pieces that need no scoring: proposed drops, the variants' order, the option's parsing. */
class RoutingStudyTest {
    @Test
    void proposesTheLeastLoadedExpertsOfEachLayerTiesToTheHigherIndex() {
        ModelConfig config = ModelConfig.load(TestModels.demoModel());  // 4 MoE layers of 8 experts
        ExpertLoad load = new ExpertLoad(4, 8);
        load.add(0, new int[] {9, 1, 5, 5, 7, 0, 8, 6});
        load.add(1, new int[] {3, 3, 3, 3, 3, 3, 3, 3});
        load.add(2, new int[] {0, 0, 0, 9, 9, 9, 9, 9});
        assertEquals(Map.of(0, List.of(1, 5), 1, List.of(6, 7), 2, List.of(1, 2), 3, List.of(6, 7)),
                RoutingStudy.leastLoaded(load, config, 2));
    }

    @Test
    void theModelsRouterComesFirstAndEachVariantOnce() {
        RoutingStudyOptions.Variants given = RoutingStudyOptions.Variants.parse("top-k:1, model,top-k:1,sparsemax");
        assertEquals(List.of("model", "top-k:1", "sparsemax"), RoutingStudyOptions.withBaseline(given.specs())
                .stream().map(RoutingSpec::toString).toList());
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
                () -> RoutingStudyOptions.VARIANTS.valueOf("top-k:1,,sparsemax", "--variants"));
        assertEquals("--variants 'top-k:1,,sparsemax' has an empty variant: give V1,V2,... (each a --routing SPEC)",
                empty.getMessage());
    }
}
