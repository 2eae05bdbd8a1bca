//! Parity of `neuroscope::analysis` with scikit-learn and SciPy.
//!
//! Reference numbers: tests/fixtures/analysis/parity.json, written by
//! scripts/make_analysis_fixtures.py (versions recorded in the file and pinned in
//! .ci/requirements-analysis.txt).

use ndarray::Array2;
use neuroscope::analysis::{
    cluster::{self, Agglomerative, Dbscan, GaussianMixture, Hdbscan, KMeans, Linkage, Optics},
    dimensionality, metrics,
    pca::{Pca, Solver},
    reduce::{Isomap, Mds, Nmf, TruncatedSvd},
    rsa::{self, Correlation, Metric},
};
use serde_json::Value;
use std::sync::OnceLock;

fn fixture() -> &'static Value {
    static F: OnceLock<Value> = OnceLock::new();
    F.get_or_init(|| {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/analysis/parity.json"
        );
        serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
    })
}

fn mat(v: &Value) -> Array2<f64> {
    let rows = v.as_array().expect("rows");
    let n = rows.len();
    let p = rows[0].as_array().expect("row").len();
    Array2::from_shape_fn((n, p), |(i, j)| rows[i][j].as_f64().expect("float"))
}
fn vecf(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_f64().expect("float"))
        .collect()
}
fn veci(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}
fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= abs + rel * b.abs()
}
fn assert_all_close(a: &[f64], b: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            close(*x, *y, rel, abs),
            "{what}[{i}]: ours {x} vs reference {y}"
        );
    }
}
/// Same partition up to renaming of the labels (noise -1 must match exactly).
fn same_partition(a: &[i64], b: &[i64]) -> bool {
    cluster::canonical_labels(a) == cluster::canonical_labels(b)
        && a.iter().zip(b).all(|(x, y)| (*x < 0) == (*y < 0))
}

#[test]
fn pca_ratios_match_sklearn() {
    let f = &fixture()["pca"];
    for case in ["wide", "tall"] {
        let x = mat(&f[case]["x"]);
        for solver in [Solver::Auto, Solver::Full, Solver::Svd] {
            let p = Pca::new().solver(solver).fit(&x).unwrap();
            let want = vecf(&f[case]["ratio"]);
            // 1e-5 relative on every component that carries variance; the rank-deficient tail is ~1e-33
            assert_all_close(
                &p.explained_variance_ratio().to_vec(),
                &want,
                1e-5,
                1e-14,
                &format!("{case} {solver:?}"),
            );
            let total: f64 = p.explained_variance_ratio().sum();
            assert!(
                (total - 1.0).abs() < 1e-10,
                "ratios over all components sum to 1: {total}"
            );
        }
    }
    let x = mat(&f["wide"]["x"]);
    let p = Pca::new().fit(&x).unwrap();
    assert_all_close(
        &p.explained_variance().to_vec(),
        &vecf(&f["wide"]["variance"]),
        1e-5,
        1e-12,
        "variance",
    );
    // components, including sklearn's sign convention
    let p3 = Pca::new()
        .n_components(3)
        .solver(Solver::Full)
        .fit(&x)
        .unwrap();
    let want = mat(&f["wide"]["components3"]);
    for (a, b) in p3.components().iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-7, "component entry {a} vs {b}");
    }
    // ratio of a truncated fit is still the share of TOTAL variance
    assert_all_close(
        &p3.explained_variance_ratio().to_vec(),
        &vecf(&f["wide"]["ratio"])[..3],
        1e-5,
        0.0,
        "k=3 ratio",
    );
    assert_eq!(
        p.n_components_for(0.8).unwrap() as u64,
        f["wide"]["n_for_80"].as_u64().unwrap()
    );
    assert_eq!(
        Pca::new().variance(0.8).fit(&x).unwrap().n_components() as u64,
        f["wide"]["n_for_80"].as_u64().unwrap()
    );
    // f32 input gives the same answer to f32 precision
    let p32 = Pca::new().fit(&x.mapv(|v| v as f32)).unwrap();
    assert_all_close(
        &p32.explained_variance_ratio().to_vec()[..10],
        &p.explained_variance_ratio().to_vec()[..10],
        1e-5,
        0.0,
        "f32",
    );
}

