#!/usr/bin/env python3
"""Reference numbers for tests/analysis.rs, from scikit-learn and SciPy.

Run with the versions pinned in .ci/requirements-analysis.txt (no torch in that environment:
OpenMP-using peers run 3-4x slower beside it). Writes tests/fixtures/analysis/parity.json; the
inputs are generated here from a seeded NumPy generator and stored in the file too, so the Rust
tests never need NumPy's generator. Floats are written with repr(), which round-trips exactly.

    python scripts/make_analysis_fixtures.py            # regenerate
    python scripts/make_analysis_fixtures.py --check    # compare with the committed file
"""
import json, sys, pathlib
import numpy as np
import scipy, sklearn
from scipy.stats import spearmanr, kendalltau, pearsonr
from sklearn import metrics, cluster, decomposition, manifold, mixture
from sklearn.datasets import make_blobs, load_digits

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/analysis/parity.json"
rng = np.random.default_rng(20261122)


def L(a):
    return np.asarray(a).tolist()


def cka_linear(x, y):  # Kornblith et al. 2019 Colab, gram form
    def gram_linear(z):
        return z @ z.T
    return cka(gram_linear(x), gram_linear(y))


def center_gram(g):
    g = g.copy()
    means = np.mean(g, 0, dtype=np.float64)
    means -= np.mean(means) / 2
    g -= means[:, None]
    g -= means[None, :]
    return g


def cka(gx, gy):
    gx, gy = center_gram(gx), center_gram(gy)
    scaled_hsic = gx.ravel().dot(gy.ravel())
    return scaled_hsic / (np.linalg.norm(gx) * np.linalg.norm(gy))


def gram_rbf(x, threshold=1.0):
    dot = x @ x.T
    sq_norms = np.diag(dot)
    sq_d = -2 * dot + sq_norms[:, None] + sq_norms[None, :]
    med = np.median(sq_d)
    return np.exp(-sq_d / (2 * threshold ** 2 * med))


