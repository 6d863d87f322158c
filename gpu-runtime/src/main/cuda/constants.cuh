// Tile sizes, stage counts, thread counts and shared-memory sizes that the host needs too: the one place both
// sides read them. The kernels include this file (through common.cuh); the Maven build turns every #define below
// into a Java constant (gen_constants.sh -> io.moescore.backend.cuda.KernelConstants, a static method for a
// define with parameters), so the CUDA backend's grids, block sizes, shared-memory sizes and buffer sizes follow
// a change here at the next build. What may stand here: #define NAME EXPR or #define NAME(ARGS) EXPR on one line,
// EXPR an integer expression of decimal numbers, the parameters and names defined above it (+ - * / % and
// parentheses). The generator refuses anything else. Derived sizes are derived here, once.
#pragma once

// ---- dense GEMMs, mma.sync (gemm.cu) ----
// Block tile: BM activation rows x BN weight rows, K advancing BK at a time.
#define BM 128
#define BN 256
#define BK 32
// Shared row stride in 16-bit values: 80 bytes, so ldmatrix's 8 rows hit 8 different bank groups.
#define LDS (BK + 8)
#define GEMM_THREADS 256
#define GEMM_STAGES 3
// Dynamic shared memory of one block: GEMM_STAGES x (A tile + W tile), 16-bit values.
#define GEMM_SHARED_BYTES (GEMM_STAGES * (BM + BN) * LDS * 2)

// The fp32 GEMM of small weights (routers, gates: linear_small_f32): SMALL_TILE rows x SMALL_TILE outputs per
// block of SMALL_THREADS (16 x 16 threads, 4 x 4 outputs each), K in slices of SMALL_K.
#define SMALL_TILE 64
#define SMALL_K 32
#define SMALL_THREADS 256

// ---- dense GEMMs, wgmma (gemm_sm90.cu) ----
// The narrow tile of the _n128 kernels (BNT 128; the wide ones use BN): twice the blocks, for narrow outputs.
#define BN_N128 128
#define S90_BK 64
#define S90_STAGES 4
// One stage of activation rows: BM rows of 64 16-bit values (128 bytes).
#define S90_A_BYTES (BM * 128)
// STAGES slots of activation rows and BNT weight rows; + 1024: the dynamic shared window is rounded up to the
// 1024-byte alignment the swizzle pattern needs.
#define GEMM_SM90_STAGES_SHARED_BYTES(BNT, STAGES) ((STAGES) * (S90_A_BYTES + (BNT) * 128) + 1024)
#define GEMM_SM90_SHARED_BYTES(BNT) GEMM_SM90_STAGES_SHARED_BYTES(BNT, S90_STAGES)
// Pre-tiled dense weights (tile_dense_sm90): blocks of S90_W_BLOCK_ROWS rows x S90_BK k, 128-byte rows.
#define S90_W_BLOCK_ROWS 128
#define S90_W_BLOCK_BYTES (S90_W_BLOCK_ROWS * 128)
// + 64: the mbarriers of the kernels that read pre-tiled weights (_sm90t).
#define GEMM_SM90_TILED_SHARED_BYTES(BNT) (GEMM_SM90_SHARED_BYTES(BNT) + 64)
// The paired kernels over pre-tiled weights (_sm90t2): 128 x 128 tiles in S90_PAIRED_STAGES stages, so that two
// blocks share an SM (2 x 97 KB of its 228 KB; 122 registers a thread, 2 x 256 threads within its 64K) and one
// block's epilogue runs beside the other's main loop.
#define S90_PAIRED_STAGES 3
#define GEMM_SM90_PAIRED_SHARED_BYTES (GEMM_SM90_STAGES_SHARED_BYTES(BN_N128, S90_PAIRED_STAGES) + 64)
// The warp-specialized kernels over pre-tiled weights (_sm90w): a producer warpgroup (bulk copies, gathered rows)
// and two consumer warpgroups of 64 rows; the _sm90t kernels' shared memory, its 64 bytes holding a "full" and an
// "empty" mbarrier per stage.
#define GEMM_WS_THREADS 384

// ---- 2:4 experts, mma.sp (sparse24.cu) ----
#define SP_ROWS 256
#define SP_TOKENS 128
#define SP_K 64
// Compressed values per shared row (+8 values of padding against bank conflicts), token values per shared row.
#define SP_LDV (SP_K / 2 + 8)
#define SP_LDX (SP_K + 8)
#define SP_THREADS 256
#define SP_STAGES 3
// sizeof(SpShared): SP_STAGES x (SP_ROWS rows of SP_LDV 16-bit values, their 2 metadata words, SP_TOKENS token
// rows of SP_LDX 16-bit values).
#define SPARSE_SHARED_BYTES (SP_STAGES * (SP_ROWS * SP_LDV * 2 + SP_ROWS * 2 * 4 + SP_TOKENS * SP_LDX * 2))

// ---- 2:4 experts, wgmma.sp over pre-tiled weights (sparse24_sm90.cu) ----
#define SP9_K 128
#define SP9_STAGES 3
// A stage's token tile: SP_TOKENS rows of 128 16-bit values.
#define SP9_B_BYTES (SP_TOKENS * 256)
// A pre-tiled block of SP9_HALF_ROWS weight rows: values (128 bytes a row), then metadata (16 bytes a row).
#define SP9_HALF_ROWS 128
#define SP9_HALF_BYTES (SP9_HALF_ROWS * 128 + SP9_HALF_ROWS * 16)
#define SP9_W_BYTES (2 * SP9_HALF_BYTES)
#define SP9_STAGE_BYTES (SP9_W_BYTES + SP9_B_BYTES)
// + 1024 alignment, + 64 mbarriers
#define SPARSE_SM90_SHARED_BYTES (SP9_STAGES * SP9_STAGE_BYTES + 1024 + 64)