#[test]
fn randomized_pca_matches_sklearn_and_is_seeded() {
    let f = &fixture()["pca"]["randomized"];
    let x = mat(&f["x"]);
    let a = Pca::new()
        .n_components(10)
        .solver(Solver::Randomized)
        .seed(4)
        .fit(&x)
        .unwrap();
    assert_all_close(
        &a.explained_variance_ratio().to_vec(),
        &vecf(&f["ratio"]),
        1e-5,
        0.0,
        "randomized",
    );
    let b = Pca::new()
        .n_components(10)
        .solver(Solver::Randomized)
        .seed(4)
        .fit(&x)
        .unwrap();
    assert_eq!(a.components(), b.components(), "same seed, same bits");
}

/// float32 data is decomposed in float32, as scikit-learn does (its float32 fit is the
/// reference); the mean is the float64 path's to the bit, the rest agrees to float32's digits.
#[test]
fn randomized_pca_of_float32_data_matches_sklearns_float32_fit() {
    let f = &fixture()["pca"]["randomized"];
    let x = mat(&f["x"]);
    let x32 = x.mapv(|v| v as f32);
    let fit = |solver| {
        Pca::new()
            .n_components(10)
            .solver(solver)
            .seed(4)
            .fit(&x32)
            .unwrap()
    };
    let a = fit(Solver::Randomized);
    assert_all_close(
        &a.explained_variance_ratio().to_vec(),
        &vecf(&f["ratio32"]),
        1e-5,
        0.0,
        "randomized float32",
    );
    let wide = Pca::new()
        .n_components(10)
        .solver(Solver::Randomized)
        .seed(4)
        .fit(&x32.mapv(|v| v as f64))
        .unwrap();
    assert_eq!(a.mean(), wide.mean(), "the same column sums");
    assert_ne!(
        a.explained_variance_ratio(),
        wide.explained_variance_ratio(),
        "float32 products round differently from float64 ones"
    );
    assert!((a.total_variance() / wide.total_variance() - 1.0).abs() < 1e-13);
    for k in 0..10 {
        let cos = a.components().row(k).dot(&wide.components().row(k));
        assert!(
            cos > 1.0 - 1e-5,
            "component {k}: cos {cos} with the float64 fit"
        );
    }
    assert_eq!(a.solver(), Solver::Randomized);
    let again = fit(Solver::Randomized);
    assert_eq!(a.components(), again.components(), "same seed, same bits");
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = single.install(|| fit(Solver::Randomized));
    assert_eq!(a.components(), one.components(), "same bits on one thread");
    assert_eq!(a.total_variance(), one.total_variance());
    // what Auto picks for a few components of a large matrix, float32 included
    let big = ndarray::Array2::from_shape_fn((600, 40), |(i, j)| x32[[i % 200, j]]);
    let auto = Pca::new().n_components(3).seed(4).fit(&big).unwrap();
    assert_eq!(auto.solver(), Solver::Randomized);
    // the float32 path refuses what the float64 one does, with the same message
    let mut bad = big.clone();
    bad[[7, 3]] = f32::NAN;
    bad[[9, 1]] = f32::INFINITY;
    let e = Pca::new()
        .n_components(3)
        .fit(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("non-finite value (NaN) at row 7, column 3"),
        "{e}"
    );
    let wide = Pca::new()
        .n_components(3)
        .fit(&bad.mapv(|v| v as f64))
        .unwrap_err()
        .to_string();
    assert_eq!(e, wide);
}

#[test]
fn pca_transform_round_trips() {
    let x = mat(&fixture()["pca"]["tall"]["x"]);
    let p = Pca::new().fit(&x).unwrap();
    let back = p.inverse_transform(&p.transform(&x).unwrap()).unwrap();
    assert!(back.iter().zip(x.iter()).all(|(a, b)| (a - b).abs() < 1e-9));
    assert!(p
        .transform(&Array2::<f64>::zeros((2, 3)))
        .unwrap_err()
        .to_string()
        .contains("N x 20"));
}

