//! Parity of `neuroscope::analysis::{rsa, cka, probe}` with rsatoolbox 0.3.2 and scikit-learn
//! 1.9.1 (issue 28).
//!
//! Reference numbers: tests/fixtures/analysis/rsa.json, written by scripts/make_rsa_fixtures.py
//! in the analysis venv (versions recorded in the file, pinned in .ci/requirements-analysis.txt).

use ndarray::{Array1, Array2};
use neuroscope::analysis::cka::{Cka, Kernel, MinibatchCka};
use neuroscope::analysis::probe::{stratified_folds, LogisticRegression, Probe};
use neuroscope::analysis::rsa::{
    compare, noise_ceiling, noise_precision, pool_rdm, Bootstrap, BootstrapOver, CalcRdm,
    Comparison, RdmMethod, Rdms, Shrinkage,
};
use serde_json::Value;
use std::sync::OnceLock;

fn fixture() -> &'static Value {
    static F: OnceLock<Value> = OnceLock::new();
    F.get_or_init(|| {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/analysis/rsa.json"
        );
        serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
    })
}

fn mat(v: &Value) -> Array2<f64> {
    let rows = v.as_array().expect("rows");
    let p = rows[0].as_array().expect("row").len();
    Array2::from_shape_fn((rows.len(), p), |(i, j)| {
        rows[i][j].as_f64().expect("float")
    })
}
fn vecf(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}
fn veci(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

/// max |a - b| / max |b| over the entries that are not NaN in the reference.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-300);
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if y.is_nan() {
                if x.is_nan() {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (x - y).abs()
            }
        })
        .fold(0.0, f64::max)
        / scale
}

fn estimators() -> (Array2<f64>, Vec<i64>, Vec<i64>, &'static Value) {
    let e = &fixture()["estimators"];
    (mat(&e["x"]), veci(&e["conditions"]), veci(&e["runs"]), e)
}

#[test]
fn rdm_estimators_match_rsatoolbox() {
    let (x, cond, runs, e) = estimators();
    let prec = mat(&e["prec_shrinkage_diag"]);
    let cases: Vec<(&str, CalcRdm)> = vec![
        (
            "euclidean",
            CalcRdm::new(RdmMethod::Euclidean).conditions(&cond),
        ),
        (
            "correlation",
            CalcRdm::new(RdmMethod::Correlation).conditions(&cond),
        ),
        (
            "mahalanobis",
            CalcRdm::new(RdmMethod::Mahalanobis)
                .conditions(&cond)
                .precision(prec.clone()),
        ),
        (
            "crossnobis",
            CalcRdm::new(RdmMethod::Crossnobis)
                .conditions(&cond)
                .runs(&runs)
                .precision(prec.clone()),
        ),
        (
            "crossnobis_identity",
            CalcRdm::new(RdmMethod::Crossnobis)
                .conditions(&cond)
                .runs(&runs),
        ),
        (
            "euclidean_remove_mean",
            CalcRdm::new(RdmMethod::Euclidean)
                .conditions(&cond)
                .remove_mean(true),
        ),
    ];
    for (name, est) in cases {
        let r = est.compute(&x).unwrap();
        let err = rel(r.vector(0).as_slice().unwrap(), &vecf(&e[name]));
        assert!(err < 1e-6, "{name}: relative error {err:e}");
    }
    // the estimated noise, then whitening by it, gives rsatoolbox's numbers in one call
    let r = CalcRdm::new(RdmMethod::Mahalanobis)
        .conditions(&cond)
        .estimate_noise(Shrinkage::Diag)
        .compute(&x)
        .unwrap();
    assert!(rel(r.vector(0).as_slice().unwrap(), &vecf(&e["mahalanobis"])) < 1e-6);
    // one condition per row when no labels are given
    let single = CalcRdm::new(RdmMethod::Euclidean)
        .compute(&x.slice(ndarray::s![..10, ..]))
        .unwrap();
    assert!(
        rel(
            single.vector(0).as_slice().unwrap(),
            &vecf(&e["euclidean_single"])
        ) < 1e-6
    );
    // conditions in ascending label order, as rsatoolbox sorts them
    let want: Vec<String> = veci(&e["condition_order"])
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(r.conditions(), want.as_slice());
}

