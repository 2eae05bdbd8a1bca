#!/usr/bin/env python3
"""Quality references for tests/embed.rs: trustworthiness (k=10) and 5-NN accuracy of openTSNE,
scikit-learn's TSNE and umap-learn embeddings of the embedded MNIST digits and of seeded blobs.

Pinned in .ci/requirements-embed.txt; writes tests/fixtures/embed/quality.json (the blobs are
stored in the file so both sides embed the same numbers). The tests require neuroscope to be
within 0.01 of the peers (or better).

Also writes tests/fixtures/embed/transform.json: how well umap-learn's and openTSNE's
`transform` place held-out digits (every 5th of the 1,000) into an embedding of the other 800,
as the 5-NN vote of the reference points' labels around each placed point, and
tests/fixtures/embed/umap5000.json: umap-learn on 5,000 digits (its NN-descent regime), seeds 0-2.

    python scripts/make_embedding_fixtures.py               # all three files
    python scripts/make_embedding_fixtures.py --transform   # transform.json only
    python scripts/make_embedding_fixtures.py --umap5000    # umap5000.json only
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


def vote_accuracy(e_ref, y_ref, e_new, y_new):
    """Share of placed points whose 5 nearest reference points (in the embedding) vote their
    label; ties go to the smallest label, as in tests/embed.rs."""
    from sklearn.neighbors import NearestNeighbors
    nb = NearestNeighbors(n_neighbors=5).fit(e_ref).kneighbors(e_new, return_distance=False)
    return float(np.mean([np.bincount(y_ref[r], minlength=10).argmax() == y for r, y in zip(nb, y_new)]))


def transform_refs():
    import openTSNE, umap
    x, y = mnist(1000)
    new = np.arange(1000) % 5 == 0
    xr, yr, xn, yn = x[~new], y[~new], x[new], y[new]
    res = {"versions": {"openTSNE": openTSNE.__version__, "umap-learn": umap.__version__},
           "split": "every 5th of mnist1000 placed into an embedding of the other 800"}
    u = umap.UMAP(random_state=1).fit(xr)
    res["umap"] = {"placed_knn5": vote_accuracy(u.embedding_, yr, u.transform(xn), yn)}
    t = openTSNE.TSNE(n_jobs=1, random_state=1).fit(xr)
    res["opentsne"] = {"placed_knn5": vote_accuracy(np.asarray(t), yr, np.asarray(t.transform(xn)), yn)}
    out = OUT.with_name("transform.json")
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(res, file=sys.stderr)
    print(f"wrote {out}")


def umap5000_refs():
    """umap-learn on every 2nd embedded digit (5,000, so NN-descent and its default 500
    epochs), seeds 0-2: the reference for tests/embed.rs's 5,000-digit UMAP test."""
    import umap
    with gzip.open(ROOT / "data/mnist-10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[::2][:5000].astype(np.float64) / 255.0
    with gzip.open(ROOT / "data/mnist-10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[::2][:5000].astype(np.int64)
    runs = [quality(x, umap.UMAP(random_state=s).fit_transform(x), y) for s in range(3)]
    res = {"versions": {"umap-learn": umap.__version__}, "data": "every 2nd embedded digit, 5,000",
           "seeds": [0, 1, 2], "runs": runs,
           "trust10": float(np.mean([r["trust10"] for r in runs])),
           "knn5": float(np.mean([r["knn5"] for r in runs]))}
    out = ROOT / "tests/fixtures/embed/umap5000.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


def main():
    if "--transform" in sys.argv[1:]:
        return transform_refs()
    if "--umap5000" in sys.argv[1:]:
        return umap5000_refs()
    transform_refs()
    umap5000_refs()
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