#[test]
fn rsa_first_and_second_order_match_numpy_scipy() {
    let f = &fixture()["rsa"];
    let layers: Vec<Array2<f64>> = f["layers"].as_array().unwrap().iter().map(mat).collect();
    let mut first = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let s = rsa::similarity(l, Metric::Pearson).unwrap();
        let want = mat(&f["pearson"][i]);
        assert_all_close(
            s.as_slice().unwrap(),
            want.as_slice().unwrap(),
            1e-9,
            1e-12,
            "corrcoef",
        );
        first.push(s);
    }
    let cos = rsa::similarity(&layers[0], Metric::Cosine).unwrap();
    assert_all_close(
        cos.as_slice().unwrap(),
        mat(&f["cosine0"]).as_slice().unwrap(),
        1e-9,
        1e-12,
        "cosine",
    );
    let euc = rsa::similarity(&layers[0], Metric::Euclidean).unwrap();
    assert_all_close(
        euc.as_slice().unwrap(),
        mat(&f["euclidean0"]).as_slice().unwrap(),
        1e-9,
        1e-12,
        "euclidean",
    );
    for (method, key) in [
        (Correlation::Spearman, "spearman"),
        (Correlation::Kendall, "kendall"),
        (Correlation::Pearson, "pearson2"),
    ] {
        let so = rsa::second_order(&first, method).unwrap();
        let want = mat(&f[key]);
        assert_all_close(
            so.as_slice().unwrap(),
            want.as_slice().unwrap(),
            1e-6,
            1e-9,
            key,
        );
    }
    let (a, b) = (vecf(&f["tied"]["a"]), vecf(&f["tied"]["b"]));
    assert!(
        close(
            rsa::kendall_tau_b(&a, &b).unwrap(),
            f["tied"]["kendall"].as_f64().unwrap(),
            1e-9,
            1e-12
        ),
        "tau-b with ties"
    );
    assert!(
        close(
            rsa::spearman(&a, &b).unwrap(),
            f["tied"]["spearman"].as_f64().unwrap(),
            1e-9,
            1e-12
        ),
        "spearman with ties"
    );
    assert!(
        close(
            rsa::pearson(&a, &b).unwrap(),
            f["tied"]["pearson"].as_f64().unwrap(),
            1e-9,
            1e-12
        ),
        "pearson"
    );
    let c01 = rsa::cka_linear(&layers[0], &layers[1]).unwrap();
    assert!(
        close(c01, f["cka_linear01"].as_f64().unwrap(), 1e-9, 1e-12),
        "linear CKA {c01}"
    );
    let c02 = rsa::cka_linear(&layers[0], &layers[2]).unwrap();
    assert!(close(c02, f["cka_linear02"].as_f64().unwrap(), 1e-9, 1e-12));
    let r01 = rsa::cka_rbf(&layers[0], &layers[1], 1.0).unwrap();
    assert!(
        close(r01, f["cka_rbf01"].as_f64().unwrap(), 1e-9, 1e-12),
        "rbf CKA {r01}"
    );
}

#[test]
fn label_scores_match_sklearn_to_1e9() {
    let f = &fixture()["scores"];
    let x = mat(&f["x"]);
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (t, p) = (veci(&case["true"]), veci(&case["pred"]));
        let check = |what: &str, ours: f64| {
            let want = case[what].as_f64().unwrap();
            assert!(
                (ours - want).abs() <= 1e-9,
                "{name} {what}: ours {ours} vs sklearn {want}"
            );
        };
        check("ari", metrics::adjusted_rand_score(&t, &p).unwrap());
        check("rand", metrics::rand_score(&t, &p).unwrap());
        check("ami", metrics::adjusted_mutual_info_score(&t, &p).unwrap());
        check(
            "nmi",
            metrics::normalized_mutual_info_score(&t, &p).unwrap(),
        );
        check("mi", metrics::mutual_info_score(&t, &p).unwrap());
        check("homogeneity", metrics::homogeneity_score(&t, &p).unwrap());
        check("completeness", metrics::completeness_score(&t, &p).unwrap());
        check("v_measure", metrics::v_measure_score(&t, &p).unwrap());
        check(
            "fowlkes_mallows",
            metrics::fowlkes_mallows_score(&t, &p).unwrap(),
        );
        check("silhouette", metrics::silhouette_score(&x, &p).unwrap());
        check(
            "calinski_harabasz",
            metrics::calinski_harabasz_score(&x, &p).unwrap(),
        );
        check(
            "davies_bouldin",
            metrics::davies_bouldin_score(&x, &p).unwrap(),
        );
        let c = metrics::contingency_matrix(&t, &p).unwrap();
        let want = mat(&case["contingency"]);
        assert!(
            c.iter().zip(want.iter()).all(|(a, b)| *a as f64 == *b),
            "{name} contingency"
        );
    }
}