#[test]
fn noise_precisions_match_rsatoolbox() {
    let (x, cond, _, e) = estimators();
    for (name, s) in [
        ("shrinkage_diag", Shrinkage::Diag),
        ("shrinkage_eye", Shrinkage::Eye),
        ("diag", Shrinkage::DiagOnly),
        ("full", Shrinkage::Full),
    ] {
        let p = noise_precision(&x, &cond, s).unwrap();
        let want = mat(&e[&format!("prec_{name}")]);
        let err = rel(p.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-6, "{name}: relative error {err:e}");
    }
}

fn compare_sets() -> (Rdms, Rdms, Vec<usize>, &'static Value) {
    let c = &fixture()["compare"];
    let data = Rdms::from_vectors(mat(&c["data"])).unwrap();
    let models = Rdms::from_vectors(mat(&c["models"])).unwrap();
    let draw: Vec<usize> = veci(&c["draw"]).iter().map(|&v| v as usize).collect();
    (models, data, draw, c)
}

#[test]
fn comparisons_match_rsatoolbox() {
    let (models, data, draw, c) = compare_sets();
    let (md, dd) = (
        models.subsample_conditions(&draw).unwrap(),
        data.subsample_conditions(&draw).unwrap(),
    );
    for m in Comparison::ALL {
        let got = compare(&models, &data, m).unwrap();
        let want = mat(&c[m.name()]);
        let err = rel(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-6, "{}: relative error {err:e}", m.name());
        // with the NaN pairs of a bootstrap draw (corr_cov / cosine_cov take rsatoolbox's
        // missing-value branch there)
        let got = compare(&md, &dd, m).unwrap();
        let want = mat(&c[&format!("{}_draw", m.name())]);
        let err = rel(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-6, "{} on a draw: relative error {err:e}", m.name());
    }
}

#[test]
fn pooling_and_noise_ceilings_match_rsatoolbox() {
    let (_, data, draw, c) = compare_sets();
    let dd = data.subsample_conditions(&draw).unwrap();
    for m in Comparison::ALL {
        let pooled: Vec<f64> = pool_rdm(&data, m)
            .vector(0)
            .iter()
            .map(|v| if v.is_nan() { -1.0 } else { *v })
            .collect();
        assert!(
            rel(&pooled, &vecf(&c[&format!("pool_{}", m.name())])) < 1e-6,
            "pool {}",
            m.name()
        );
        let (lo, hi) = noise_ceiling(&data, m, None).unwrap();
        let want = vecf(&c[&format!("nc_{}", m.name())]);
        assert!(
            rel(&[lo, hi], &want) < 1e-6,
            "noise ceiling {}: {lo} {hi} vs {want:?}",
            m.name()
        );
        let (lo, hi) = noise_ceiling(&dd, m, None).unwrap();
        let want = vecf(&c[&format!("nc_draw_{}", m.name())]);
        assert!(
            rel(&[lo, hi], &want) < 1e-6,
            "noise ceiling on a draw {}: {lo} {hi} vs {want:?}",
            m.name()
        );
    }
}

