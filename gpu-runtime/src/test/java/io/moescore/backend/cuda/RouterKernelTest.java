package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.routing.BatchTopKRouter;
import io.moescore.routing.DropExpertsRouter;
import io.moescore.routing.GroupLimitedSigmoidRouter;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.routing.RoutingSpec;
import io.moescore.routing.ThresholdRouter;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.routing.TopPRouter;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The host side of the CUDA routers, without a device: which kernel each router gets (and which it refuses), the
 * widths and least counts the buffers and the routed-total check use, and the block plan of batch-level gating,
 * which must cut the batch exactly where BatchTopKRouter does.
 */
class RouterKernelTest {
    @Test
    void eachRouterGetsItsKernel() {
        assertEquals(new RouterKernel.TopK(2, true), RouterKernel.of(new TopKSoftmaxRouter(2, true)));
        assertEquals(new RouterKernel.TopP(0.7f, 3, false), RouterKernel.of(new TopPRouter(0.7f, 3, false)));
        assertEquals(new RouterKernel.Threshold(ThresholdRouter.Gate.PIONEER, 0.2f),
                RouterKernel.of(new ThresholdRouter(ThresholdRouter.Gate.PIONEER, 0.2f)));
        assertEquals(new RouterKernel.Sparsemax(), RouterKernel.of(new ThresholdRouter(ThresholdRouter.Gate.SPARSEMAX,
                0f)));
        assertEquals(new RouterKernel.BlockTopK(2, 64, true), RouterKernel.of(new BatchTopKRouter(2, 64, true)));
        boolean[] dropped = {false, true, false, false};
        RouterKernel drop = RouterKernel.of(new DropExpertsRouter(new TopKSoftmaxRouter(2, true), dropped));
        assertEquals(new RouterKernel.Drop(dropped.clone(), new RouterKernel.TopK(2, true)), drop);
        dropped[0] = true;  // the kernel keeps its own copy
        assertNotEqualMask(drop, dropped);
        float[] bias = {0.1f, -0.2f, 0f, 0.3f, 0f, 0f, 0.05f, 0f};
        RouterKernel group = RouterKernel.of(new GroupLimitedSigmoidRouter(2, 4, 2, true, 2.5f, bias));
        assertEquals(new RouterKernel.GroupSigmoid(new GroupLimitedSigmoidRouter(2, 4, 2, true, 2.5f, bias.clone())),
                group);
        bias[0] = 9f;  // the kernel keeps its own copy of the correction biases
        assertFalse(group.equals(new RouterKernel.GroupSigmoid(new GroupLimitedSigmoidRouter(2, 4, 2, true, 2.5f,
                bias))));
        assertEquals(2, group.width(8));
        assertFalse(group.varies());
    }

    private static void assertNotEqualMask(RouterKernel drop, boolean[] changed) {
        assertFalse(drop.equals(new RouterKernel.Drop(changed, new RouterKernel.TopK(2, true))));
    }

    /** Every spec RoutingSpec makes for a softmax top-k model has a kernel; so has the group-limited router. */
    @Test
    void everySpecOfASoftmaxModelHasAKernel() {
        Router own = new TopKSoftmaxRouter(2, true);
        for (String spec : new String[] {"model", "top-k:1", "top-k:8", "top-p:0.9", "top-p:0.5:8", "sigmoid:0.3",
            "softmax", "quadratic:0.1", "pioneer:0.9", "sparsemax", "batch-top-k:2", "batch-top-k:3:64"}) {
            Router router = RoutingSpec.parse(spec).router(own, 0, 8);
            assertTrue(CudaBackend.routes(router), spec + " -> " + router);
        }
        assertTrue(CudaBackend.routes(new GroupLimitedSigmoidRouter(2, 2, 1, true, 1f, new float[8])));
        assertTrue(CudaBackend.routes(new DropExpertsRouter(new GroupLimitedSigmoidRouter(2, 2, 1, true, 1f,
                new float[8]), new boolean[8])));
    }

    /** The ranking kernels keep their experts in per-thread arrays of ROUTER_MAX_K: past it, no kernel. */
    @Test
    void rankingRoutersPastTheLimitAreRefused() {
        int max = KernelConstants.ROUTER_MAX_K;
        assertTrue(CudaBackend.routes(new TopKSoftmaxRouter(max, true)));
        assertNull(RouterKernel.of(new TopKSoftmaxRouter(max + 1, true)));
        assertNull(RouterKernel.of(new TopPRouter(0.9f, max + 1, true)));
        assertNull(RouterKernel.of(new BatchTopKRouter(max + 1, 0, true)));
        assertNull(RouterKernel.of(new DropExpertsRouter(new TopKSoftmaxRouter(max + 1, true), new boolean[40])));
        assertNull(RouterKernel.of(new GroupLimitedSigmoidRouter(max + 1, 4, 4, true, 1f, new float[128])));
        assertNull(RouterKernel.of(new GroupLimitedSigmoidRouter(2, max + 4, max + 1, true, 1f,
                new float[2 * (max + 4)])));
        assertNull(RouterKernel.of(new GroupLimitedSigmoidRouter(2, 65, 1, true, 1f, new float[130])));  // mask
    }

