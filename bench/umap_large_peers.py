#!/usr/bin/env python3
"""Peer side of bench/run_umap_large.sh and bench/run_tsne_large.sh: umap-learn on a large .npy
(warm: numba compiled on a 5,000-point fit first, which also compiles pynndescent's NN-descent,
used from 4,096 points), openTSNE (n_jobs=2, its defaults: Annoy neighbours, FFT gradients),
and the quality of any embedding, computed the same way for every implementation: 5-NN accuracy
of the labels on the whole embedding, trustworthiness (k=10) on a seeded 10,000-point subsample
(scikit-learn's needs N^2 memory). Run in a Python without torch.
  python umap_large_peers.py fit X.npy OUT.npy      # time umap-learn, save its embedding
  python umap_large_peers.py fit-tsne X.npy OUT.npy # time openTSNE, save its embedding
  python umap_large_peers.py quality X.npy Y.npy E.npy NAME SECONDS"""
import json, sys, time
import numpy as np


def quality(x, e, y):
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors
    nb = NearestNeighbors(n_neighbors=6).fit(e).kneighbors(e, return_distance=False)[:, 1:]
    acc = float(np.mean([np.bincount(y[r], minlength=y.max() + 1).argmax() == y[i] for i, r in enumerate(nb)]))
    sub = np.random.default_rng(0).choice(len(x), size=min(10_000, len(x)), replace=False)
    return float(trustworthiness(x[sub].astype(np.float64), e[sub], n_neighbors=10)), acc


def main():
    if sys.argv[1] == "fit":
        import umap
        x = np.load(sys.argv[2]).astype(np.float32)
        warm = np.random.default_rng(1).choice(len(x), 5_000, replace=False)
        umap.UMAP(random_state=0, n_epochs=10).fit_transform(x[warm])  # compile, not timed
        t0 = time.perf_counter()
        e = umap.UMAP(random_state=0).fit_transform(x)
        print(round(time.perf_counter() - t0, 2))
        np.save(sys.argv[3], e)
    elif sys.argv[1] == "fit-tsne":
        import openTSNE
        x = np.load(sys.argv[2]).astype(np.float64)
        t0 = time.perf_counter()
        e = np.asarray(openTSNE.TSNE(n_jobs=2, random_state=0).fit(x))
        print(round(time.perf_counter() - t0, 2))
        np.save(sys.argv[3], e)
    else:
        _, _, xp, yp, ep, name, secs = sys.argv
        t, k = quality(np.load(xp), np.load(ep), np.load(yp).astype(np.int64))
        print(json.dumps({"impl": name, "seconds": float(secs), "trust10_sub10k": round(t, 4), "knn5": round(k, 4)}), flush=True)


if __name__ == "__main__":
    main()