#[test]
fn bootstrap_is_seeded_and_agrees_with_rsatoolbox_in_distribution() {
    let (models, data, _, c) = compare_sets();
    let named: Vec<(String, Rdms)> = (0..3)
        .map(|i| (format!("model {i}"), models.select(&[i]).unwrap()))
        .collect();
    let run = |seed, over| {
        Bootstrap::new(Comparison::Corr)
            .seed(seed)
            .over(over)
            .fit(&named, &data)
            .unwrap()
    };
    let (a, b) = (
        run(0, BootstrapOver::Conditions),
        run(0, BootstrapOver::Conditions),
    );
    assert_eq!(a.evaluations(), b.evaluations(), "same seed, same samples");
    assert_ne!(
        a.evaluations(),
        run(1, BootstrapOver::Conditions).evaluations(),
        "another seed, other samples"
    );
    // rsatoolbox's eval_bootstrap_pattern with its own 1,000 NumPy draws: the same distribution
    let r = &c["boot_corr"];
    let (means, sem) = (a.means(), a.sem());
    let (want_m, want_s) = (vecf(&r["means"]), vecf(&r["sem"]));
    for j in 0..3 {
        assert!(
            (means[j] - want_m[j]).abs() < 0.05,
            "means {means:?} vs {want_m:?}"
        );
        assert!(
            (sem[j] / want_s[j] - 1.0).abs() < 0.25,
            "SEM {sem:?} vs {want_s:?}"
        );
    }
    let (nlo, nhi) = a.noise_ceiling();
    let want_nc = vecf(&r["noise_ceiling"]);
    assert!(
        (nlo - want_nc[0]).abs() < 0.05 && (nhi - want_nc[1]).abs() < 0.05,
        "{nlo} {nhi} vs {want_nc:?}"
    );
    // the same conclusion: model 0 (the subjects' common pattern) beats the random model 2
    let p = a.test_pairwise();
    let want_p = mat(&r["p_pairwise"]);
    assert!(
        p[[0, 2]] < 0.05 && want_p[[0, 2]] < 0.05,
        "{p:?} vs {want_p:?}"
    );
    assert!(
        p[[1, 2]] > 0.3 && want_p[[1, 2]] > 0.3,
        "{p:?} vs {want_p:?}"
    );
    assert_eq!(p[[1, 1]], 1.0);
    for (j, (lo, hi)) in a.ci(0.95).into_iter().enumerate() {
        assert!(lo < means[j] && means[j] < hi);
    }
    assert!(a.summary().contains("model 0"));
    // over subjects and over both: seeded too, and the ceiling stays below 1
    let both = run(3, BootstrapOver::Both);
    assert_eq!(both.dof(), 4);
    assert!(both.noise_ceiling().1 <= 1.0);
    // a constant model on a draw compares as 0, as in rsatoolbox (not an error mid-run)
    let flat = Rdms::from_vectors(Array2::from_elem((1, 45), 1.0)).unwrap();
    let r = Bootstrap::new(Comparison::Corr)
        .samples(20)
        .fit(&[("flat", flat)], &data)
        .unwrap();
    assert!(r.means()[0].abs() < 1e-12);
}

#[test]
fn bad_input_is_refused_before_work() {
    let (x, cond, runs, _) = estimators();
    let err = |r: neuroscope::Result<Rdms>| r.unwrap_err().to_string();
    // label arrays of the wrong length
    let e = err(CalcRdm::new(RdmMethod::Euclidean)
        .conditions(&cond[..10])
        .compute(&x));
    assert!(e.contains("condition labels"), "{e}");
    let e = err(CalcRdm::new(RdmMethod::Crossnobis)
        .conditions(&cond)
        .runs(&runs[1..])
        .compute(&x));
    assert!(e.contains("run labels"), "{e}");
    // a noise estimate without condition labels to estimate it from
    let e = err(CalcRdm::new(RdmMethod::Mahalanobis)
        .estimate_noise(Shrinkage::Diag)
        .compute(&x));
    assert!(e.contains("condition labels"), "{e}");
    // a single run for crossnobis
    let one_run = vec![1i64; runs.len()];
    let e = err(CalcRdm::new(RdmMethod::Crossnobis)
        .conditions(&cond)
        .runs(&one_run)
        .compute(&x));
    assert!(e.contains("at least 2 runs"), "{e}");
    let e = err(CalcRdm::new(RdmMethod::Crossnobis)
        .conditions(&cond)
        .compute(&x));
    assert!(e.contains("run labels"), "{e}");
    // RDMs of different sizes
    let a = Rdms::from_vectors(Array2::from_shape_fn((1, 6), |(_, j)| j as f64)).unwrap();
    let b = Rdms::from_vectors(Array2::from_shape_fn((1, 10), |(_, j)| j as f64)).unwrap();
    let e = compare(&a, &b, Comparison::Spearman)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("4 conditions") && e.contains("5 conditions"),
        "{e}"
    );
    // constant RDMs where a correlation is undefined
    let flat = Rdms::from_vectors(Array2::from_elem((1, 6), 2.0)).unwrap();
    for m in [
        Comparison::Corr,
        Comparison::Spearman,
        Comparison::Kendall,
        Comparison::RhoA,
        Comparison::TauA,
        Comparison::CorrCov,
    ] {
        let e = compare(&a, &flat, m).unwrap_err().to_string();
        assert!(e.contains("constant"), "{}: {e}", m.name());
    }
    assert!(
        compare(&a, &flat, Comparison::Cosine).is_ok(),
        "cosine of a constant RDM is defined"
    );
    // a vector that is not an upper triangle, an asymmetric matrix
    assert!(Rdms::from_vectors(Array2::zeros((1, 5))).is_err());
    // a constant pattern for correlation distance
    let mut xc = x.clone();
    xc.row_mut(0).fill(1.0);
    let e = err(CalcRdm::new(RdmMethod::Correlation).compute(&xc));
    assert!(e.contains("constant pattern"), "{e}");
    // a noise ceiling needs 2+ subjects; a bootstrap 3+ conditions
    assert!(noise_ceiling(&a, Comparison::Corr, None).is_err());
}

