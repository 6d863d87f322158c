package io.moescore.bench.roofline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RooflineTest {
    /** OLMoE-1B-7B's dimensions. */
    static final OpCosts.Dims OLMOE = new OpCosts.Dims(50304, 2048, 16, 16, 16, 128, 64, 8, 1024, 0, true);

    @Test
    void costsCountTheProductsOfTheShape() {
        Map<String, OpCosts.Cost> c = OpCosts.of(OLMOE, 8192, 512, false);
        // causal attention, FLOPs counted once: 2 (QK^T, PV) x 2 x d per (query, key <= query) pair per head
        assertEquals(2.0 * 2 * 128 * 16 * 16 * 16 * (512.0 * 513 / 2), c.get("attention").flops(), 1);
        assertEquals(2.0 * 8192 * 8 * 3 * 2048 * 1024 * 16, c.get("experts").flops(), 1);
        assertEquals(2.0 * 8192 * 2048 * 50304, c.get("logProbs").flops(), 1);
        // q, k, v, o (2048 x 2048 each) and the router (64 x 2048), 16 layers
        assertEquals(16 * (2.0 * 8192 * 2048 * (4 * 2048 + 64)), c.get("linear").flops(), 1);
        assertTrue(c.get("addRmsNorm").bytes() > 0 && c.get("addRmsNorm").flops() == 0);
        // q and k's norms run with RoPE: rmsNorm keeps the first input norm's bytes only
        Map<String, OpCosts.Cost> fused = OpCosts.of(OLMOE, 8192, 512, true);
        assertEquals(8192.0 * 2048 * (4 + 2), fused.get("rmsNorm").bytes(), 1);
        assertEquals(fused.get("rope").bytes(), fused.get("rmsNormRope").bytes(), 1);
    }

    @Test
    void tableGivesEachOpsShareOfItsFloor() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode result = json.createObjectNode();
        result.put("device", "NVIDIA H100 80GB HBM3 (cuda:0, sm_90)");
        result.put("config", "olmoe(vocab 50304, ...)");
        result.put("experts", "dense");
        result.set("dims", json.valueToTree(OLMOE));
        ObjectNode run = result.putArray("runs").addObject();
        run.put("tokens", 8192);
        run.put("sequence_length", 512);
        double expertsFloorMs = 2.0 * 8192 * 8 * 3 * 2048 * 1024 * 16 / 989.4e12 * 1e3;  // compute-bound
        run.putObject("op_ms").put("experts", 2 * expertsFloorMs).put("mystery", 1.0);
        String table = Roofline.table(result);
        assertTrue(table.contains(String.format(java.util.Locale.ROOT, "| experts | %.2f |", 2 * expertsFloorMs)),
                table);
        assertTrue(table.contains("| 50% |"), table);
        assertTrue(table.contains("| mystery | 1.00 | | | | | | (no cost model) |"), table);
        result.put("device", "Some GPU");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Roofline.table(result));
        assertTrue(e.getMessage().contains("Some GPU"), e.getMessage());
    }
}
