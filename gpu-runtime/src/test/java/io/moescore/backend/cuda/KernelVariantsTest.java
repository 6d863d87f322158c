package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelConstants.BM;
import static io.moescore.backend.cuda.KernelConstants.FA90_THREADS;
import static io.moescore.backend.cuda.KernelConstants.FA_ROWS;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_PAIRED_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.GEMM_SM90_TILED_SHARED_BYTES;
import static io.moescore.backend.cuda.KernelConstants.S90_BK;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP9_HALF_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP_TOKENS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.backend.cuda.KernelVariant.Family;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The kernel variant table without a GPU: pairs, the choice each {@link Kernels} setting makes, launch geometry that
 * agrees with the header, shared memory within what each architecture that runs a kernel allows, and (where this
 * build has the fatbin) every kernel name the backend launches present in it.
 */
class KernelVariantsTest {
    /** Dynamic shared memory a block may opt into: sm_90, sm_80/87, sm_86/89 (CUDA programming guide). */
    static final int SM90_LIMIT = 227 * 1024;
    static final int SM80_LIMIT = 163 * 1024;
    static final int SM86_LIMIT = 99 * 1024;
    /**
     * Kernels over sm_86/89's 99 KB: the mma.sp 2:4 experts take 120 KB (SPARSE_SHARED_BYTES), which only sm_80/87
     * and Hopper give a block. Pinned here so the list cannot grow unnoticed.
     */
    static final Set<String> KNOWN_OVER_SM86 = Set.of("experts_bf16_gate_up_sp24", "experts_f16_gate_up_sp24");

    @Test
    void namesAreUniqueAndEveryGroupedKernelHasItsOwnPair() {
        Set<String> names = new HashSet<>();
        for (KernelVariant v : KernelVariants.ALL) {
            assertTrue(names.add(v.name()), "twice: " + v.name());
            if (v.family().grouped) {
                assertTrue(v.name().contains("_gate_up"), v.name() + " is a gate+up kernel");
                assertTrue(v.pair().contains("_down"), v.name() + " pairs with a down kernel, not " + v.pair());
                assertTrue(names.add(v.pair()), "a second variant pairs with " + v.pair());
            }
        }
        assertEquals(2 * (7 + 2 + 7 + 1 + 2 + 1), KernelVariants.ALL.size(), "variants per type: 7 linear, 2 "
                + "lm_head + log-softmax, 7 dense expert, 1 2:4 packed, 2 2:4 pre-tiled, 1 128:2:8");
    }

