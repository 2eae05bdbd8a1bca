//! `neuroscope embed`: any reduction of the library's [`Reducer`] by name (t-SNE, UMAP, PCA,
//! ...), its options passed under the peers' parameter names, new samples placed into the fit.

use crate::analysis::key_values;
use crate::io;
use clap::Args;
use neuroscope::analysis::{metrics, Reducer};
use neuroscope::io::npy;
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct EmbedArgs {
    /// tsne, umap, pca, truncated_svd, fast_ica, nmf, random_projection, isomap or mds.
    #[arg(long)]
    method: String,
    /// Input matrix (.npy, N x F), or one layer of a recording: REC.safetensors:LAYER.
    #[arg(long)]
    input: PathBuf,
    /// Output coordinates (.npy, float64).
    #[arg(long)]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output dimensions.
    #[arg(long, default_value_t = 2)]
    dims: usize,
    /// t-SNE perplexity [default: 30].
    #[arg(long)]
    perplexity: Option<f64>,
    /// UMAP (and Isomap) neighbours, the point itself included [default: 15 for UMAP].
    #[arg(long)]
    neighbors: Option<usize>,
    /// UMAP min_dist [default: 0.1].
    #[arg(long)]
    min_dist: Option<f64>,
    /// UMAP metric: euclidean or cosine [default: euclidean].
    #[arg(long)]
    metric: Option<String>,
    /// Nearest-neighbour search of t-SNE and UMAP: auto (UMAP: exact below 4,096 samples, else
    /// NN-descent, as umap-learn; t-SNE: exact below 30,000), exact or nndescent.
    #[arg(long)]
    neighbor_search: Option<String>,
    /// t-SNE iterations [default: 1000].
    #[arg(long)]
    max_iter: Option<usize>,
    /// UMAP epochs [default: 500 up to 10,000 samples, else 200, as umap-learn].
    #[arg(long)]
    n_epochs: Option<usize>,
    /// Any other parameter of the method as key=value (repeatable), e.g. --param
    /// early_exaggeration=4 or --param solver=randomized.
    #[arg(long = "param")]
    params: Vec<String>,
    /// Labels (.npy, or REC.safetensors:labels) to report trustworthiness (k=10) and 5-NN
    /// accuracy against.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// New samples (.npy, same columns as --input) to place into the fitted embedding
    /// without moving it: openTSNE's `transform` for tsne, umap-learn's for umap, the
    /// projection for pca.
    #[arg(long)]
    transform: Option<PathBuf>,
    /// Where the placed samples' coordinates go (.npy, float64) [default: OUT with
    /// `-transform` added to its name].
    #[arg(long)]
    transform_out: Option<PathBuf>,
    /// cuda / cuda:N in a `cuda` build: t-SNE's nearest neighbours and optimisation (exact
    /// repulsion) on the GPU; UMAP's nearest neighbours (the same neighbours, so the same
    /// bytes as on the CPU). Without it, the CPU, so that the same seed gives the same t-SNE
    /// bytes on every machine.
    #[arg(long)]
    device: Option<String>,
}

/// The command's options under the library's parameter names (`--dims` is `n_components`),
/// only those given, so that the method refuses what it does not take.
const FLAGS: &[(&str, &str)] = &[
    ("--perplexity", "perplexity"),
    ("--neighbors", "n_neighbors"),
    ("--min-dist", "min_dist"),
    ("--metric", "metric"),
    ("--neighbor-search", "neighbor_search"),
    ("--max-iter", "max_iter"),
    ("--n-epochs", "n_epochs"),
    ("--device", "device"),
    ("--seed", "seed"),
];

