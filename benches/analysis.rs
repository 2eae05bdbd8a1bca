//! Benchmark: the analysis steps of the seeds on the inputs `bench/sklearn_analysis.py` writes to
//! target/bench-data/ (run it first; `bench/run_analysis.sh` runs both side by side).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench analysis`

use neuroscope::analysis::{
    cluster::{Dbscan, KMeans},
    metrics,
    pca::{Pca, Solver},
    rsa::{similarity, Metric},
};
use neuroscope::io::npy;

mod common;
use common::best;

fn mat(name: &str) -> ndarray::Array2<f32> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name);
    let a = npy::read(&p)
        .unwrap_or_else(|e| panic!("{e}: run `python bench/sklearn_analysis.py` first"));
    let n = a.shape()[0];
    let f = a.len() / n;
    a.into_shape_with_order((n, f)).expect("2-D")
}

fn main() -> neuroscope::Result<()> {
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let threads = rayon::current_num_threads();
    let acts = mat("acts_1000x9216.npy");
    let conv = mat("conv1_64x290400.npy");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let blobs = npy::read_f64(dir.join("blobs_10000x50.npy"))?
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    let labels = npy::read_i64(dir.join("blobs_labels.npy"))?;

    let (s, p) = best(repeats, || {
        Pca::new().solver(Solver::Full).fit(&acts).expect("pca")
    });
    println!("{{\"task\": \"pca_full_1000x9216\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"evr0\": {}, \"threads\": {threads}}}", p.explained_variance_ratio()[0]);
    let (s, p) = best(repeats, || {
        Pca::new()
            .n_components(50)
            .solver(Solver::Randomized)
            .seed(0)
            .fit(&acts)
            .expect("pca")
    });
    println!("{{\"task\": \"pca_randomized50_1000x9216\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"evr0\": {}, \"threads\": {threads}}}", p.explained_variance_ratio()[0]);
    let (s, c) = best(repeats, || {
        similarity(&conv, Metric::Pearson).expect("corr")
    });
    println!("{{\"task\": \"corrcoef_64x290400\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"c01\": {}, \"threads\": {threads}}}", c[[0, 1]]);
    let (s, l) = best(repeats, || {
        Dbscan::new()
            .eps(9.0)
            .min_samples(5)
            .fit(&blobs)
            .expect("dbscan")
            .labels()
            .to_vec()
    });
    println!(
        "{{\"task\": \"dbscan_10000x50\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"ari\": {}, \"clusters\": {}, \"threads\": {threads}}}",
        metrics::adjusted_rand_score(&labels, &l)?,
        neuroscope::analysis::cluster::count_clusters(&l)
    );
    let (s, l) = best(repeats, || {
        KMeans::new(10)
            .seed(0)
            .fit(&blobs)
            .expect("kmeans")
            .labels()
            .to_vec()
    });
    println!("{{\"task\": \"kmeans_10000x50\", \"impl\": \"neuroscope\", \"best_s\": {s:.4}, \"ari\": {}, \"threads\": {threads}}}", metrics::adjusted_rand_score(&labels, &l)?);
    Ok(())
}
