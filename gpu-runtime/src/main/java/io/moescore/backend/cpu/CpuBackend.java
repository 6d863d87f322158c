package io.moescore.backend.cpu;

import io.moescore.backend.AttentionHeads;
import io.moescore.backend.Backend;
import io.moescore.backend.BiasedExperts;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.TopK;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.MemoryBudget;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.model.Rope;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The reference backend: plain fp32 Java, multithreaded over rows. Every other backend is tested against it.
 * Results do not depend on the thread count or on what else is in the batch: each output element is computed
 * by one thread in a fixed order.
 */
public final class CpuBackend implements Backend {
    /** Output rows of a weight processed together, so they stay in cache while every token passes by. */
    private static final int ROW_BLOCK = 16;
    /** Tokens processed together against a block of weight rows. */
    private static final int TOKEN_BLOCK = 32;

    /** ForkJoinPool's limit (beyond it, its constructor throws without a message). */
    public static final int MAX_THREADS = 32767;

    private final ForkJoinPool pool;

    public CpuBackend(int threads) {
        if (threads < 1 || threads > MAX_THREADS) {
            throw new IllegalArgumentException("threads must be between 1 and " + MAX_THREADS + ", got " + threads);
        }
        pool = new ForkJoinPool(threads);
    }

    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    @Override
    public String deviceName() {
        return "CPU (" + pool.getParallelism() + " threads)";
    }

    /**
     * Every weight as fp32 on the heap, sparse experts decompressed: the JVM's maximum heap bounds the model, shared
     * by every logical device of an engine over several.
     */
    @Override
    public MemoryBudget memoryBudget() {
        return new MemoryBudget(Runtime.getRuntime().maxMemory(), Float.BYTES, false, "the JVM heap (-Xmx)", true);
    }

    @Override
    public Tensor weight(WeightSlice s) {
        return new CpuTensor(s.rows(), s.cols(), s.tensor().toFloats(s.firstElement(), s.rows() * s.cols()));
    }

    @Override
    public ExpertWeights expertWeights(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
        CpuTensor[] g = new CpuTensor[gate.length];
        CpuTensor[] u = new CpuTensor[gate.length];
        CpuTensor[] d = new CpuTensor[gate.length];
        for (int e = 0; e < gate.length; e++) {
            g[e] = (CpuTensor) weight(gate[e]);
            u[e] = (CpuTensor) weight(up[e]);
            d[e] = (CpuTensor) weight(down[e]);
        }
        return new CpuExperts(g, u, d);
    }

    @Override
    public ExpertWeights biasedExpertWeights(BiasedExperts w) {
        int n = w.numExperts();
        CpuTensor[][] m = new CpuTensor[3][n];
        for (int e = 0; e < n; e++) {
            m[0][e] = new CpuTensor(w.ffn(), w.hidden(), w.gate()[e]);
            m[1][e] = new CpuTensor(w.ffn(), w.hidden(), w.up()[e]);
            m[2][e] = new CpuTensor(w.hidden(), w.ffn(), w.down()[e]);
        }
        return new CpuExperts(m[0], m[1], m[2], w.gateBias(), w.upBias(), w.downBias(), w.activation());
    }

    @Override
    public ExpertWeights sparseExpertWeights(Sparse24.Packed[] gate, Sparse24.Packed[] up, Sparse24.Packed[] down) {
        return decompressed(gate, up, down, p -> new CpuTensor(p.rows(), p.cols(), Sparse24.decompress(p)));
    }

    /** Decompressed straight, not through the 2:4 form the default goes by. */
    @Override
    public ExpertWeights vectorSparseExpertWeights(VectorSparse.Packed[] gate, VectorSparse.Packed[] up,
                                                   VectorSparse.Packed[] down) {
        return decompressed(gate, up, down, p -> new CpuTensor(p.rows(), p.cols(), VectorSparse.decompress(p)));
    }

