#!/usr/bin/env python3
"""Reference numbers for tests/rsa.rs, from rsatoolbox 0.3.2 and scikit-learn 1.9.1.

Run in the analysis venv (.ci/requirements-analysis.txt; no torch there). Inputs are drawn here
from a seeded NumPy generator and stored in the file, so the Rust tests never need NumPy's
generator. Writes tests/fixtures/analysis/rsa.json.

    python scripts/make_rsa_fixtures.py            # regenerate
    python scripts/make_rsa_fixtures.py --check    # compare with the committed file
"""
import importlib.metadata, pathlib, sys, warnings
import numpy as np
import rsatoolbox, sklearn, scipy
from rsatoolbox.data import Dataset
from rsatoolbox.data.noise import prec_from_unbalanced
from rsatoolbox.rdm import calc_rdm, compare, RDMs
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling
from rsatoolbox.util.inference_util import pool_rdm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_analysis_fixtures import check_or_write, L  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/analysis/rsa.json"
rng = np.random.default_rng(20261205)
METHODS = ["cosine", "corr", "spearman", "rho-a", "tau-a", "kendall", "corr_cov", "cosine_cov"]


def hsic1(K, L):  # Song et al. 2012, eq. 5
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ K @ L @ one)) / (n * (n - 3))


def cka_unbiased(K, L):
    return hsic1(K, L) / np.sqrt(hsic1(K, K) * hsic1(L, L))


def gram_rbf(x, threshold=1.0):  # Kornblith et al.'s Colab
    dot = x @ x.T
    sq = np.diag(dot)
    d = -2 * dot + sq[:, None] + sq[None, :]
    return np.exp(-d / (2 * threshold ** 2 * np.median(d)))


