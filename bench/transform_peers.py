#!/usr/bin/env python3
"""Peer side of bench/run_transform.sh: umap-learn's `UMAP.transform` and openTSNE's
`TSNEEmbedding.transform` placing new samples into an embedding fitted on reference samples
(the fit is not timed; numba is warmed up on a small run first). Prints one JSON line per peer
with the transform's time and the placed samples' 5-NN vote accuracy (the 5 nearest reference
points in the embedding vote, ties to the smaller label). Run in a Python without torch."""
import json, os, sys, time
import numpy as np


def vote(e_ref, y_ref, e_new, y_new):
    from sklearn.neighbors import NearestNeighbors
    nb = NearestNeighbors(n_neighbors=5).fit(e_ref).kneighbors(e_new, return_distance=False)
    return float(np.mean([np.bincount(y_ref[r], minlength=10).argmax() == y for r, y in zip(nb, y_new)]))


def main(ref, ref_y, new, new_y):
    import openTSNE, umap
    xr, yr = np.load(ref).astype(np.float64), np.load(ref_y).astype(np.int64)
    xn, yn = np.load(new).astype(np.float64), np.load(new_y).astype(np.int64)
    # numba compile, not timed: past 4,096 points umap-learn searches with pynndescent, whose
    # query is compiled on first use
    warm = umap.UMAP(random_state=0, n_epochs=10).fit(xr[:4200])
    warm.transform(xn[:20])
    only = [p for p in os.environ.get("PEERS", "").split(",") if p]
    if not only or "umap-learn" in only:
        u = umap.UMAP(random_state=0).fit(xr)
        t0 = time.perf_counter()
        e = u.transform(xn)
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "umap-learn transform", "seconds": round(dt, 3), "placed_knn5": round(vote(u.embedding_, yr, e, yn), 4)}), flush=True)
        # the first query of a fitted model also prepares its search graph: a second call
        t0 = time.perf_counter()
        u.transform(xn)
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "umap-learn transform, second call", "seconds": round(dt, 3)}), flush=True)
    if not only or "openTSNE" in only:
        t = openTSNE.TSNE(n_jobs=2, random_state=0).fit(xr)
        t0 = time.perf_counter()
        e = np.asarray(t.transform(xn))
        dt = time.perf_counter() - t0
        print(json.dumps({"impl": "openTSNE transform", "seconds": round(dt, 3), "placed_knn5": round(vote(np.asarray(t), yr, e, yn), 4)}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