#[test]
fn unbiased_and_minibatch_cka_match_the_references() {
    let c = &fixture()["cka"];
    let (x, y) = (mat(&c["x"]), mat(&c["y"]));
    let lin = Cka::new().unbiased(true).compute(&x, &y).unwrap();
    let want = c["linear_unbiased"].as_f64().unwrap();
    assert!((lin - want).abs() < 1e-6 * want.abs(), "{lin} vs {want}");
    let rbf = Cka::new()
        .kernel(Kernel::Rbf { threshold: 1.0 })
        .unbiased(true)
        .compute(&x, &y)
        .unwrap();
    let want = c["rbf_unbiased"].as_f64().unwrap();
    assert!((rbf - want).abs() < 1e-6 * want.abs(), "{rbf} vs {want}");
    let mut mb = MinibatchCka::new();
    for s in (0..50).step_by(10) {
        mb.update(
            &x.slice(ndarray::s![s..s + 10, ..]),
            &y.slice(ndarray::s![s..s + 10, ..]),
        )
        .unwrap();
    }
    let want = c["minibatch10"].as_f64().unwrap();
    assert!((mb.value().unwrap() - want).abs() < 1e-6 * want.abs());
    // the unbiased estimator removes the width bias of unrelated layers
    let noise = Array2::from_shape_fn((50, 400), |(i, j)| {
        ((i * 7919 + j * 104729) % 1009) as f64 / 1009.0 - 0.5
    });
    let biased = Cka::new().compute(&x, &noise).unwrap();
    let unbiased = Cka::new().unbiased(true).compute(&x, &noise).unwrap();
    assert!(
        biased > 0.15 && unbiased.abs() < 0.05,
        "biased {biased}, unbiased {unbiased}"
    );
}

fn digits() -> (Array2<f64>, Vec<usize>, &'static Value) {
    let p = &fixture()["probe"];
    let y: Vec<usize> = veci(&p["y"]).iter().map(|&v| v as usize).collect();
    (mat(&p["x"]), y, p)
}

#[test]
fn stratified_folds_are_scikit_learns() {
    let (_, y, p) = digits();
    let folds = stratified_folds(&y, 5).unwrap();
    let want: Vec<usize> = veci(&p["folds"]).iter().map(|&v| v as usize).collect();
    assert_eq!(folds, want);
}

#[test]
fn probe_accuracies_match_scikit_learn() {
    let (x, y, p) = digits();
    let scaled = Probe::new().score(&x, &y).unwrap();
    let want = vecf(&p["scaled"]);
    for (a, b) in scaled.fold_accuracies.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 0.02,
            "scaled folds {:?} vs {want:?}",
            scaled.fold_accuracies
        );
    }
    let raw = Probe::new()
        .standardize(false)
        .model(LogisticRegression::new().c(0.01).max_iter(1000))
        .score(&x, &y)
        .unwrap();
    let want = vecf(&p["raw_c0.01"]);
    for (a, b) in raw.fold_accuracies.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 0.02,
            "raw folds {:?} vs {want:?}",
            raw.fold_accuracies
        );
    }
    assert_eq!(raw.not_converged, 0);
    let m = Array1::from(scaled.fold_accuracies.clone()).mean().unwrap();
    assert!((scaled.mean() - m).abs() < 1e-15);
}

#[cfg(feature = "cli")]
mod common;

