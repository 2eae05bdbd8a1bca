#!/usr/bin/env python3
"""Quality references for tests/embed.rs: trustworthiness (k=10) and 5-NN accuracy of openTSNE,
scikit-learn's TSNE and umap-learn embeddings of the embedded MNIST digits and of seeded blobs.

Pinned in .ci/requirements-embed.txt; writes tests/fixtures/embed/quality.json (the blobs are
stored in the file so both sides embed the same numbers). The tests require neuroscope to be
within 0.01 of the peers (or better).

    python scripts/make_embedding_fixtures.py
"""
import gzip, json, pathlib, sys, time
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/embed/quality.json"


def mnist(n):
    """Every 10th of the embedded digits (the file is grouped by class), first n of those."""
    with gzip.open(ROOT / "data/mnist-10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[::10][:n].astype(np.float64) / 255.0
    with gzip.open(ROOT / "data/mnist-10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[::10][:n].astype(np.int64)
    return x, y


def blobs():
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(6, 10)) * 4
    y = np.repeat(np.arange(6), 150)
    x = centers[y] + rng.normal(size=(900, 10))
    return np.round(x, 6), y


def quality(x, e, y):
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors
    nb = NearestNeighbors(n_neighbors=5).fit(e).kneighbors(return_distance=False)
    acc = np.mean([np.bincount(y[r], minlength=y.max() + 1).argmax() == y[i] for i, r in enumerate(nb)])
    return {"trust10": float(trustworthiness(x, e, n_neighbors=10)), "knn5": float(acc)}


def main():
    import openTSNE, sklearn, umap
    from sklearn.manifold import TSNE
    res = {"versions": {"openTSNE": openTSNE.__version__, "umap-learn": umap.__version__, "sklearn": sklearn.__version__}}
    bx, by = blobs()
    res["blobs_data"] = {"x": bx.tolist(), "labels": by.tolist()}
    for name, (x, y) in {"mnist1000": mnist(1000), "blobs": (bx, by)}.items():
        r = {}
        t0 = time.time(); e = openTSNE.TSNE(n_jobs=2, random_state=0).fit(x); r["opentsne"] = quality(x, np.asarray(e), y)
        e = TSNE(random_state=0).fit_transform(x); r["sklearn_tsne"] = quality(x, e, y)
        e = umap.UMAP(random_state=0).fit_transform(x); r["umap"] = quality(x, e, y)
        res[name] = r
        print(name, r, f"{time.time() - t0:.1f}s", file=sys.stderr)
    OUT.write_text(json.dumps(res, separators=(",", ":")))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