    /** The CPU runs sparse experts as the dense matrices they stand for. */
    private static <P> ExpertWeights decompressed(P[] gate, P[] up, P[] down, Function<P, CpuTensor> dense) {
        CpuTensor[][] out = new CpuTensor[3][gate.length];
        List<P[]> all = List.of(gate, up, down);
        for (int w = 0; w < 3; w++) {
            for (int e = 0; e < gate.length; e++) {
                out[w][e] = dense.apply(all.get(w)[e]);
            }
        }
        return new CpuExperts(out[0], out[1], out[2]);
    }

    @Override
    public Tensor activation(int rows, int cols) {
        return new CpuTensor(rows, cols, new float[Math.multiplyExact(rows, cols)]);
    }

    @Override
    public Tensor activation(float[] values, int rows, int cols) {
        return new CpuTensor(rows, cols, values.clone());
    }

    @Override
    public IntTensor ints(int[] values) {
        return new CpuTensor.Ints(values.clone());
    }

    @Override
    public float[] toHost(Tensor t) {
        return CpuTensor.of(t).data.clone();
    }

    @Override
    public void embed(Tensor table, IntTensor ids, Tensor out) {
        CpuTensor tab = CpuTensor.of(table);
        CpuTensor o = CpuTensor.of(out);
        int[] id = CpuTensor.Ints.of(ids);
        int h = tab.cols;
        for (int t = 0; t < id.length; t++) {
            System.arraycopy(tab.data, id[t] * h, o.data, t * h, h);
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, int groupSize, float eps, Tensor out) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor o = CpuTensor.of(out);
        float[] w = CpuTensor.of(weight).data;
        if (w.length != groupSize || in.cols % groupSize != 0) {
            throw new IllegalArgumentException("rmsNorm over groups of " + groupSize + " of " + in.cols
                    + " columns with " + w.length + " weights");
        }
        int groups = in.rows * (in.cols / groupSize);
        parallelFor(groups, g -> {
            int base = g * groupSize;
            float sumSquares = 0;
            for (int i = 0; i < groupSize; i++) {
                float v = in.data[base + i];
                sumSquares += v * v;
            }
            float scale = (float) (1.0 / Math.sqrt(sumSquares / groupSize + eps));
            for (int i = 0; i < groupSize; i++) {
                o.data[base + i] = w[i] * (in.data[base + i] * scale);
            }
        });
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor out) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor weights = CpuTensor.of(w);
        CpuTensor o = CpuTensor.of(out);
        if (weights.cols != in.cols || o.rows != in.rows || o.cols != weights.rows) {
            throw new IllegalArgumentException("linear: x " + in.rows + "x" + in.cols + ", w " + weights.rows + "x"
                    + weights.cols + ", out " + o.rows + "x" + o.cols);
        }
        float[] b = bias == null ? null : CpuTensor.of(bias).data;
        matmulTransposed(in.data, in.rows, null, weights, o.data, b);
    }

    /**
     * out[r][j] = dot(x[rowOf(r)], w[j]) (+ b[j]) for r < rows, where rowOf(r) = rowIndex[r] when rowIndex is
     * given (reading tokens by index, as the experts do) and r otherwise.
     */
    private void matmulTransposed(float[] x, int rows, int[] rowIndex, CpuTensor w, float[] out, float[] b) {
        int in = w.cols;
        int outDim = w.rows;
        int rowBlocks = (outDim + ROW_BLOCK - 1) / ROW_BLOCK;
        int tokenBlocks = (rows + TOKEN_BLOCK - 1) / TOKEN_BLOCK;
        parallelFor(rowBlocks * tokenBlocks, tile -> {
            int j0 = (tile % rowBlocks) * ROW_BLOCK;
            int r0 = (tile / rowBlocks) * TOKEN_BLOCK;
            int j1 = Math.min(j0 + ROW_BLOCK, outDim);
            int r1 = Math.min(r0 + TOKEN_BLOCK, rows);
            for (int r = r0; r < r1; r++) {
                int xBase = (rowIndex == null ? r : rowIndex[r]) * in;
                for (int j = j0; j < j1; j++) {
                    float d = dot(x, xBase, w.data, j * in, in);
                    out[r * outDim + j] = b == null ? d : d + b[j];
                }
            }
        });
    }

    /** Four partial sums: the JIT keeps them in registers and the order is fixed, so results are reproducible. */
    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float s0 = 0;
        float s1 = 0;
        float s2 = 0;
        float s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[aOff + i] * b[bOff + i];
            s1 += a[aOff + i + 1] * b[bOff + i + 1];
            s2 += a[aOff + i + 2] * b[bOff + i + 2];
            s3 += a[aOff + i + 3] * b[bOff + i + 3];
        }
        for (; i < n; i++) {
            s0 += a[aOff + i] * b[bOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    @Override
    public void clamp(Tensor x, float limit) {
        float[] d = CpuTensor.of(x).data;
        for (int i = 0; i < d.length; i++) {
            d[i] = Math.max(-limit, Math.min(limit, d[i]));
        }
    }

    @Override
    public void scale(Tensor x, float factor) {
        float[] d = CpuTensor.of(x).data;
        for (int i = 0; i < d.length; i++) {
            d[i] *= factor;
        }
    }

    @Override
    public void copyColumns(Tensor src, ColumnBlocks from, Tensor dst, ColumnBlocks to) {
        CpuTensor s = CpuTensor.of(src);
        CpuTensor d = CpuTensor.of(dst);
        if (from.count() != to.count() || from.width() != to.width() || s.rows != d.rows || from.end() > s.cols
                || to.end() > d.cols) {
            throw new IllegalArgumentException("copyColumns: " + from + " of " + s.rows + "x" + s.cols + " into "
                    + to + " of " + d.rows + "x" + d.cols);
        }
        parallelFor(s.rows, r -> {
            for (int b = 0; b < from.count(); b++) {
                System.arraycopy(s.data, r * s.cols + from.start(b), d.data, r * d.cols + to.start(b), from.width());
            }
        });
    }

    @Override
    public void rope(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions) {
        CpuTensor t = CpuTensor.of(x);
        int[] pos = CpuTensor.Ints.of(positions);
        int dim = rope.rotaryDim();
        if (blocks.width() != dim || blocks.end() > t.cols || (blocks.count() > 1 && blocks.stride() < dim)) {
            throw new IllegalArgumentException("rope over " + blocks + " of " + t.cols + " columns with "
                    + rope.describe());
        }
        int half = dim / 2;
        // inverse frequencies as transformers computes them, in fp32 (Rope)
        float[] invFreq = rope.inverseFrequencies();
        float factor = rope.attentionFactor();
        boolean interleaved = rope.interleaved();
        parallelFor(t.rows, r -> {
            float p = pos[r];
            for (int b = 0; b < blocks.count(); b++) {
                int base = r * t.cols + blocks.start(b);
                for (int i = 0; i < half; i++) {
                    float angle = p * invFreq[i];
                    float cos = (float) Math.cos(angle) * factor;
                    float sin = (float) Math.sin(angle) * factor;
                    // pairs (i, i + d/2) as transformers' rotate_half, or (2i, 2i+1): rope_interleave's pairs,
                    // which transformers gathers to the first and second half before rotating (the same q.k)
                    int ia = interleaved ? base + 2 * i : base + i;
                    int ib = interleaved ? base + 2 * i + 1 : base + i + half;
                    float a = t.data[ia];
                    float c = t.data[ib];
                    t.data[ia] = a * cos - c * sin;
                    t.data[ib] = c * cos + a * sin;
                }
            }
        });
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window,
                          Tensor out) {
        attention(q, k, v, seqOffsets, heads, window, null, out);
    }

    /** Sinks: m = max(max_j s_j, sink); p_j = exp(s_j - m) / (sum_i exp(s_i - m) + exp(sink - m)). */
    @Override
    public void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window,
                          Tensor sinks, Tensor out) {
        float[] sink = sinks == null ? null : CpuTensor.of(sinks).data;
        CpuTensor qt = CpuTensor.of(q);
        CpuTensor kt = CpuTensor.of(k);
        CpuTensor vt = CpuTensor.of(v);
        CpuTensor o = CpuTensor.of(out);
        int numHeads = heads.numHeads();
        int qkDim = heads.qkHeadDim();
        int vDim = heads.vHeadDim();
        if (qt.cols != numHeads * qkDim || kt.cols != heads.numKvHeads() * qkDim
                || vt.cols != heads.numKvHeads() * vDim || o.cols != numHeads * vDim) {
            throw new IllegalArgumentException("attention " + heads + ": q " + qt.cols + ", k " + kt.cols + ", v "
                    + vt.cols + ", out " + o.cols + " columns");
        }
        int[] offsets = CpuTensor.Ints.of(seqOffsets);
        int rows = qt.rows;
        int[] seqStart = new int[rows];
        for (int s = 0; s + 1 < offsets.length; s++) {
            Arrays.fill(seqStart, offsets[s], offsets[s + 1], offsets[s]);
        }
        int group = numHeads / heads.numKvHeads();
        float scale = (float) heads.scale();
        parallelFor(rows * numHeads, item -> {
            int row = item / numHeads;
            int head = item % numHeads;
            int kvHead = head / group;
            int first = window > 0 ? Math.max(seqStart[row], row - window + 1) : seqStart[row];
            int qBase = row * qt.cols + head * qkDim;
            float[] scores = new float[row - first + 1];
            float max = Float.NEGATIVE_INFINITY;
            for (int j = first; j <= row; j++) {
                float s = dot(qt.data, qBase, kt.data, j * kt.cols + kvHead * qkDim, qkDim) * scale;
                scores[j - first] = s;
                max = Math.max(max, s);
            }
            if (sink != null) {
                max = Math.max(max, sink[head]);
            }
            float sum = sink == null ? 0 : (float) Math.exp(sink[head] - max);
            for (int j = 0; j < scores.length; j++) {
                scores[j] = (float) Math.exp(scores[j] - max);
                sum += scores[j];
            }
            int oBase = row * o.cols + head * vDim;
            Arrays.fill(o.data, oBase, oBase + vDim, 0f);
            for (int j = first; j <= row; j++) {
                float p = scores[j - first] / sum;
                int vBase = j * vt.cols + kvHead * vDim;
                for (int d = 0; d < vDim; d++) {
                    o.data[oBase + d] += p * vt.data[vBase + d];
                }
            }
        });
    }

    @Override
    public void addInPlace(Tensor acc, Tensor x) {
        float[] a = CpuTensor.of(acc).data;
        float[] b = CpuTensor.of(x).data;
        for (int i = 0; i < a.length; i++) {
            a[i] += b[i];
        }
    }

    @Override
    public ExpertRouting route(Tensor routerLogits, Router router) {
        CpuTensor logits = CpuTensor.of(routerLogits);
        return router.route(logits.data, logits.rows, logits.cols);
    }

    @Override
    public ExpertRouting route(Tensor routerLogits, Router router, int[] sequenceStarts) {
        CpuTensor logits = CpuTensor.of(routerLogits);
        return router.route(logits.data, logits.rows, logits.cols, sequenceStarts);
    }

    @Override
    public void experts(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out) {
        experts(x, routing, weights, out, null);
    }

    /** Every expert, reached or not (then with no rows), is shown to {@code seen} in expert order. */
    @Override
    public void experts(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out, ExpertInputObserver seen) {
        CpuExperts experts = (CpuExperts) weights;
        CpuTensor in = CpuTensor.of(x);
        CpuTensor o = CpuTensor.of(out);
        HostExpertRouting r = (HostExpertRouting) routing;
        int h = in.cols;
        // Each routing entry (expert, token) gets its expert's output in its own slot ...
        float[] perEntry = new float[r.tokens().length * h];
        for (int e = 0; e < r.numExperts(); e++) {
            int from = r.offsets()[e];
            int count = r.offsets()[e + 1] - from;
            if (count > 0) {
                int[] rows = Arrays.copyOfRange(r.tokens(), from, from + count);
                float[] y = swiglu(in.data, rows, count, experts, e, seen);
                System.arraycopy(y, 0, perEntry, from * h, count * h);
            } else if (seen != null) {
                seen.observe(e, in.data, new int[0], h, new float[0], experts.ffnSize());
            }
        }
        // ... then tokens sum their experts' outputs in expert order: the same order whatever the batch.
        Arrays.fill(o.data, 0f);
        for (int e = 0; e < r.numExperts(); e++) {
            int from = r.offsets()[e];
            int to = r.offsets()[e + 1];
            parallelFor(to - from, i -> {
                int slot = from + i;
                int outBase = r.tokens()[slot] * h;
                float gate = r.gates()[slot];
                for (int d = 0; d < h; d++) {
                    o.data[outBase + d] += gate * perEntry[slot * h + d];
                }
            });
        }
    }

    @Override
    public void ffn(Tensor x, ExpertWeights weights, Tensor out) {
        CpuTensor in = CpuTensor.of(x);
        float[] y = swiglu(in.data, null, in.rows, (CpuExperts) weights, 0, null);
        System.arraycopy(y, 0, CpuTensor.of(out).data, 0, y.length);
    }

    /**
     * down(silu(x gate^T) * (x up^T)) for the rows of x named by rows (all rows when null); gpt-oss's experts:
     * down(clampedSwiglu(x gate^T + gateBias, x up^T + upBias)) + downBias.
     */
    private float[] swiglu(float[] x, int[] rows, int count, CpuExperts w, int expert, ExpertInputObserver seen) {
        CpuTensor gate = w.gate()[expert];
        CpuTensor up = w.up()[expert];
        CpuTensor down = w.down()[expert];
        boolean biased = w.clamped() != null;
        int ffn = gate.rows;
        float[] g = new float[count * ffn];
        float[] u = new float[count * ffn];
        matmulTransposed(x, count, rows, gate, g, biased ? w.gateBias()[expert] : null);
        matmulTransposed(x, count, rows, up, u, biased ? w.upBias()[expert] : null);
        for (int i = 0; i < g.length; i++) {
            float a = g[i];
            g[i] = biased ? w.clamped().apply(a, u[i]) : a / (1f + (float) Math.exp(-a)) * u[i];
        }
        if (seen != null) {
            seen.observe(expert, x, rows, gate.cols, g, ffn);
        }
        float[] y = new float[count * down.rows];
        matmulTransposed(g, count, null, down, y, biased ? w.downBias()[expert] : null);
        return y;
    }

    @Override
    public void addSigmoidGated(Tensor acc, Tensor y, Tensor gateLogit) {
        CpuTensor a = CpuTensor.of(acc);
        float[] yd = CpuTensor.of(y).data;
        float[] g = CpuTensor.of(gateLogit).data;
        for (int r = 0; r < a.rows; r++) {
            float s = 1f / (1f + (float) Math.exp(-g[r]));
            for (int d = 0; d < a.cols; d++) {
                a.data[r * a.cols + d] += s * yd[r * a.cols + d];
            }
        }
    }

    @Override
    public LogProbs logProbs(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK,
                             float logitDivisor) {
        CpuTensor x = CpuTensor.of(hidden);
        CpuTensor w = CpuTensor.of(lmHead);
        int[] target = CpuTensor.Ints.of(targets);
        int vocab = w.rows;
        int h = x.cols;
        int[] topSlot = new int[x.rows];
        Arrays.fill(topSlot, -1);
        for (int i = 0; i < topRows.length; i++) {
            topSlot[topRows[i]] = i;
        }
        float[] result = new float[x.rows];
        int[][] top = new int[topRows.length][];
        parallelFor(x.rows, r -> {
            float[] logits = new float[vocab];
            float max = Float.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                logits[v] = dot(x.data, r * h, w.data, v * h, h) / logitDivisor;  // exact for a divisor of 1
                max = Math.max(max, logits[v]);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                sum += Math.exp(logits[v] - max);
            }
            double logSumExp = max + Math.log(sum);
            result[r] = target[r] < 0 ? Float.NaN : (float) (logits[target[r]] - logSumExp);
            if (topSlot[r] >= 0) {
                top[topSlot[r]] = TopK.indices(logits, 0, vocab, topK);
            }
        });
        return new LogProbs(result, top);
    }

    private void parallelFor(int n, IntConsumer body) {
        if (n <= 1 || pool.getParallelism() == 1) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
    }

    @Override
    public void close() {
        pool.shutdown();
    }
}