/// The four commands of the issue, on the fixture's data: the same numbers as the library.
#[cfg(feature = "cli")]
#[test]
fn command_line_prints_and_writes_the_same_numbers() {
    use neuroscope::io::npy;
    let dir = std::env::temp_dir().join(format!("neuroscope-rsa-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (x, cond, runs, e) = estimators();
    npy::write_f64(p("x.npy"), &x.clone().into_dyn()).unwrap();
    npy::write_i64(p("c.npy"), &cond).unwrap();
    npy::write_i64(p("r.npy"), &runs).unwrap();
    let (ok, out) = common::neuroscope(&[
        "rdm",
        "--input",
        &p("x.npy"),
        "--method",
        "crossnobis",
        "--conditions",
        &p("c.npy"),
        "--runs",
        &p("r.npy"),
        "--noise",
        "shrinkage_diag",
        "--out",
        &p("rdm.npy"),
    ]);
    assert!(ok, "{out}");
    let m = npy::read_f64(p("rdm.npy"))
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let got = Rdms::from_matrices(&[m]).unwrap();
    assert!(rel(got.vector(0).as_slice().unwrap(), &vecf(&e["crossnobis"])) < 1e-6);
    // one run: refused with the reason, and no output written
    let one = vec![1i64; runs.len()];
    npy::write_i64(p("one.npy"), &one).unwrap();
    let (ok, out) = common::neuroscope(&[
        "rdm",
        "--input",
        &p("x.npy"),
        "--method",
        "crossnobis",
        "--conditions",
        &p("c.npy"),
        "--runs",
        &p("one.npy"),
        "--out",
        &p("bad.npy"),
    ]);
    assert!(!ok && out.contains("at least 2 runs"), "{out}");
    assert!(!dir.join("bad.npy").exists());
    // compare-rdms of two single RDMs prints one number: rsatoolbox's tau-a
    let (models, data, _, c) = compare_sets();
    npy::write_f64(p("m0.npy"), &models.matrix(0).into_dyn()).unwrap();
    npy::write_f64(p("d0.npy"), &data.matrix(0).into_dyn()).unwrap();
    let (ok, out) = common::neuroscope(&[
        "compare-rdms",
        "--a",
        &p("m0.npy"),
        "--b",
        &p("d0.npy"),
        "--method",
        "tau-a",
    ]);
    assert!(ok, "{out}");
    let v: f64 = out.trim().parse().unwrap();
    assert!((v - mat(&c["tau-a"])[[0, 0]]).abs() < 1e-9, "{v}");
    let (ok, out) = common::neuroscope(&["compare-rdms", "--a", &p("m0.npy"), "--b", &p("x.npy")]);
    assert!(!ok && out.contains("RDM"), "{out}");
    // cka --unbiased
    let k = &fixture()["cka"];
    npy::write_f64(p("ka.npy"), &mat(&k["x"]).into_dyn()).unwrap();
    npy::write_f64(p("kb.npy"), &mat(&k["y"]).into_dyn()).unwrap();
    let (ok, out) = common::neuroscope(&[
        "cka",
        "--a",
        &p("ka.npy"),
        "--b",
        &p("kb.npy"),
        "--unbiased",
    ]);
    assert!(ok, "{out}");
    let v: f64 = out.trim().parse().unwrap();
    assert!((v - k["linear_unbiased"].as_f64().unwrap()).abs() < 1e-9);
    // probe: the mean of scikit-learn's fold accuracies, within 0.02
    let (dx, dy, pr) = digits();
    npy::write_f64(p("dx.npy"), &dx.into_dyn()).unwrap();
    npy::write_i64(
        p("dy.npy"),
        &dy.iter().map(|&v| v as i64).collect::<Vec<_>>(),
    )
    .unwrap();
    let (ok, out) = common::neuroscope(&[
        "probe",
        "--input",
        &p("dx.npy"),
        "--labels",
        &p("dy.npy"),
        "--folds",
        "5",
    ]);
    assert!(ok, "{out}");
    let v: f64 = out.trim().parse().unwrap();
    let want = vecf(&pr["scaled"]).iter().sum::<f64>() / 5.0;
    assert!((v - want).abs() < 0.02, "{v} vs {want}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Tests and intervals stay defined at the edges: identical models (zero variance of the
/// difference), a model identical to the data (t very large), a level of 0 or 1.
#[test]
fn inference_at_the_edges_does_not_panic() {
    let (models, data, _, _) = compare_sets();
    let m0 = models.select(&[0]).unwrap();
    let same = [
        ("a", m0.clone()),
        ("b", m0.clone()),
        ("data", data.select(&[0]).unwrap()),
    ];
    let r = Bootstrap::new(Comparison::Corr)
        .samples(50)
        .fit(&same, &data.select(&[0]).unwrap())
        .unwrap();
    let p = r.test_pairwise();
    assert!(
        p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "{p:?}"
    );
    assert!(r.test_zero().iter().all(|v| v.is_finite()));
    assert!(r.ci(1.0).iter().all(|(a, b)| a.is_nan() && b.is_nan()));
    assert!(r.summary().contains("no noise ceiling"));
}