/// The reduction the options describe; an option the method does not take is named as the
/// flag the user typed, with the flags (or `--param` names) the method does take.
fn reducer(a: &EmbedArgs) -> Result<Reducer> {
    let kv = key_values(
        vec![
            ("n_components", Some(a.dims.to_string())),
            ("perplexity", a.perplexity.map(|v| v.to_string())),
            ("n_neighbors", a.neighbors.map(|v| v.to_string())),
            ("min_dist", a.min_dist.map(|v| v.to_string())),
            ("metric", a.metric.clone()),
            ("neighbor_search", a.neighbor_search.clone()),
            ("max_iter", a.max_iter.map(|v| v.to_string())),
            ("n_epochs", a.n_epochs.map(|v| v.to_string())),
            ("device", a.device.clone()),
        ],
        &a.params,
    )?;
    let refs: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let flag = |param: &str| {
        FLAGS
            .iter()
            .find(|(_, p)| *p == param)
            .map_or(format!("--param {param}=..."), |(f, _)| f.to_string())
    };
    match Reducer::parse(&a.method, &refs) {
        Err(Error::UnknownName { kind, name, valid }) if kind.ends_with(" parameter") => {
            let takes: Vec<String> = valid
                .split(", ")
                .map(|p| {
                    if p == "n_components" {
                        "--dims".into()
                    } else {
                        flag(p)
                    }
                })
                .collect();
            Err(Error::InvalidArgument(format!(
                "{} is not an option of {}; it takes {}",
                flag(&name),
                a.method,
                takes.join(", ")
            )))
        }
        other => Ok(other?.seed(a.seed)),
    }
}

pub(crate) fn check(a: &EmbedArgs) -> Result<()> {
    reducer(a)?;
    let inputs = [Some(&a.input), a.labels.as_ref(), a.transform.as_ref()];
    io::check_output(&a.out, &["npy"], &inputs)?;
    if let Some(t) = &a.transform_out {
        io::check_output(t, &["npy"], &inputs)?;
        if t == &a.out {
            return Err(Error::InvalidArgument(
                "--transform-out is --out: give the placed samples their own file".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn run(a: EmbedArgs) -> Result<()> {
    let r = reducer(&a)?;
    let x = io::read_matrix(&a.input)?;
    // Read and check the new samples before the (long) fit.
    let new = match &a.transform {
        Some(p) => {
            let n = io::read_matrix(p)?;
            if n.ncols() != x.ncols() {
                return Err(Error::Shape {
                    what: format!("{} (--transform)", p.display()),
                    expected: format!("M x {} (the columns of --input)", x.ncols()),
                    got: format!("{} x {}", n.nrows(), n.ncols()),
                });
            }
            Some(n)
        }
        None => None,
    };
    let quiet = std::env::var_os("NEUROSCOPE_QUIET").is_some();
    let r = match r {
        Reducer::Tsne(t) => Reducer::Tsne(t.progress(!quiet)),
        Reducer::Umap(u) => Reducer::Umap(u.progress(!quiet)),
        r => r,
    };
    let t0 = std::time::Instant::now();
    let fitted = r.fit(&x)?;
    let secs = t0.elapsed().as_secs_f64();
    if fitted.interrupted() {
        eprintln!("interrupted: the embedding as it was when stopped");
    }
    if let (Some(search), false) = (fitted.neighbor_search(), quiet) {
        eprintln!("nearest neighbours: {search:?}");
    }
    let y = fitted.embedding();
    npy::write_f64(&a.out, &y.clone().into_dyn())?;
    println!(
        "{}: {} x {} -> {} x {} in {secs:.2} s; wrote {}",
        a.method,
        x.nrows(),
        x.ncols(),
        y.nrows(),
        y.ncols(),
        a.out.display()
    );
    if let Some(n) = &new {
        let t = std::time::Instant::now();
        let placed = fitted.transform(&x, n)?;
        let place_secs = t.elapsed().as_secs_f64();
        let path = a.transform_out.unwrap_or_else(|| {
            let stem = a.out.file_stem().map(|s| s.to_string_lossy().into_owned());
            a.out
                .with_file_name(format!("{}-transform.npy", stem.unwrap_or_default()))
        });
        npy::write_f64(&path, &placed.clone().into_dyn())?;
        println!(
            "placed {} new samples into the embedding in {place_secs:.2} s; wrote {}",
            placed.nrows(),
            path.display()
        );
    }
    if let Some(l) = a.labels {
        let l = io::read_labels(&l)?;
        println!(
            "trustworthiness (k=10): {:.4}",
            metrics::trustworthiness(&x, y, 10)?
        );
        println!("5-NN accuracy: {:.4}", metrics::knn_accuracy(y, &l, 5)?);
    }
    Ok(())
}