    /** What each setting runs, in the tuner's order: the choices CudaBackend made before variants were data. */
    @Test
    void eachSettingRunsItsFamilyInTheTunersOrder() {
        for (HalfType type : HalfType.values()) {
            String t = type.spelling;
            String[][] denseFamilies = {{"linear_" + t, "LINEAR"}, {"experts_" + t + "_gate_up", "EXPERTS"}};
            for (String[] dense : denseFamilies) {
                Family plain = Family.valueOf(dense[1]);
                Family tiled = Family.valueOf(dense[1] + "_TILED");
                String g = dense[0];
                assertChoice(plain, type, Kernels.TUNED, g + "_sm90", g + "_sm90_n128", g);
                assertChoice(plain, type, Kernels.WGMMA, g + "_sm90");
                assertChoice(plain, type, Kernels.WGMMA_N128, g + "_sm90_n128");
                assertChoice(plain, type, Kernels.MMA_SYNC, g);
                assertChoice(plain, type, Kernels.WGMMA_WS, g + "_sm90");  // no warp-specialized kernel: WGMMA's
                assertChoice(plain, type, Kernels.WGMMA_PAIRED, g + "_sm90_n128");  // no paired one: WGMMA_N128's
                // _sm90w: pinned only until a GPU run shows it correct (KernelVariant.tunable)
                assertChoice(tiled, type, Kernels.TUNED, g + "_sm90t", g + "_sm90t_n128");
                assertChoice(tiled, type, Kernels.WGMMA, g + "_sm90t");
                assertChoice(tiled, type, Kernels.WGMMA_N128, g + "_sm90t_n128");
                assertChoice(tiled, type, Kernels.WGMMA_WS, g + "_sm90w");
                assertChoice(tiled, type, Kernels.WGMMA_PAIRED, g + "_sm90t2");
                assertChoice(tiled, type, Kernels.MMA_SYNC);  // never uploaded pre-tiled for mma.sync
            }
            String l = "lm_head_logsoftmax_" + t;  // the pre-tiled wgmma tiles only, as LINEAR_TILED
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.TUNED);  // pinned only until a GPU run shows them
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA, l + "_sm90t");
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA_N128, l + "_sm90t_n128");
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA_WS, l + "_sm90t");  // WGMMA's: no _sm90w
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.WGMMA_PAIRED, l + "_sm90t_n128");
            assertChoice(Family.LOGSOFTMAX_TILED, type, Kernels.MMA_SYNC);
            String g = "experts_" + t + "_gate_up";
            for (Kernels k : Kernels.values()) {
                assertChoice(Family.SPARSE24, type, k, g + "_sp24");
                assertChoice(Family.VECTOR_SPARSE, type, k, g + "_vnm_sm90");
            }
            assertChoice(Family.SPARSE24_TILED, type, Kernels.TUNED, g + "_sp24_sm90", g + "_sp24_sm90_n128");
            assertChoice(Family.SPARSE24_TILED, type, Kernels.WGMMA, g + "_sp24_sm90");
            assertChoice(Family.SPARSE24_TILED, type, Kernels.WGMMA_N128, g + "_sp24_sm90_n128");
            assertChoice(Family.SPARSE24_TILED, type, Kernels.WGMMA_WS, g + "_sp24_sm90");
            assertChoice(Family.SPARSE24_TILED, type, Kernels.WGMMA_PAIRED, g + "_sp24_sm90_n128");
        }
    }

    private static void assertChoice(Family family, HalfType type, Kernels kernels, String... expected) {
        assertEquals(List.of(expected), KernelVariants.of(family, type, kernels).stream().map(KernelVariant::name)
                .toList(), family + " " + type + " " + kernels);
        for (KernelVariant v : KernelVariants.of(family, type, kernels)) {
            assertEquals(type, v.type(), v.name());
        }
    }

    /** Every kernel within what each architecture that runs it gives a block. */
    @Test
    void sharedMemoryFitsEveryArchitectureThatRunsTheKernel() {
        Set<String> overSm86 = new TreeSet<>();
        for (KernelVariant v : KernelVariants.ALL) {
            assertTrue(v.sharedBytes() <= SM90_LIMIT, v.name() + ": " + v.sharedBytes() + " bytes > " + SM90_LIMIT);
            if (runsBeforeHopper(v)) {
                assertTrue(v.sharedBytes() <= SM80_LIMIT, v.name() + ": " + v.sharedBytes() + " bytes > " + SM80_LIMIT);
                if (v.sharedBytes() > SM86_LIMIT) {
                    overSm86.add(v.name());
                }
            }
        }
        assertEquals(new TreeSet<>(KNOWN_OVER_SM86), overSm86, "kernels of sm_80-89 over sm_86/89's 99 KB");
        // the fp32-input kernels fit every GPU; the half-input ones sm_80 and sm_90 (pick skips them where not); the
        // wgmma ones a Hopper
        for (AttentionKernel k : AttentionKernel.ALL) {
            int bytes = k.sharedBytes(k.headDimBound());
            int limit = switch (k.kind()) {
                case SM90 -> SM90_LIMIT;
                case HALF_INPUTS -> SM80_LIMIT;
                default -> SM86_LIMIT;
            };
            assertTrue(bytes <= limit, k.name() + ": " + bytes + " bytes > " + limit);
        }
    }

    /** mma.sync and mma.sp kernels (sm_80-89, and pinned on a Hopper); the wgmma ones and their layouts need sm_90a. */
    private static boolean runsBeforeHopper(KernelVariant v) {
        return v.pin() == Kernels.MMA_SYNC || v.family() == Family.SPARSE24;
    }

    /** Tiles that agree with the header: a wgmma variant's shared memory is its own tile's; work items fit blocks. */
    @Test
    void launchGeometryAgreesWithTheHeader() {
        for (KernelVariant v : KernelVariants.ALL) {
            if (v.family() == Family.LINEAR || v.family() == Family.EXPERTS) {
                if (v.pin() != Kernels.MMA_SYNC) {
                    assertEquals(GEMM_SM90_SHARED_BYTES(v.rowTile()), v.sharedBytes(), v.name());
                }
            } else if (v.pin() == Kernels.WGMMA_PAIRED) {  // fewer stages: two blocks share an SM's 228 KB
                assertEquals(GEMM_SM90_PAIRED_SHARED_BYTES, v.sharedBytes(), v.name());
                assertTrue(2 * v.sharedBytes() <= 228 * 1024 - 2 * 1024, v.name() + ": two blocks per SM");
            } else if (v.family() == Family.LINEAR_TILED || v.family() == Family.EXPERTS_TILED
                    || v.family() == Family.LOGSOFTMAX_TILED) {
                assertEquals(GEMM_SM90_TILED_SHARED_BYTES(v.rowTile()), v.sharedBytes(), v.name());
            }
        }
        // one work list serves every grouped family; the calibration download reads work items of that size
        assertEquals(BM, SP_TOKENS, "token rows of the dense and sparse expert blocks");
        assertEquals(BM, ExpertIntermediate.ROWS_PER_ITEM);
        assertEquals(S90_BK, ExpertIntermediate.STAGE_COLUMNS);
        // lm_head chunks start on whole blocks of a pre-tiled weight
        assertEquals(0, CudaLogProbs.DETERMINISTIC_LOGITS_CHUNK % S90_W_BLOCK_ROWS);
        // the 2:4 pre-tiling writes 256-row tiles as whole 128-row blocks
        assertEquals(0, SP_ROWS % SP9_HALF_ROWS);
    }

    /**
     * Each head size up to 256 (a multiple of 8) finds the smallest kernel that takes it: the half-input kernels at
     * 64, 128 and 256 where their shared memory fits the GPU (on sm_86/89's 99 KB only 64), the wgmma ones among them
     * where the backend runs wgmma (a Hopper's 227 KB), tensor cores with fp32 inputs otherwise up to 128, fp32
     * beyond and without tensor cores.
     */
    @Test
    void attentionKernelsCoverEveryHeadSize() {
        for (HalfType type : HalfType.values()) {
            for (int limit : new int[] {SM90_LIMIT, SM80_LIMIT, SM86_LIMIT}) {
                for (boolean sm90 : new boolean[] {false, true}) {
                    for (int d = 8; d <= 256; d += 8) {
                        String what = type + " head_dim " + d + ", " + limit + " bytes of shared memory"
                                + (sm90 ? ", wgmma" : "");
                        int bound = d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : 256;
                        boolean half = (d == 64 || d == 128 || d == 256) && (limit != SM86_LIMIT || d == 64);
                        int size = d;
                        boolean wgmma = sm90 && AttentionKernel.ALL.stream().anyMatch(k -> k.type() == type
                                && k.kind() == AttentionKernel.Kind.SM90 && k.headDimBound() == size
                                && k.sharedBytes(size) <= limit);
                        assertEquals(sm90 && half && limit == SM90_LIMIT, wgmma && limit == SM90_LIMIT, what
                                + ": a Hopper takes every wgmma kernel");
                        AttentionKernel tc = AttentionKernel.pick(type, true, sm90, d, limit);
                        AttentionKernel.Kind kind = wgmma ? AttentionKernel.Kind.SM90
                                : half ? AttentionKernel.Kind.HALF_INPUTS
                                : d <= 128 ? AttentionKernel.Kind.TENSOR_CORES : AttentionKernel.Kind.F32;
                        assertEquals(kind, tc.kind(), what);
                        assertEquals(kind == AttentionKernel.Kind.F32 ? null : type, tc.type(), what);
                        assertEquals(bound, tc.headDimBound(), what);
                        assertEquals(half, tc.halfInputs(), what);
                        assertTrue(tc.sharedBytes(d) <= limit, what);
                        AttentionKernel f32 = AttentionKernel.pick(type, false, sm90, d, limit);
                        assertEquals(AttentionKernel.Kind.F32, f32.kind(), what);
                        assertEquals(bound, f32.headDimBound(), what);
                    }
                }
            }
        }
    }

    /**
     * The half-input kernels of both families take the same tile list (one per forward, whichever runs): FA_ROWS
     * query rows a block; the wgmma ones are a producer and two consumer warpgroups of 64 rows.
     */
    @Test
    void halfInputKernelsShareOneTileList() {
        int sm90 = 0;
        for (AttentionKernel k : AttentionKernel.ALL) {
            if (k.halfInputs()) {
                assertEquals(FA_ROWS, k.rows(), k.name());
            }
            if (k.kind() == AttentionKernel.Kind.SM90) {
                sm90++;
                assertEquals(3 * 128, FA90_THREADS);
                assertEquals(FA90_THREADS, k.threads(), k.name());
                assertEquals(2 * 64, k.rows(), k.name() + ": two consumer warpgroups of 64 rows");
                assertTrue(k.name().startsWith("attention_sm90_" + k.type().spelling + "_d"), k.name());
            }
        }
        assertEquals(2 * 3, sm90, "wgmma attention kernels: bf16 and fp16 at head sizes 64, 128, 256");
    }

    /** -Dmoescore.attention / MOESCORE_ATTENTION: auto (or unset), sm90 or fa; anything else is refused, naming the
     * option. */
    @Test
    void attentionOptionReadsAutoSm90AndFaOnly() {
        assertEquals(KernelChoice.Attention.AUTO, KernelChoice.attention(null));
        assertEquals(KernelChoice.Attention.AUTO, KernelChoice.attention(""));
        assertEquals(KernelChoice.Attention.AUTO, KernelChoice.attention("auto"));
        assertEquals(KernelChoice.Attention.SM90, KernelChoice.attention("sm90"));
        assertEquals(KernelChoice.Attention.FA, KernelChoice.attention(" fa "));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> KernelChoice.attention("sm80"));
        assertTrue(e.getMessage().contains("moescore.attention") && e.getMessage().contains("MOESCORE_ATTENTION")
                && e.getMessage().contains("sm80"), e.getMessage());
    }

    /** The half-input kernels' tiles: every query row in exactly one tile, longest key range first. */
    @Test
    void attentionTilesCoverEveryRowLongestFirst() {
        long seed = System.nanoTime();
        System.out.println("attentionTilesCoverEveryRowLongestFirst seed " + seed);
        Random random = new Random(seed);
        for (int window : new int[] {0, 100}) {
            int[] offsets = new int[12];
            for (int s = 1; s < offsets.length; s++) {
                offsets[s] = offsets[s - 1] + 1 + random.nextInt(700);
            }
            int rows = 128;
            int[] tiles = AttentionTiles.build(offsets, rows, window);
            int[] covered = new int[offsets[offsets.length - 1]];
            int previous = Integer.MAX_VALUE;
            for (int i = 0; i < tiles.length; i += 3) {
                int start = tiles[i];
                int end = tiles[i + 1];
                int q0 = tiles[i + 2];
                assertTrue(Arrays.binarySearch(offsets, start) >= 0 && start < end, "tile " + i / 3);
                assertEquals(offsets[Arrays.binarySearch(offsets, start) + 1], end, "tile " + i / 3);
                assertTrue(q0 >= start && q0 < end && (q0 - start) % rows == 0, "tile " + i / 3);
                for (int r = q0; r < Math.min(q0 + rows, end); r++) {
                    covered[r]++;
                }
                int keys = Math.min(q0 + rows, end) - (window > 0 ? Math.max(start, q0 - window + 1) : start);
                assertTrue(keys <= previous, "tile " + i / 3 + " has more keys than the one before it (seed " + seed + ")");
                previous = keys;
            }
            for (int r = 0; r < covered.length; r++) {
                assertEquals(1, covered[r], "query row " + r + " (seed " + seed + ")");
            }
        }
    }

    /**
     * Every kernel the backend launches is in the fatbin: the table's kernels and pairs, the attention kernels, the
     * per-type kernels, and each name launched literally in this package. Skipped in builds without nvcc.
     */
    @Test
    void everyLaunchedKernelIsInTheFatbin() throws IOException {
        String fatbin;
        try (InputStream in = GpuRuntime.class.getResourceAsStream(GpuRuntime.KERNELS_RESOURCE)) {
            assumeTrue(in != null, "this build has no fatbin (no nvcc): skipping");
            fatbin = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
        Set<String> names = new TreeSet<>();
        for (KernelVariant v : KernelVariants.ALL) {
            names.add(v.name());
            if (v.pair() != null) {
                names.add(v.pair());
            }
        }
        AttentionKernel.ALL.forEach(k -> names.add(k.name()));
        for (HalfType t : HalfType.values()) {
            names.add(t.embedKernel);
            names.add(t.toHalfKernel);
            names.add(t.toPartsKernel);
        }
        Pattern literal = Pattern.compile("launch\\(\"([A-Za-z0-9_]+)\"");
        int literals = 0;
        try (Stream<Path> sources = Files.list(Path.of("src/main/java/io/moescore/backend/cuda"))) {
            for (Path f : sources.sorted().toList()) {
                Matcher m = literal.matcher(Files.readString(f));
                while (m.find()) {
                    names.add(m.group(1));
                    literals++;
                }
            }
        }
        assertTrue(literals >= 15, "found " + literals + " literal launches: is the pattern stale?");
        List<String> missing = new ArrayList<>();
        for (String name : names) {
            if (!fatbin.contains(name + "\0")) {  // symbol names are NUL-terminated in the cubins
                missing.add(name);
            }
        }
        assertEquals(List.of(), missing, "kernels launched but absent from the fatbin (" + names.size() + " checked)");
        assertTrue(!fatbin.contains("no_such_kernel_xyz\0"), "the search finds only what is there");
    }
}