#[test]
fn embedding_quality_matches_sklearn() {
    let f = &fixture()["embedding"];
    let (hi, lo) = (mat(&f["hi"]), mat(&f["lo"]));
    let t5 = metrics::trustworthiness(&hi, &lo, 5).unwrap();
    assert!(
        (t5 - f["trust5"].as_f64().unwrap()).abs() < 1e-12,
        "trustworthiness k=5 {t5}"
    );
    let t10 = metrics::trustworthiness(&hi, &lo, 10).unwrap();
    assert!(
        (t10 - f["trust10"].as_f64().unwrap()).abs() < 1e-12,
        "trustworthiness k=10 {t10}"
    );
    let acc = metrics::knn_accuracy(&lo, &veci(&f["labels"]), 5).unwrap();
    assert!(
        (acc - f["knn5"].as_f64().unwrap()).abs() < 1e-12,
        "knn accuracy {acc}"
    );
}

#[test]
fn dbscan_and_agglomerative_equal_sklearn_up_to_relabelling() {
    let f = &fixture()["cluster"];
    let x = mat(&f["x"]);
    let db = Dbscan::new().eps(1.5).min_samples(5).fit(&x).unwrap();
    assert!(
        same_partition(db.labels(), &veci(&f["dbscan"])),
        "DBSCAN eps 1.5"
    );
    let db = Dbscan::new().fit(&x).unwrap();
    assert!(
        same_partition(db.labels(), &veci(&f["dbscan_default"])),
        "DBSCAN defaults"
    );
    for (l, key) in [
        (Linkage::Ward, "agg_ward"),
        (Linkage::Average, "agg_average"),
        (Linkage::Complete, "agg_complete"),
        (Linkage::Single, "agg_single"),
    ] {
        let a = Agglomerative::new(4).linkage(l).fit(&x).unwrap();
        assert!(same_partition(a.labels(), &veci(&f[key])), "{key}");
    }
}

#[test]
fn seeded_and_density_clusterings_agree_with_sklearn() {
    let f = &fixture()["cluster"];
    let x = mat(&f["x"]);
    let ari = |a: &[i64], key: &str| metrics::adjusted_rand_score(a, &veci(&f[key])).unwrap();
    let km = KMeans::new(4).seed(0).fit(&x).unwrap();
    assert!(
        ari(km.labels(), "kmeans") >= 0.99,
        "k-means ARI {}",
        ari(km.labels(), "kmeans")
    );
    let gm = GaussianMixture::new(4).seed(0).fit(&x).unwrap();
    assert!(
        ari(gm.labels(), "gmm") >= 0.99,
        "GMM ARI {}",
        ari(gm.labels(), "gmm")
    );
    let hd = Hdbscan::new().fit(&x).unwrap();
    assert!(
        same_partition(hd.labels(), &veci(&f["hdbscan"])),
        "HDBSCAN ARI {}",
        ari(hd.labels(), "hdbscan")
    );
    let op = Optics::new().fit(&x).unwrap();
    let want_reach: Vec<f64> = f["optics_reach"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::INFINITY))
        .collect();
    let ours: Vec<f64> = op.reachability().to_vec();
    for (a, b) in ours.iter().zip(&want_reach) {
        assert!(
            (a.is_infinite() && b.is_infinite()) || (a - b).abs() < 1e-9,
            "OPTICS reachability {a} vs {b}"
        );
    }
    assert!(
        same_partition(op.labels(), &veci(&f["optics"])),
        "OPTICS ARI {}",
        ari(op.labels(), "optics")
    );
}

#[test]
fn seeded_clusterings_are_reproducible() {
    let x = mat(&fixture()["cluster"]["x"]);
    let a = KMeans::new(5).seed(7).fit(&x).unwrap();
    let b = KMeans::new(5).seed(7).fit(&x).unwrap();
    assert_eq!(a.labels(), b.labels());
    assert_eq!(a.cluster_centers(), b.cluster_centers());
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let c = single.install(|| KMeans::new(5).seed(7).fit(&x).unwrap());
    assert_eq!(
        a.cluster_centers(),
        c.cluster_centers(),
        "same bits on one thread"
    );
}

