//! Benchmark: rsatoolbox's workloads (issue 28) on the inputs `bench/rsa_peers.py` writes to
//! target/bench-data/ (run it first; `bench/run_rsa.sh` runs both side by side).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench rsa`

use ndarray::Array2;
use neuroscope::analysis::rsa::{
    compare, noise_precision, CalcRdm, Comparison, RdmMethod, Shrinkage,
};
use neuroscope::io::npy;

mod common;
use common::best;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data")
}

fn mat(name: &str) -> Array2<f64> {
    npy::read_f64(dir().join(name))
        .unwrap_or_else(|e| panic!("{e}: run `python bench/rsa_peers.py` first"))
        .into_dimensionality()
        .expect("2-D")
}

fn main() -> neuroscope::Result<()> {
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let threads = rayon::current_num_threads();
    let acts = mat("rsa_acts_1000x4096.npy");
    let (s, r1) = best(repeats, || {
        CalcRdm::new(RdmMethod::Correlation)
            .compute(&acts)
            .expect("rdm")
    });
    println!("{{\"task\": \"rdm_correlation_1000x4096\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"sum\": {}, \"threads\": {threads}}}", r1.vectors().sum());
    let r2 = CalcRdm::new(RdmMethod::Euclidean).compute(&acts.mapv(f64::sqrt))?;
    let (s, v) = best(repeats, || {
        compare(&r1, &r2, Comparison::Spearman).expect("compare")
    });
    println!("{{\"task\": \"compare_spearman_1000\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"value\": {}, \"threads\": {threads}}}", v[[0, 0]]);
    let x = mat("rsa_runs_800x500.npy");
    let cond = npy::read_i64(dir().join("rsa_conditions.npy"))?;
    let runs = npy::read_i64(dir().join("rsa_run_labels.npy"))?;
    let (s, prec) = best(repeats, || {
        noise_precision(&x, &cond, Shrinkage::Diag).expect("noise")
    });
    println!("{{\"task\": \"noise_shrinkage_diag_800x500\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"trace\": {}, \"threads\": {threads}}}", prec.diag().sum());
    let given = mat("rsa_prec_500.npy");
    let est = CalcRdm::new(RdmMethod::Crossnobis)
        .conditions(&cond)
        .runs(&runs)
        .precision(given);
    let (s, r) = best(repeats, || est.compute(&x).expect("crossnobis"));
    println!("{{\"task\": \"crossnobis_4runs_200x500\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"sum\": {}, \"threads\": {threads}}}", r.vectors().sum());
    Ok(())
}