    @Test
    void widthsAndLeastCountsBoundWhatEachRouterRoutes() {
        int experts = 40;
        RouterKernel topK = new RouterKernel.TopK(3, true);
        assertEquals(3, topK.width(experts));
        assertEquals(3, topK.least());
        assertFalse(topK.varies());
        RouterKernel topP = new RouterKernel.TopP(0.5f, 4, true);
        assertEquals(4, topP.width(experts));
        assertEquals(1, topP.least());
        assertTrue(topP.varies());
        for (RouterKernel gate : new RouterKernel[] {new RouterKernel.Threshold(ThresholdRouter.Gate.SIGMOID, 0.5f),
            new RouterKernel.Sparsemax()}) {
            assertEquals(experts, gate.width(experts));
            assertEquals(0, gate.least());
            assertTrue(gate.varies());
        }
        RouterKernel batch = new RouterKernel.BlockTopK(5, 0, false);
        assertEquals(5, batch.width(experts));
        assertEquals(5, batch.least());
        assertFalse(batch.varies());
        RouterKernel drop = new RouterKernel.Drop(new boolean[experts], topP);
        assertEquals(4, drop.width(experts));
        assertEquals(1, drop.least());
        assertTrue(drop.varies());
    }

    /** A router asking for more experts than the layer has is refused as its CPU twin refuses it. */
    @Test
    void moreExpertsThanTheLayerHasAreRefused() {
        assertEquals("router_topk_softmax: 3 experts per token of 2", assertThrows(IllegalArgumentException.class,
                () -> new RouterKernel.TopK(3, true).width(2)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RouterKernel.TopP(0.5f, 9, true).width(8));
        assertThrows(IllegalArgumentException.class, () -> new RouterKernel.BlockTopK(9, 4, true).width(8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new RouterKernel.Drop(new boolean[8], new RouterKernel.TopK(2, true)).width(6));
        assertEquals("expert drop list for 8 experts routes 6", e.getMessage());
        RouterKernel group = new RouterKernel.GroupSigmoid(new GroupLimitedSigmoidRouter(3, 4, 1, true, 1f,
                new float[8]));
        e = assertThrows(IllegalArgumentException.class, () -> group.width(8));  // 3 > 1 group of 2 experts
        assertEquals("router_group_sigmoid: top-3 of 1 of 4 groups over 8 experts with 8 correction biases",
                e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new RouterKernel.GroupSigmoid(new GroupLimitedSigmoidRouter(2, 4, 2, true, 1f, new float[8]))
                        .width(12));
    }

    /** The four gates of router_threshold get the distinct numbers constants.cuh gives them. */
    @Test
    void gatesAreNumberedAsTheKernelReadsThem() {
        Set<Integer> codes = new HashSet<>();
        for (ThresholdRouter.Gate gate : ThresholdRouter.Gate.values()) {
            if (gate != ThresholdRouter.Gate.SPARSEMAX) {
                codes.add(new RouterKernel.Threshold(gate, 0.5f).gateCode());
            }
        }
        assertEquals(Set.of(KernelConstants.GATE_SIGMOID, KernelConstants.GATE_SOFTMAX,
                KernelConstants.GATE_QUADRATIC, KernelConstants.GATE_PIONEER), codes);
        assertEquals(4, codes.size());
        assertEquals(KernelConstants.GATE_SOFTMAX,
                new RouterKernel.Threshold(ThresholdRouter.Gate.SOFTMAX, 0.5f).gateCode());
        assertThrows(IllegalStateException.class,
                () -> new RouterKernel.Threshold(ThresholdRouter.Gate.SPARSEMAX, 0f).gateCode());
    }

    @Test
    void blocksAreCutWithinEachSequence() {
        assertArrayEquals(new int[] {0, 10}, RouterKernel.blockStarts(new int[] {0, 4, 10}, 0, 10));
        assertArrayEquals(new int[] {0, 3, 4, 7, 10}, RouterKernel.blockStarts(new int[] {0, 4, 10}, 3, 10));
        // empty sequences add no block; a block never spans two sequences
        assertArrayEquals(new int[] {0, 2, 4, 5}, RouterKernel.blockStarts(new int[] {0, 0, 2, 4, 4, 5, 5}, 2, 5));
        assertArrayEquals(new int[] {0, 2, 3, 5}, RouterKernel.blockStarts(new int[] {0, 3, 3, 5}, 2, 5));
        assertArrayEquals(new int[] {0}, RouterKernel.blockStarts(new int[] {0, 0}, 4, 0));
        assertArrayEquals(new int[] {0}, RouterKernel.blockStarts(new int[] {0, 0}, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> RouterKernel.blockStarts(new int[] {0, 4}, 2, 5));
        assertThrows(IllegalArgumentException.class, () -> RouterKernel.blockStarts(new int[] {1, 5}, 2, 5));
    }

    /**
     * The plan routes as BatchTopKRouter does: each planned block routed alone as one batch gives exactly the
     * experts and gates that the CPU router gives those rows over the whole batch with its sequences (random
     * sequence lengths, zero included, and block sizes).
     */
    @Test
    void routingEachPlannedBlockAloneIsTheCpuRouting() {
        long seed = System.nanoTime();
        System.out.println("RouterKernelTest seed " + seed);
        Random random = new Random(seed);
        for (int trial = 0; trial < 50; trial++) {
            int experts = 2 + random.nextInt(12);
            int k = 1 + random.nextInt(experts);
            int sequences = 1 + random.nextInt(5);
            int[] starts = new int[sequences + 1];
            for (int s = 0; s < sequences; s++) {
                starts[s + 1] = starts[s] + random.nextInt(12);
            }
            int rows = starts[sequences];
            int block = random.nextInt(6);
            float[] logits = new float[rows * experts];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) random.nextGaussian();
            }
            String what = "seed " + seed + " trial " + trial + ": sequences " + Arrays.toString(starts) + ", block "
                    + block + ", top-" + k + " of " + experts;
            HostExpertRouting whole = new BatchTopKRouter(k, block, true).route(logits, rows, experts, starts);
            int[] plan = RouterKernel.blockStarts(starts, block, rows);
            assertEquals(0, plan[0], what);
            assertEquals(rows, plan[plan.length - 1], what);
            TokenLists want = TokenLists.of(whole, rows);
            for (int b = 0; b + 1 < plan.length; b++) {
                int from = plan[b];
                int to = plan[b + 1];
                assertTrue(to > from, what + ": empty block " + b + " in " + Arrays.toString(plan));
                HostExpertRouting alone = new BatchTopKRouter(k, 0, true).route(
                        Arrays.copyOfRange(logits, from * experts, to * experts), to - from, experts);
                TokenLists got = TokenLists.of(alone, to - from);
                for (int t = from; t < to; t++) {
                    assertArrayEquals(want.experts()[t], got.experts()[t - from], what + " row " + t);
                    assertArrayEquals(want.gates()[t], got.gates()[t - from], what + " row " + t);  // bits
                }
            }
        }
    }

    /** Removed experts go with the launch as bits: expert e is bit e % 64 of word e / 64; wider layers get none. */
    @Test
    void removedExpertsAreBitsOfTheLaunchsMask() {
        boolean[] dropped = new boolean[130];
        dropped[0] = true;
        dropped[63] = true;
        dropped[64] = true;
        dropped[129] = true;
        long[] words = RouterKernel.Drop.mask(dropped);
        assertEquals(KernelConstants.ROUTER_DROP_WORDS, words.length);
        assertEquals(1L | 1L << 63, words[0]);
        assertEquals(1L, words[1]);
        assertEquals(1L << 1, words[2]);
        for (int w = 3; w < words.length; w++) {
            assertEquals(0L, words[w]);
        }
        int most = 64 * KernelConstants.ROUTER_DROP_WORDS;
        Router own = new TopKSoftmaxRouter(2, true);
        assertTrue(CudaBackend.routes(new DropExpertsRouter(own, new boolean[most])));
        assertFalse(CudaBackend.routes(new DropExpertsRouter(own, new boolean[most + 1])));
    }

    @Test
    void sharedMemoryOfThePerWarpKernelsStaysWithinTheDefault() {
        assertEquals(KernelConstants.ROUTER_WARPS * 64 * 4, RouterKernel.perWarpFloats(64));
        int most = 48 * 1024 / KernelConstants.ROUTER_WARPS / 4;
        assertEquals(48 * 1024, RouterKernel.perWarpFloats(most));
        assertThrows(IllegalArgumentException.class, () -> RouterKernel.perWarpFloats(most + 1));
    }

    @Test
    void theRoutedTotalIsCheckedAgainstTheRoutersBounds() {
        assertTrue(RoutedCounts.within(6, 6, 6));
        assertFalse(RoutedCounts.within(5, 6, 6));
        assertTrue(RoutedCounts.within(0, 0, 80));
        assertTrue(RoutedCounts.within(80, 0, 80));
        assertFalse(RoutedCounts.within(81, 0, 80));
        assertInstanceOf(RouterKernel.TopK.class, RouterKernel.of(new TopKSoftmaxRouter(1, false)));
    }
}