// ---- 128:2:8 experts and 2:4 experts in 128-row tiles, wgmma.sp (vnm_sm90.cu) ----
#define VN_ROWS 128
#define VN_STAGES 4
// A pre-tiled weight stage: VN_ROWS condensed rows of values, metadata and one keep byte.
#define VN_W_BYTES (VN_ROWS * 128 + VN_ROWS * 16 + VN_ROWS)
// Tokens and weights of a stage, rounded up to 1024 bytes.
#define VN_STAGE_BYTES (((SP9_B_BYTES + VN_W_BYTES) + 1023) / 1024 * 1024)
// + 1024 alignment, + 64 mbarriers
#define VN_SHARED_BYTES (VN_STAGES * VN_STAGE_BYTES + 1024 + 64)

// ---- attention, fp32 (attention.cu) ----
// Query rows per block (two threads each), keys per shared-memory tile.
#define ATT_ROWS 64
#define ATT_KEYS 32
#define ATTENTION_F32_THREADS (2 * ATT_ROWS)
// A key tile and a value tile of HEAD_DIM fp32 columns.
#define ATTENTION_F32_SHARED_BYTES(HEAD_DIM) (2 * ATT_KEYS * (HEAD_DIM) * 4)

// ---- attention on tensor cores (attention_tc.cu) ----
#define TC_ROWS 64
#define TC_KEYS 64
// A warp per 16 query rows.
#define ATTENTION_TC_THREADS (TC_ROWS / 16 * 32)
// Q, K and V tiles of D 16-bit values a row, each row padded by 8 values (16 bytes).
#define ATTENTION_TC_SHARED_BYTES(D) ((TC_ROWS + 2 * TC_KEYS) * ((D) + 8) * 2)

// ---- attention on tensor cores over half-precision q, k, v (attention_fa.cu) ----
// Query rows per block, every head size (so one tile list serves every layer of a forward).
#define FA_ROWS 128
// Head dim 128: 4 warps of 32 query rows, 64 keys per K/V tile (the fastest of 7 shapes on an H100: NOTES).
#define FA_WARPS 4
#define FA_KEYS 64
// Head dim 64: 8 warps of 16 query rows, 64 keys per tile (1.09x the 4-warp shape at 512-token sequences).
#define FA_WARPS_D64 8
// Head dim 256: 8 warps of 16 query rows, 32 keys per K/V tile (the registers of 32 rows do not fit).
#define FA_WARPS_D256 8
#define FA_KEYS_D256 32
// Q tile + two K and two V tiles of D 16-bit values a row, each row padded by 8 values (16 bytes).
#define ATTENTION_FA_SHARED_BYTES(D, KEYS) ((FA_ROWS + 4 * (KEYS)) * ((D) + 8) * 2)

// ---- the same attention on Hopper, FlashAttention-3's structure (attention_sm90.cu, sm_90a) ----
// A block: 1 producer warpgroup (K/V ring) + 2 consumer warpgroups of 64 query rows each = FA_ROWS query rows,
// so the half-input kernels share one tile list.
#define FA90_THREADS 384
// Keys per K/V tile and ring stages: head dims 64 and 128 128-key tiles, 256 64-key tiles; 3 stages at 64.
#define FA90_KEYS 128
#define FA90_KEYS_D256 64
#define FA90_STAGES 2
#define FA90_STAGES_D64 3
// The Q tile and STAGES K and V tiles of D 16-bit values a row (128-byte swizzled column blocks, no padding),
// + 1024: the window aligned to the swizzle's 1024 bytes, + 128: the ring's mbarriers.
#define ATTENTION_FA90_SHARED_BYTES(D, KEYS, STAGES) ((FA_ROWS + 2 * (STAGES) * (KEYS)) * (D) * 2 + 1024 + 128)

// ---- routing (router.cu, router_variants.cu) ----
// The most experts per token of the ranking routers (top-k, top-p's MAXK, batch-top-k's K): per-thread arrays.
// The threshold gates take any number, up to all E (rows E wide; the deterministic combine sorts a token's
// experts in k ints of dynamic shared memory, gemm.cu).
#define ROUTER_MAX_K 16
// Tokens (one warp each) per block of the per-token router kernels.
#define ROUTER_WARPS 8
#define ROUTER_THREADS (ROUTER_WARPS * 32)
// Tokens per block of the list-building kernels (route_count, route_fill: one block per expert and chunk of this many
// tokens), and their threads.
#define ROUTE_CHUNK 1024
#define ROUTE_THREADS 256
// route_offsets' block: it scans the experts' chunk counts this many at a time.
#define ROUTE_SCAN_THREADS 1024
// drop-experts' removed experts travel as a kernel argument (no copy to the device): a bit per expert in this many
// 64-bit words, so layers of up to 64 x ROUTER_DROP_WORDS experts.
#define ROUTER_DROP_WORDS 8
// The threshold gates' probabilities (router_variants.cu's gate argument; ThresholdRouter.Gate on the host).
#define GATE_SIGMOID 0
#define GATE_SOFTMAX 1
#define GATE_SPARSEMAX 2
#define GATE_QUADRATIC 3
#define GATE_PIONEER 4

// ---- the autotuner (KernelTuner) ----
// How long tuner_hold keeps the stream busy before a timed batch (ns): longer than the host takes to enqueue the
// batch, so the events time the kernels back to back, not the host's enqueueing (cuBLASLt's calls cost tens of us).
#define TUNER_HOLD_NS 2000000
// Launches per timed batch, and timed batches per candidate (the median is kept; candidates take turns).
#define TUNER_BATCH 4
#define TUNER_ROUNDS 3
