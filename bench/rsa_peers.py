#!/usr/bin/env python3
"""Peer side of bench/run_rsa.sh: makes the inputs (once) and times rsatoolbox 0.3.2.

Inputs, written to target/bench-data/ as .npy (float64):
  rsa_acts_1000x4096.npy    1000 conditions x 4096 channels (an fc layer's activations)
  rsa_runs_800x500.npy      200 conditions x 4 runs, 500 channels, + conditions / runs labels
  rsa_prec_500.npy          a noise precision for the crossnobis row (shrinkage_diag estimate)
Run in the analysis venv (no torch).
"""
import json, os, pathlib, time, warnings
import numpy as np

D = pathlib.Path(__file__).resolve().parent.parent / "target" / "bench-data"
REPEATS = int(os.environ.get("REPEATS", "3"))


def make():
    D.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    if not (D / "rsa_acts_1000x4096.npy").exists():
        z = rng.normal(size=(1000, 32))
        w = rng.normal(size=(32, 4096))
        np.save(D / "rsa_acts_1000x4096.npy", np.maximum(z @ w * 0.2 + rng.normal(size=(1000, 4096)), 0))
    if not (D / "rsa_runs_800x500.npy").exists():
        pat = rng.normal(size=(200, 500))
        cond = np.tile(np.arange(200), 4)
        runs = np.repeat(np.arange(4), 200)
        np.save(D / "rsa_runs_800x500.npy", pat[cond] + rng.normal(size=(800, 500)) * 2.0)
        np.save(D / "rsa_conditions.npy", cond.astype(np.int64))
        np.save(D / "rsa_run_labels.npy", runs.astype(np.int64))


def best(f):
    t, out = [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = f()
        t.append(time.perf_counter() - t0)
    return min(t), out


def main():
    warnings.simplefilter("ignore")
    make()
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import prec_from_unbalanced
    from rsatoolbox.rdm import calc_rdm, compare
    import rsatoolbox, importlib.metadata
    ver = importlib.metadata.version("rsatoolbox")
    acts = np.load(D / "rsa_acts_1000x4096.npy")
    s, r1 = best(lambda: calc_rdm(Dataset(acts), "correlation"))
    print(json.dumps({"task": "rdm_correlation_1000x4096", "impl": f"rsatoolbox {ver}", "best_s": s,
                      "sum": float(r1.get_vectors().sum())}), flush=True)
    r2 = calc_rdm(Dataset(np.sqrt(acts)), "euclidean")
    s, v = best(lambda: compare(r1, r2, "spearman"))
    print(json.dumps({"task": "compare_spearman_1000", "impl": f"rsatoolbox {ver}", "best_s": s,
                      "value": float(v[0, 0])}), flush=True)
    x = np.load(D / "rsa_runs_800x500.npy")
    cond = np.load(D / "rsa_conditions.npy")
    runs = np.load(D / "rsa_run_labels.npy")
    ds = Dataset(x, obs_descriptors={"cond": cond, "run": runs})
    s, prec = best(lambda: prec_from_unbalanced(ds, "cond", method="shrinkage_diag"))
    np.save(D / "rsa_prec_500.npy", prec)
    print(json.dumps({"task": "noise_shrinkage_diag_800x500", "impl": f"rsatoolbox {ver}", "best_s": s,
                      "trace": float(np.trace(prec))}), flush=True)
    s, r = best(lambda: calc_rdm(ds, "crossnobis", descriptor="cond", cv_descriptor="run", noise=prec))
    print(json.dumps({"task": "crossnobis_4runs_200x500", "impl": f"rsatoolbox {ver}", "best_s": s,
                      "sum": float(r.get_vectors().sum())}), flush=True)


if __name__ == "__main__":
    main()