#[test]
fn other_reductions_match_sklearn() {
    let f = &fixture()["reduce"];
    let d = mat(&f["digits300"]);
    let ts = TruncatedSvd::new(5).seed(0).fit(&d).unwrap();
    assert_all_close(
        &ts.singular_values().to_vec(),
        &vecf(&f["tsvd_singular"]),
        1e-6,
        0.0,
        "TruncatedSVD singular values",
    );
    assert_all_close(
        &ts.explained_variance_ratio().to_vec(),
        &vecf(&f["tsvd_ratio"]),
        1e-5,
        0.0,
        "TruncatedSVD ratio",
    );
    let nmf = Nmf::new(5).max_iter(400).fit(&d).unwrap();
    let want = f["nmf_err"].as_f64().unwrap();
    assert!(
        (nmf.reconstruction_err() - want).abs() / want < 0.01,
        "NMF error {} vs {want}",
        nmf.reconstruction_err()
    );
    let iso = Isomap::new().n_neighbors(12).fit_transform(&d).unwrap();
    let want = mat(&f["isomap"]);
    for (a, b) in iso.iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "Isomap {a} vs {b}");
    }
    let d100 = d.slice(ndarray::s![..100, ..]).to_owned();
    let mds = Mds::new().fit(&d100).unwrap();
    let want = f["mds_stress"].as_f64().unwrap();
    assert!(
        (mds.stress() - want).abs() / want < 1e-6,
        "MDS stress {} vs {want}",
        mds.stress()
    );
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let mut x = Array2::<f64>::zeros((10, 3));
    x[[4, 1]] = f64::NAN;
    let e = Pca::new().fit(&x).unwrap_err().to_string();
    assert!(e.contains("row 4, column 1"), "{e}");
    x[[4, 1]] = f64::INFINITY;
    assert!(KMeans::new(2).fit(&x).is_err());
    assert!(Dbscan::new().fit(&x).is_err());
    // too few samples
    let one = Array2::<f64>::zeros((1, 3));
    assert!(Pca::new()
        .fit(&one)
        .unwrap_err()
        .to_string()
        .contains("at least 2 rows"));
    assert!(KMeans::new(3)
        .fit(&Array2::<f64>::zeros((2, 2)))
        .unwrap_err()
        .to_string()
        .contains("n_clusters=3"));
    // constant stimulus: correlation undefined
    let mut acts = Array2::from_shape_fn((4, 5), |(i, j)| (i * j) as f64);
    acts.row_mut(0).fill(1.0);
    assert!(rsa::similarity(&acts, Metric::Pearson)
        .unwrap_err()
        .to_string()
        .contains("stimulus 0"));
    // one label only: silhouette undefined
    let y = Array2::from_shape_fn((6, 2), |(i, j)| (i + j) as f64);
    assert!(metrics::silhouette_score(&y, &[0, 0, 0, 0, 0, 0])
        .unwrap_err()
        .to_string()
        .contains("valid values are 2"));
    // one-sample classes: each sample its own label
    assert!(metrics::silhouette_score(&y, &[0, 1, 2, 3, 4, 5]).is_err());
    // mismatched lengths
    assert!(metrics::adjusted_rand_score(&[0, 1], &[0])
        .unwrap_err()
        .to_string()
        .contains("2 entries"));
    // duplicates break TwoNN with a message, not a NaN
    let dup = Array2::from_shape_fn((10, 2), |(i, _)| (i / 2) as f64);
    assert!(dimensionality::two_nn(&dup)
        .unwrap_err()
        .to_string()
        .contains("duplicate"));
    // NMF refuses negatives
    assert!(Nmf::new(1)
        .fit(&Array2::from_elem((3, 3), -1.0))
        .unwrap_err()
        .to_string()
        .contains("non-negative"));
    // second-order RSA on mismatched stimuli
    assert!(rsa::second_order(&[Array2::eye(4), Array2::eye(5)], Correlation::Spearman).is_err());
    // k-means with an empty cluster: relocation, still k clusters and no NaN
    let pts = Array2::from_shape_fn((6, 1), |(i, _)| if i < 5 { 0.0 } else { 1.0 });
    let km = KMeans::new(3).seed(1).fit(&pts).unwrap();
    assert!(km.cluster_centers().iter().all(|v| v.is_finite()));
}