def main():
    warnings.simplefilter("ignore")
    f = {"versions": {"rsatoolbox": importlib.metadata.version("rsatoolbox"), "sklearn": sklearn.__version__,
                      "numpy": np.__version__, "scipy": scipy.__version__}}

    # ---- RDM estimators: 12 conditions (labels out of order) x 4 runs, 30 channels
    n_cond, n_runs, p = 12, 4, 30
    labels = rng.permutation(np.arange(3, 3 + n_cond))
    patterns = rng.normal(size=(n_cond, p)) * 1.5
    mix = rng.normal(size=(p, p)) * 0.3 + np.eye(p)
    cond = np.tile(labels, n_runs)
    runs = np.repeat(np.arange(n_runs) * 2 + 1, n_cond)
    x = patterns[np.tile(np.arange(n_cond), n_runs)] + rng.normal(size=(n_cond * n_runs, p)) @ mix
    order = rng.permutation(len(cond))  # measurements in no particular order
    x, cond, runs = x[order], cond[order], runs[order]
    ds = Dataset(x, obs_descriptors={"cond": cond, "run": runs})
    est = {"x": L(x), "conditions": L(cond), "runs": L(runs)}
    precs = {}
    for m in ["shrinkage_diag", "shrinkage_eye", "diag", "full"]:
        precs[m] = prec_from_unbalanced(ds, "cond", method=m)
        est["prec_" + m] = L(precs[m])
    prec = precs["shrinkage_diag"]
    est["euclidean"] = L(calc_rdm(ds, "euclidean", descriptor="cond").get_vectors()[0])
    est["euclidean_single"] = L(calc_rdm(Dataset(x[:10]), "euclidean").get_vectors()[0])
    est["correlation"] = L(calc_rdm(ds, "correlation", descriptor="cond").get_vectors()[0])
    est["mahalanobis"] = L(calc_rdm(ds, "mahalanobis", descriptor="cond", noise=prec).get_vectors()[0])
    est["crossnobis"] = L(calc_rdm(ds, "crossnobis", descriptor="cond", cv_descriptor="run",
                                   noise=prec).get_vectors()[0])
    est["crossnobis_identity"] = L(calc_rdm(ds, "crossnobis", descriptor="cond",
                                            cv_descriptor="run").get_vectors()[0])
    est["euclidean_remove_mean"] = L(calc_rdm(ds, "euclidean", descriptor="cond",
                                              remove_mean=True).get_vectors()[0])
    est["condition_order"] = L(calc_rdm(ds, "euclidean", descriptor="cond").pattern_descriptors["cond"])
    f["estimators"] = est

    # ---- comparisons: 3 model RDMs and 5 subject RDMs over 10 conditions, some ties
    k = 10
    base = rng.normal(size=(k, 6))
    subj = []
    for s in range(5):
        sx = base + rng.normal(size=(k, 6)) * 0.8
        subj.append(calc_rdm(Dataset(sx), "euclidean").get_vectors()[0])
    data = RDMs(np.array(subj))
    models = np.array([
        calc_rdm(Dataset(base), "euclidean").get_vectors()[0],
        np.round(calc_rdm(Dataset(base[:, :2]), "euclidean").get_vectors()[0], 0),  # ties
        rng.uniform(size=k * (k - 1) // 2),
    ])
    mrdm = RDMs(models)
    idx = np.array([0, 0, 1, 3, 3, 3, 4, 6, 7, 9])  # a bootstrap draw: repeats -> NaN pairs
    cmp = {"data": L(data.get_vectors()), "models": L(models), "draw": L(idx)}
    for m in METHODS:
        cmp[m] = L(compare(mrdm, data, method=m))
        cmp[m + "_draw"] = L(compare(mrdm.subsample_pattern("index", idx),
                                     data.subsample_pattern("index", idx), method=m))
        cmp["pool_" + m] = L(np.nan_to_num(pool_rdm(data, method=m).get_vectors()[0], nan=-1.0))
        cmp["nc_" + m] = L(boot_noise_ceiling(data, method=m))
        cmp["nc_draw_" + m] = L(boot_noise_ceiling(data.subsample_pattern("index", idx), method=m))
    # a bootstrap over conditions as rsatoolbox runs it (its own NumPy draws): the Rust test
    # checks that a bootstrap with other draws agrees in distribution (means, SEM, ceiling)
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    np.random.seed(0)
    res = eval_bootstrap_pattern([ModelFixed(f"m{i}", RDMs(models[i:i + 1])) for i in range(3)],
                                 data, method="corr", N=1000)
    cmp["boot_corr"] = {"means": L(res.get_means()), "sem": L(res.get_sem()),
                        "noise_ceiling": L(np.nanmean(res.noise_ceiling, axis=1)),
                        "ci95": L(np.array(res.get_ci(0.95)).T), "p_pairwise": L(res.test_pairwise())}
    f["compare"] = cmp

    # ---- unbiased and minibatch CKA
    a = rng.normal(size=(50, 40)) + 2.0
    b = a @ rng.normal(size=(40, 70)) * 0.3 + rng.normal(size=(50, 70))
    cka = {"x": L(a), "y": L(b)}
    cka["linear_unbiased"] = cka_unbiased(a @ a.T, b @ b.T)
    cka["rbf_unbiased"] = cka_unbiased(gram_rbf(a), gram_rbf(b))
    hs = [(hsic1(xa @ xa.T, yb @ yb.T), hsic1(xa @ xa.T, xa @ xa.T), hsic1(yb @ yb.T, yb @ yb.T))
          for xa, yb in ((a[i:i + 10], b[i:i + 10]) for i in range(0, 50, 10))]
    h = np.array(hs).mean(0)
    cka["minibatch10"] = h[0] / np.sqrt(h[1] * h[2])
    f["cka"] = cka

    # ---- linear probes on the 8x8 digits: scikit-learn's folds and accuracies
    dig = load_digits()
    X, y = dig.data[:600], dig.target[:600]
    folds = np.empty(len(y), dtype=int)
    skf = StratifiedKFold(5)
    for i, (_, te) in enumerate(skf.split(X, y)):
        folds[te] = i
    pr = {"x": L(X.astype(int)), "y": L(y), "folds": L(folds)}
    for name, make in [("scaled", lambda: make_pipeline(StandardScaler(), LogisticRegression())),
                       ("raw_c0.01", lambda: LogisticRegression(C=0.01, max_iter=1000))]:
        acc = []
        for tr, te in skf.split(X, y):
            acc.append(make().fit(X[tr], y[tr]).score(X[te], y[te]))
        pr[name] = L(acc)
    f["probe"] = pr
    check_or_write(OUT, f)


if __name__ == "__main__":
    main()