def main():
    f = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}}

    # ---- PCA: wide (n < p, like activations), tall, and randomized
    wide = rng.normal(size=(60, 200)) @ np.diag(np.linspace(3, 0.1, 200))
    wide[:, :5] += rng.normal(size=(60, 1)) * 4
    tall = rng.normal(size=(300, 20)) * np.linspace(5, 0.5, 20)
    big = rng.normal(size=(200, 20)) @ rng.normal(size=(20, 150)) * 0.1 + rng.normal(size=(200, 150)) * 0.01
    wide, tall, big = (np.round(a, 6) for a in (wide, tall, big))
    f["pca"] = {
        "wide": {"x": L(wide), "ratio": L(decomposition.PCA().fit(wide).explained_variance_ratio_),
                 "variance": L(decomposition.PCA().fit(wide).explained_variance_),
                 "components3": L(decomposition.PCA(3).fit(wide).components_),
                 "n_for_80": int(decomposition.PCA(0.8).fit(wide).n_components_)},
        "tall": {"x": L(tall), "ratio": L(decomposition.PCA().fit(tall).explained_variance_ratio_)},
        "randomized": {"x": L(big), "k": 10,
                        "ratio": L(decomposition.PCA(10, svd_solver="randomized", random_state=0).fit(big).explained_variance_ratio_),
                        # float32 data stays float32 in scikit-learn's randomized solver (and in ours)
                        "ratio32": L(decomposition.PCA(10, svd_solver="randomized", random_state=0).fit(big.astype(np.float32)).explained_variance_ratio_)},
    }

    # ---- RSA
    layers = [rng.normal(size=(12, 50))]
    layers.append(np.tanh(layers[0] @ rng.normal(size=(50, 30))))
    layers.append(np.maximum(layers[1] @ rng.normal(size=(30, 40)), 0) + 0.01 * rng.normal(size=(12, 40)))
    layers = [np.round(a, 6) for a in layers]
    first = [np.corrcoef(a) for a in layers]
    tri = np.array([m[np.tril_indices_from(m, k=-1)] for m in first])
    sp, _ = spearmanr(tri, axis=1)
    kt = np.eye(3)
    pe = np.corrcoef(tri)
    for i in range(3):
        for j in range(3):
            if i != j:
                kt[i, j] = kendalltau(tri[i], tri[j]).statistic
    # ties: a vector with repeated values
    tied_a = np.round(rng.normal(size=40), 1)
    tied_b = np.round(tied_a + rng.normal(size=40) * 0.5, 0)
    cos = (layers[0] / np.linalg.norm(layers[0], axis=1, keepdims=True))
    from scipy.spatial.distance import cdist
    f["rsa"] = {
        "layers": [L(a) for a in layers],
        "pearson": [L(m) for m in first],
        "cosine0": L(cos @ cos.T),
        "euclidean0": L(cdist(layers[0], layers[0])),
        "spearman": L(sp), "kendall": L(kt), "pearson2": L(pe),
        "tied": {"a": L(tied_a), "b": L(tied_b), "kendall": kendalltau(tied_a, tied_b).statistic,
                 "spearman": spearmanr(tied_a, tied_b).statistic, "pearson": pearsonr(tied_a, tied_b).statistic},
        "cka_linear01": cka_linear(layers[0], layers[1]), "cka_linear02": cka_linear(layers[0], layers[2]),
        "cka_rbf01": cka(gram_rbf(layers[0]), gram_rbf(layers[1])),
    }

    # ---- label scores: several labellings, incl. noise labels and unequal class counts
    n = 300
    t = rng.integers(0, 6, size=n)
    p1 = np.where(rng.random(n) < 0.7, t, rng.integers(0, 8, size=n))
    p2 = rng.integers(-1, 3, size=n)
    p3 = t.copy()
    x_int = np.round(rng.normal(size=(n, 4)) + t[:, None] * 0.8, 6)
    scores = []
    for name, a, b in [("p1", t, p1), ("p2", t, p2), ("same", t, p3), ("swap", p1, t)]:
        h, c, v = metrics.homogeneity_completeness_v_measure(a, b)
        scores.append({"name": name, "true": L(a), "pred": L(b),
                       "ari": metrics.adjusted_rand_score(a, b), "rand": metrics.rand_score(a, b),
                       "ami": metrics.adjusted_mutual_info_score(a, b), "nmi": metrics.normalized_mutual_info_score(a, b),
                       "mi": metrics.mutual_info_score(a, b),
                       "homogeneity": h, "completeness": c, "v_measure": v,
                       "fowlkes_mallows": metrics.fowlkes_mallows_score(a, b),
                       "contingency": L(metrics.cluster.contingency_matrix(a, b)),
                       "silhouette": metrics.silhouette_score(x_int, b) if len(set(b)) > 1 else None,
                       "calinski_harabasz": metrics.calinski_harabasz_score(x_int, b),
                       "davies_bouldin": metrics.davies_bouldin_score(x_int, b)})
    f["scores"] = {"x": L(x_int), "cases": scores}

    # ---- embedding quality
    hi = rng.normal(size=(200, 10))
    lo = hi[:, :2] + rng.normal(size=(200, 2)) * 0.3
    hi, lo = np.round(hi, 6), np.round(lo, 6)
    lab = (hi[:, 0] > 0).astype(int) + 2 * (hi[:, 1] > 0).astype(int)
    from sklearn.neighbors import NearestNeighbors
    # leave-one-out: kneighbors() without X excludes the point itself
    nbrs5 = NearestNeighbors(n_neighbors=5).fit(lo).kneighbors(return_distance=False)
    loo = np.mean([np.bincount(lab[r], minlength=4).argmax() == lab[i] for i, r in enumerate(nbrs5)])
    f["embedding"] = {"hi": L(hi), "lo": L(lo), "labels": L(lab),
                      "trust5": manifold.trustworthiness(hi, lo, n_neighbors=5),
                      "trust10": manifold.trustworthiness(hi, lo, n_neighbors=10),
                      "knn5": float(loo)}

    # ---- clustering
    blobs, blab = make_blobs(n_samples=300, centers=4, n_features=5, cluster_std=1.2, random_state=3)
    blobs = np.round(blobs, 6)
    f["cluster"] = {"x": L(blobs), "labels": L(blab),
                    "dbscan": L(cluster.DBSCAN(eps=1.5, min_samples=5).fit(blobs).labels_),
                    "dbscan_default": L(cluster.DBSCAN().fit(blobs).labels_),
                    "kmeans": L(cluster.KMeans(4, random_state=0).fit(blobs).labels_),
                    "gmm": L(mixture.GaussianMixture(4, random_state=0).fit(blobs).predict(blobs)),
                    "hdbscan": L(cluster.HDBSCAN().fit(blobs).labels_),
                    "optics": L(cluster.OPTICS().fit(blobs).labels_),
                    "optics_reach": [None if np.isinf(v) else float(v) for v in cluster.OPTICS().fit(blobs).reachability_],
                    }
    for link in ["ward", "average", "complete", "single"]:
        f["cluster"]["agg_" + link] = L(cluster.AgglomerativeClustering(4, linkage=link).fit(blobs).labels_)

    # ---- other reductions on the 8x8 digits (first 300)
    # small positive jitter: the digits are integers, and exact distance ties make neighbour
    # graphs depend on tie-breaking rather than on the algorithm
    dig = np.round(load_digits().data[:300] + rng.uniform(0, 0.01, size=(300, 64)), 6)
    ts = decomposition.TruncatedSVD(5, random_state=0).fit(dig)
    nmf = decomposition.NMF(5, max_iter=400, random_state=0).fit(dig)
    iso = manifold.Isomap(n_neighbors=12, n_components=2, eigen_solver="dense").fit_transform(dig)
    mds = manifold.MDS(n_components=2, n_init=1, init="classical_mds", metric="euclidean").fit(dig[:100])
    f["reduce"] = {"digits300": L(dig),
                   "tsvd_ratio": L(ts.explained_variance_ratio_), "tsvd_singular": L(ts.singular_values_),
                   "nmf_err": nmf.reconstruction_err_,
                   "isomap": L(iso),
                   "mds_stress": mds.stress_}
    check_or_write(OUT, f)


