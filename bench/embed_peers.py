#!/usr/bin/env python3
"""Peer side of bench/run_embed.sh: openTSNE (n_jobs=2), scikit-learn TSNE and umap-learn
(warm: numba compiled on a 5,000-point run first, NN-descent included) on the same .npy inputs; prints one JSON line per run
with time, trustworthiness (k=10) and 5-NN accuracy. PEERS=openTSNE,sklearn_tsne,umap-learn picks
some. Run in a Python without torch."""
import json, os, sys, time
import numpy as np


def quality(x, e, y):
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors
    nb = NearestNeighbors(n_neighbors=5).fit(e).kneighbors(return_distance=False)
    acc = float(np.mean([np.bincount(y[r], minlength=y.max() + 1).argmax() == y[i] for i, r in enumerate(nb)]))
    return float(trustworthiness(x, e, n_neighbors=10)), acc


def main(name, xpath, ypath):
    import openTSNE, umap
    from sklearn.manifold import TSNE
    x = np.load(xpath).astype(np.float64)
    y = np.load(ypath).astype(np.int64)
    # numba compile, not timed: 5,000 points, so that pynndescent's NN-descent (umap-learn's
    # search from 4,096 points) is compiled too, not only the exact small-data path
    umap.UMAP(random_state=0, n_epochs=10).fit_transform(x[:5000])
    runs = [
        ("openTSNE", lambda: np.asarray(openTSNE.TSNE(n_jobs=2, random_state=0).fit(x))),
        ("sklearn_tsne", lambda: TSNE(random_state=0).fit_transform(x)),
        ("umap-learn", lambda: umap.UMAP(random_state=0).fit_transform(x)),
    ]
    only = [p for p in os.environ.get("PEERS", "").split(",") if p]
    for impl, f in runs:
        if only and impl not in only:
            continue
        t0 = time.perf_counter()
        e = f()
        dt = time.perf_counter() - t0
        t, k = quality(x, e, y)
        print(json.dumps({"data": name, "impl": impl, "seconds": round(dt, 2), "trust10": round(t, 4), "knn5": round(k, 4)}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
