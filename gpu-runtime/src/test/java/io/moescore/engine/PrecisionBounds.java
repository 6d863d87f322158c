package io.moescore.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A fixture's reference-precision.json (made by transformers on the GPU machine:
 * {@code gpu-runtime/src/test/python/make_precision_bounds.py}): per reference token position the smallest margin,
 * over the MoE layers, between the k-th and (k+1)-th router logit of the float32 reference, relative to
 * max(1, |k-th logit|), and how far transformers itself moves from its float32 reference in bf16 and fp16.
 *
 * <p>A position whose margin is under {@link #TIE} is a routing tie: the reference's own choice there follows the
 * last bits of its router product, and any other summation order, or a bf16/fp16 hidden state, may pick the other
 * expert without being wrong (the demo model's layer 0 has near-duplicate untrained experts). The reduced-precision
 * fixture checks leave those positions out, count them and print them; split-bf16 and the CPU leave out nothing.
 * 2^-6 is four bf16 ulps of the logit (bf16's relative spacing is 2^-8): a bf16 product of 2048 terms moves a logit
 * by a few ulps. A tie's effect also reaches later positions of its sequence through attention, so the checks also
 * allow as many tokens off by more than 2e-2 as transformers' own run at that precision has ({@link #overInTransformers}).
 */
record PrecisionBounds(List<double[]> margins, JsonNode drift) {
    static final double TIE = 0x1p-6;
    static final String FILE = "reference-precision.json";

    /** The fixture's file, or an error naming it and the command that makes it. */
    static PrecisionBounds read(Path model) throws IOException {
        Path file = model.resolve(FILE);
        if (!Files.exists(file)) {
            throw new IOException(file + " is missing: make it on the GPU machine with python3 "
                    + "gpu-runtime/src/test/python/make_precision_bounds.py " + model);
        }
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        List<double[]> margins = new ArrayList<>();
        for (JsonNode s : root.get("sequences")) {
            JsonNode m = s.get("routing_margin");
            double[] row = new double[m.size()];
            for (int i = 0; i < row.length; i++) {
                row[i] = m.get(i).asDouble();
            }
            margins.add(row);
        }
        return new PrecisionBounds(margins, root.get("drift"));
    }

    /** Tokens over 2e-2 from the float32 reference in transformers' own run at {@code precision} ("bf16", "fp16"). */
    int overInTransformers(String precision) {
        return drift.get(precision).get("over").asInt();
    }

    /** Transformers' own run at {@code precision}: worst error and tokens over 2e-2, for messages. */
    String transformers(String precision) {
        return "transformers " + precision + ": worst " + drift.get(precision).get("worst").asDouble() + ", "
                + overInTransformers(precision) + " of " + drift.get(precision).get("total").asInt() + " over 2e-2";
    }

    /** Whether the log-prob at {@code position} of {@code sequence} (predicting the next token) follows a tie. */
    boolean tie(int sequence, int position) {
        return margins.get(sequence)[position] < TIE;
    }
}
