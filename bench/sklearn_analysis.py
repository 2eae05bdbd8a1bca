#!/usr/bin/env python3
"""Peer side of bench/run_analysis.sh: makes the inputs (once) and times scikit-learn / NumPy.

Inputs, written to target/bench-data/ as .npy (float32 activations, as recordings are):
  acts_1000x9216.npy   1000 x 9216, AlexNet features.12-like (non-negative, low-rank + noise)
  conv1_64x290400.npy  64 x 290,400 (AlexNet conv1 output 64x55x55... flattened per stimulus)
  blobs_10000x50.npy   10,000 x 50 seeded Gaussian blobs (float64) + labels
Run in a Python without torch (torch's OpenMP slows scikit-learn 3-4x).
"""
import json, os, pathlib, time
import numpy as np

D = pathlib.Path(__file__).resolve().parent.parent / "target" / "bench-data"
REPEATS = int(os.environ.get("REPEATS", "3"))


def make():
    D.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if not (D / "acts_1000x9216.npy").exists():
        z = rng.normal(size=(1000, 64)).astype(np.float32)
        w = rng.normal(size=(64, 9216)).astype(np.float32)
        a = np.maximum(z @ w * 0.1 + rng.normal(size=(1000, 9216)).astype(np.float32) * 0.3, 0)
        np.save(D / "acts_1000x9216.npy", a.astype(np.float32))
    if not (D / "conv1_64x290400.npy").exists():
        z = rng.normal(size=(64, 8)).astype(np.float32)
        w = rng.normal(size=(8, 290400)).astype(np.float32)
        np.save(D / "conv1_64x290400.npy", (z @ w + rng.normal(size=(64, 290400)).astype(np.float32)).astype(np.float32))
    if not (D / "blobs_10000x50.npy").exists():
        from sklearn.datasets import make_blobs
        x, y = make_blobs(n_samples=10000, centers=10, n_features=50, cluster_std=1.0, random_state=0)
        np.save(D / "blobs_10000x50.npy", x)
        np.save(D / "blobs_labels.npy", y.astype(np.int64))


def best(f):
    t = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = f()
        t.append(time.perf_counter() - t0)
    return min(t), out


def main():
    make()
    import sklearn
    from sklearn.decomposition import PCA
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.metrics import adjusted_rand_score
    acts = np.load(D / "acts_1000x9216.npy")
    conv = np.load(D / "conv1_64x290400.npy")
    blobs = np.load(D / "blobs_10000x50.npy")
    labels = np.load(D / "blobs_labels.npy")
    res = []
    s, p = best(lambda: PCA(svd_solver="full").fit(acts))
    res.append({"task": "pca_full_1000x9216", "impl": "sklearn", "best_s": s, "evr0": float(p.explained_variance_ratio_[0])})
    s, p = best(lambda: PCA(50, svd_solver="randomized", random_state=0).fit(acts))
    res.append({"task": "pca_randomized50_1000x9216", "impl": "sklearn", "best_s": s, "evr0": float(p.explained_variance_ratio_[0])})
    s, c = best(lambda: np.corrcoef(conv))
    res.append({"task": "corrcoef_64x290400", "impl": "numpy", "best_s": s, "c01": float(c[0, 1])})
    s, l = best(lambda: DBSCAN(eps=9.0, min_samples=5).fit(blobs).labels_)
    res.append({"task": "dbscan_10000x50", "impl": "sklearn", "best_s": s, "ari": adjusted_rand_score(labels, l), "clusters": int(l.max() + 1)})
    s, l = best(lambda: KMeans(10, random_state=0).fit(blobs).labels_)
    res.append({"task": "kmeans_10000x50", "impl": "sklearn", "best_s": s, "ari": adjusted_rand_score(labels, l)})
    for r in res:
        r["version"] = sklearn.__version__
        print(json.dumps(r))


if __name__ == "__main__":
    main()