#[test]
fn intrinsic_dimension_estimates() {
    let mut r = neuroscope::rng::Rng::new(3);
    // 2-D uniform square embedded linearly in 6-D
    let z = Array2::from_shape_fn((1500, 2), |_| r.uniform());
    let x = Array2::from_shape_fn((1500, 6), |(i, j)| {
        z[[i, 0]] * (j as f64 - 2.0) + z[[i, 1]] * (1.0 + (j % 2) as f64)
    });
    let d = dimensionality::two_nn(&x).unwrap();
    assert!((d - 2.0).abs() < 0.15, "TwoNN on a plane: {d}");
    assert_eq!(dimensionality::components_for(&x, 0.999).unwrap(), 2);
    let iso = Array2::from_shape_fn((2000, 5), |_| r.normal());
    let pr = dimensionality::participation_ratio(&iso).unwrap();
    assert!(
        (pr - 5.0).abs() < 0.2,
        "isotropic 5-D participation ratio {pr}"
    );
}

#[cfg(feature = "cli")]
#[test]
fn cli_pca_cluster_score_rsa() {
    use neuroscope::io::npy;
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_neuroscope");
    let dir = std::env::temp_dir().join(format!("neuroscope-cli-analysis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = &fixture()["cluster"];
    let x = mat(&f["x"]);
    let xp = dir.join("x.npy");
    npy::write_f64(&xp, &x.clone().into_dyn()).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let evr = dir.join("evr.npy");
    let (ok, out) = run(&[
        "pca",
        "--input",
        xp.to_str().unwrap(),
        "--out",
        evr.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let ratios = npy::read_f64(&evr).unwrap();
    let want = Pca::new().fit(&x).unwrap();
    assert_eq!(
        ratios.as_slice().unwrap(),
        want.explained_variance_ratio().as_slice().unwrap()
    );
    let lab = dir.join("labels.npy");
    let (ok, out) = run(&[
        "cluster",
        "--method",
        "dbscan",
        "--eps",
        "1.5",
        "--input",
        xp.to_str().unwrap(),
        "--out",
        lab.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(same_partition(
        &npy::read_i64(&lab).unwrap(),
        &veci(&f["dbscan"])
    ));
    let truth = dir.join("truth.npy");
    npy::write_i64(&truth, &veci(&f["labels"])).unwrap();
    let (ok, out) = run(&[
        "score",
        "--metric",
        "ari",
        "--true",
        truth.to_str().unwrap(),
        "--pred",
        lab.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let v: f64 = out.trim().parse().unwrap();
    assert_eq!(
        v,
        metrics::adjusted_rand_score(&veci(&f["labels"]), &veci(&f["dbscan"])).unwrap()
    );
    let (ok, out) = run(&[
        "cluster",
        "--method",
        "spectral",
        "--input",
        xp.to_str().unwrap(),
        "--out",
        lab.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("kmeans, dbscan"), "{out}");
    // rsa on a recording file
    let layers: Vec<Array2<f64>> = fixture()["rsa"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(mat)
        .collect();
    let rec = neuroscope::record::Recording::from_layers(
        layers
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("layer{i}"), l.mapv(|v| v as f32).into_dyn()))
            .collect(),
    )
    .unwrap();
    let acts = dir.join("acts.safetensors");
    rec.save_safetensors(&acts).unwrap();
    let rsa_out = dir.join("rsa.safetensors");
    let (ok, out) = run(&[
        "rsa",
        "--acts",
        acts.to_str().unwrap(),
        "--out",
        rsa_out.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let t = neuroscope::io::tensors::Tensors::load(&rsa_out).unwrap();
    assert_eq!(t.metadata["layers"], r#"["layer0","layer1","layer2"]"#);
    let so = t.f64("second_order").unwrap();
    let want = mat(&fixture()["rsa"]["spearman"]);
    assert!(
        so.iter()
            .zip(want.iter())
            .all(|(a, b)| (a - b).abs() < 1e-5),
        "second order from f32 activations"
    );
    assert!(t.arrays.contains_key("first_order/layer1"));
    let (ok, out) = run(&[
        "rsa",
        "--acts",
        acts.to_str().unwrap(),
        "--out",
        rsa_out.to_str().unwrap(),
        "--layers",
        "layer0,fc9",
    ]);
    assert!(!ok && out.contains("layer0, layer1, layer2"), "{out}");
}

#[test]
fn npy_f64_reads_fortran_order_as_numpy_means_it() {
    // what np.save writes for a Fortran-ordered 2 x 3 float64 array [[1, 2, 3], [4, 5, 6]]
    let mut head = String::from("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }");
    while (10 + head.len() + 1) % 64 != 0 {
        head.push(' ');
    }
    head.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(head.len() as u16).to_le_bytes());
    bytes.extend_from_slice(head.as_bytes());
    for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let p = std::env::temp_dir().join(format!("neuroscope-fortran-{}.npy", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    let a = neuroscope::io::npy::read_f64(&p).unwrap();
    assert_eq!(
        a,
        ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn()
    );
}

#[test]
fn column_major_and_strided_inputs_work_everywhere() {
    // a transposed view is column-major: every entry point must copy it to row-major itself
    let x = mat(&fixture()["cluster"]["x"]);
    let xt = x.t().as_standard_layout().into_owned(); // 5 x 300, row-major
    let view = xt.t(); // 300 x 5, column-major view
    assert!(view.as_slice().is_none());
    let a = KMeans::new(4).seed(0).fit(&view).unwrap();
    let b = KMeans::new(4).seed(0).fit(&x).unwrap();
    assert_eq!(a.labels(), b.labels());
    assert_eq!(
        Pca::new().fit(&view).unwrap().explained_variance_ratio(),
        Pca::new().fit(&x).unwrap().explained_variance_ratio()
    );
    assert_eq!(
        rsa::similarity(&view.slice(ndarray::s![..20, ..]), Metric::Pearson).unwrap(),
        rsa::similarity(&x.slice(ndarray::s![..20, ..]), Metric::Pearson).unwrap()
    );
    assert!(Dbscan::new().eps(1.5).fit(&view).is_ok());
    let e = neuroscope::analysis::embed::Umap::new()
        .n_epochs(20)
        .fit(&view.slice(ndarray::s![..100, ..]))
        .unwrap();
    assert_eq!(e.embedding().nrows(), 100);
}

/// Constant and rank-deficient data (a silent layer, duplicated units, fewer samples than
/// probes) through the randomized solver in both precisions: no error, the exact solver's
/// numbers.
#[test]
fn randomized_pca_of_degenerate_data() {
    let zeros = ndarray::Array2::<f32>::zeros((600, 4));
    for fit in [
        Pca::new()
            .n_components(2)
            .solver(Solver::Randomized)
            .fit(&zeros),
        Pca::new()
            .n_components(2)
            .solver(Solver::Randomized)
            .fit(&zeros.mapv(|v| v as f64)),
    ] {
        assert_eq!(
            fit.unwrap().explained_variance_ratio().to_vec(),
            vec![0.0, 0.0]
        );
    }
    // two independent columns, copied into six, and two zero columns
    let x = ndarray::Array2::from_shape_fn((700, 8), |(i, j)| match j % 4 {
        0 => ((i * 7) % 13) as f32,
        1 => ((i * 5) % 11) as f32 * 0.5,
        2 => 0.0,
        _ => ((i * 7) % 13) as f32,
    });
    let exact = Pca::new()
        .n_components(2)
        .solver(Solver::Full)
        .fit(&x.mapv(|v| v as f64))
        .unwrap();
    for n in [700, 3] {
        let rows = x.slice(ndarray::s![..n, ..]).to_owned();
        let exact = if n == 700 {
            exact.clone()
        } else {
            Pca::new()
                .n_components(2)
                .solver(Solver::Full)
                .fit(&rows.mapv(|v| v as f64))
                .unwrap()
        };
        for (got, tol) in [
            (
                Pca::new()
                    .n_components(2)
                    .solver(Solver::Randomized)
                    .fit(&rows)
                    .unwrap(),
                1e-5,
            ),
            (
                Pca::new()
                    .n_components(2)
                    .solver(Solver::Randomized)
                    .fit(&rows.mapv(|v| v as f64))
                    .unwrap(),
                1e-12,
            ),
        ] {
            assert_all_close(
                &got.explained_variance_ratio().to_vec(),
                &exact.explained_variance_ratio().to_vec(),
                tol,
                tol,
                "degenerate",
            );
        }
    }
}
