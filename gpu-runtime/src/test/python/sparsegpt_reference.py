"""SparseGPT 2:4 reference (Frantar & Alistarh 2023), numpy fp64, written after the structure of the public
implementation (IST-DASLab/sparsegpt, sparsegpt.py, SparseGPT.fasterprune with prunen=2, prunem=4), and the
fixture SparseGptTest holds the Java solver against.

    python3 gpu-runtime/src/test/python/sparsegpt_reference.py   # writes src/test/resources/sparsegpt/fixture.json
"""
import json
import pathlib

import numpy as np


def sparsegpt_24(W, H, blocksize=128, percdamp=0.01, prunen=2, prunem=4):
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    columns = W.shape[1]
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(columns), np.arange(columns)] += damp
    L = np.linalg.cholesky(H)
    Linv = np.linalg.inv(L)
    Hinv = np.linalg.cholesky(Linv.T @ Linv).T   # cholesky_inverse, then the upper factor
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].copy()
        Q1 = np.zeros_like(W1)
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        mask1 = np.zeros(W1.shape, dtype=bool)
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if i % prunem == 0:
                tmp = W1[:, i:i + prunem] ** 2 / (np.diag(Hinv1)[i:i + prunem].reshape((1, -1))) ** 2
                smallest = np.argsort(tmp, axis=1, kind="stable")[:, :prunen]
                np.put_along_axis(mask1, i + smallest, True, axis=1)
            q = w.copy()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:])
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W


def main():
    rng = np.random.default_rng(20230102)
    rows, cols, tokens = 16, 160, 200   # 160 columns: two blocks of 128, the second partial
    W = rng.standard_normal((rows, cols)).astype(np.float32)
    # correlated features with uneven scales, as real activations have; column 37 never fires (a dead column)
    mix = rng.standard_normal((cols, cols)) * 0.3 + np.eye(cols)
    X = (rng.standard_normal((tokens, cols)) @ mix * rng.uniform(0.1, 3.0, cols)).astype(np.float32)
    X[:, 37] = 0
    H = X.astype(np.float64).T @ X.astype(np.float64)
    pruned = sparsegpt_24(W, H)
    out = pathlib.Path(__file__).resolve().parents[1] / "resources" / "sparsegpt" / "fixture.json"
    out.write_text(json.dumps({
        "source": "gpu-runtime/src/test/python/sparsegpt_reference.py",
        "rows": rows, "cols": cols, "tokens": tokens,
        "w": W.ravel().tolist(), "x": X.ravel().tolist(), "hessian": H.ravel().tolist(),
        "expected": pruned.ravel().tolist(),
    }))
    print("wrote", out, "zeros per group of 4 (min):", (pruned.reshape(rows, -1, 4) == 0).sum(-1).min())


if __name__ == "__main__":
    main()