def check_or_write(out, f):
    """With --check, compare `f` with the committed `out` (floats within 1e-9: BLAS kernels
    differ in the last bits between CPUs) and exit 1 on a difference; otherwise write it."""
    text = json.dumps(f, separators=(",", ":"))
    if "--check" in sys.argv:
        problems = []

        def cmp(a, b, path):
            if isinstance(a, dict):
                if set(a) != set(b):
                    problems.append(f"{path}: keys differ")
                for k in a:
                    if k in b and k != "versions":
                        cmp(a[k], b[k], f"{path}/{k}")
            elif isinstance(a, list):
                if len(a) != len(b):
                    problems.append(f"{path}: lengths {len(a)} vs {len(b)}")
                else:
                    for i, (x, y) in enumerate(zip(a, b)):
                        cmp(x, y, f"{path}[{i}]")
            elif isinstance(a, float) or isinstance(b, float):
                if a is None or b is None or abs(a - b) > 1e-9 * max(1.0, abs(b)):
                    problems.append(f"{path}: committed {a} vs now {b}")
            elif a != b:
                problems.append(f"{path}: committed {a} vs now {b}")

        cmp(json.loads(out.read_text()), json.loads(text), "")
        print("same (within 1e-9)" if not problems else "DIFFERENT:\n" + "\n".join(problems[:20]))
        sys.exit(1 if problems else 0)
    out.write_text(text)
    print(f"wrote {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
