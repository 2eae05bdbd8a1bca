//! `neuroscope pca`, `cluster`, `score` and `rsa`: analyses of recorded matrices.

use crate::io;
use clap::Args;
use neuroscope::analysis::cluster::{self, Method};
use neuroscope::analysis::{metrics, pca, rsa};
use neuroscope::io::npy;
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct PcaArgs {
    /// Input matrix (.npy, any numeric dtype, N x F; higher ranks are flattened per sample),
    /// or one layer of a recording: REC.safetensors:LAYER.
    #[arg(long)]
    input: PathBuf,
    /// Output .npy (float64) of explained variance ratios.
    #[arg(long)]
    out: PathBuf,
    /// Keep only this many components (default: all).
    #[arg(long)]
    n_components: Option<usize>,
    /// auto, full, svd or randomized.
    #[arg(long, default_value = "auto")]
    solver: pca::Solver,
    /// Seed of the randomized solver.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub(crate) struct ClusterArgs {
    /// kmeans, dbscan, hdbscan, optics, agglomerative or gmm.
    #[arg(long)]
    method: String,
    /// Input matrix (.npy, N x F), or one layer of a recording: REC.safetensors:LAYER.
    #[arg(long)]
    input: PathBuf,
    /// Output labels (.npy, int64).
    #[arg(long)]
    out: PathBuf,
    /// Number of clusters (kmeans, agglomerative) or components (gmm).
    #[arg(long)]
    n_clusters: Option<usize>,
    /// DBSCAN radius.
    #[arg(long)]
    eps: Option<f64>,
    /// DBSCAN/HDBSCAN/OPTICS min_samples.
    #[arg(long)]
    min_samples: Option<usize>,
    /// HDBSCAN min_cluster_size.
    #[arg(long)]
    min_cluster_size: Option<usize>,
    /// Agglomerative linkage: ward, average, complete, single.
    #[arg(long)]
    linkage: Option<String>,
    /// Seed (kmeans, gmm).
    #[arg(long)]
    seed: Option<u64>,
    /// Any other parameter as key=value (repeatable), e.g. --param xi=0.1.
    #[arg(long = "param")]
    params: Vec<String>,
}

#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// Score name.
    #[arg(long)]
    metric: String,
    /// True labels (.npy integers, or REC.safetensors:labels); not needed for the data-based
    /// scores.
    #[arg(long = "true")]
    truth: Option<PathBuf>,
    /// Predicted labels (.npy integers).
    #[arg(long)]
    pred: PathBuf,
    /// Data matrix for silhouette, calinski_harabasz, davies_bouldin.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct RsaArgs {
    /// Recording (.safetensors, one tensor per layer).
    #[arg(long)]
    acts: PathBuf,
    /// Output .safetensors: first_order/<layer>, second_order; layer order in metadata.
    #[arg(long)]
    out: PathBuf,
    /// First order: pearson, cosine or euclidean.
    #[arg(long, default_value = "pearson")]
    metric: rsa::Metric,
    /// Second order: spearman, pearson or kendall.
    #[arg(long, default_value = "spearman")]
    correlation: rsa::Correlation,
    /// Only these layers (comma-separated), in this order.
    #[arg(long)]
    layers: Option<String>,
}

/// `--param key=value` pairs, after the named options that map to the same keys.
pub(crate) fn key_values(
    named: Vec<(&str, Option<String>)>,
    params: &[String],
) -> Result<Vec<(String, String)>> {
    let mut kv: Vec<(String, String)> = named
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::InvalidArgument(format!("--param {p}: expected key=value")))?;
        kv.push((k.into(), v.into()));
    }
    Ok(kv)
}

pub(crate) fn check_pca(a: &PcaArgs) -> Result<()> {
    io::check_output(&a.out, &["npy"], &[Some(&a.input)])
}

pub(crate) fn pca(a: PcaArgs) -> Result<()> {
    let x = io::read_matrix(&a.input)?;
    let mut p = pca::Pca::new().solver(a.solver).seed(a.seed);
    if let Some(k) = a.n_components {
        p = p.n_components(k);
    }
    let f = p.fit(&x)?;
    npy::write_f64(&a.out, &f.explained_variance_ratio().clone().into_dyn())?;
    println!(
        "{} samples x {} features, solver {:?}, total variance {:.6e}",
        x.nrows(),
        x.ncols(),
        f.solver(),
        f.total_variance()
    );
    for share in [0.5, 0.8, 0.9, 0.95, 0.99] {
        match f.n_components_for(share) {
            Some(k) => println!("components for {:>2.0}%: {k}", share * 100.0),
            None => println!(
                "components for {:>2.0}%: more than the {} kept",
                share * 100.0,
                f.n_components()
            ),
        }
    }
    println!("wrote {} ({} ratios)", a.out.display(), f.n_components());
    Ok(())
}

pub(crate) fn check_cluster(a: &ClusterArgs) -> Result<()> {
    io::check_output(&a.out, &["npy"], &[Some(&a.input)])
}

pub(crate) fn cluster(a: ClusterArgs) -> Result<()> {
    let x = io::read_matrix(&a.input)?;
    let count_key = if a.method == "gmm" {
        "n_components"
    } else {
        "n_clusters"
    };
    let kv = key_values(
        vec![
            (count_key, a.n_clusters.map(|v| v.to_string())),
            ("eps", a.eps.map(|v| v.to_string())),
            ("min_samples", a.min_samples.map(|v| v.to_string())),
            (
                "min_cluster_size",
                a.min_cluster_size.map(|v| v.to_string()),
            ),
            ("linkage", a.linkage),
            ("seed", a.seed.map(|v| v.to_string())),
        ],
        &a.params,
    )?;
    let refs: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let m = Method::parse(&a.method, &refs)?;
    let labels = m.fit_predict(&x)?;
    npy::write_i64(&a.out, &labels)?;
    let noise = labels.iter().filter(|&&l| l < 0).count();
    println!(
        "{}: {} clusters, {} noise points of {}; wrote {}",
        m.name(),
        cluster::count_clusters(&labels),
        noise,
        labels.len(),
        a.out.display()
    );
    Ok(())
}

pub(crate) fn score(a: ScoreArgs) -> Result<()> {
    let p = io::read_labels(&a.pred)?;
    let metric = a.metric.as_str();
    let v = match metric {
        "silhouette" | "calinski_harabasz" | "davies_bouldin" => {
            let d = a.data.ok_or_else(|| {
                Error::InvalidArgument(format!("--metric {metric} needs --data X.npy"))
            })?;
            let x = io::read_matrix(&d)?;
            match metric {
                "silhouette" => metrics::silhouette_score(&x, &p)?,
                "calinski_harabasz" => metrics::calinski_harabasz_score(&x, &p)?,
                _ => metrics::davies_bouldin_score(&x, &p)?,
            }
        }
        _ => {
            let t = a.truth.ok_or_else(|| {
                Error::InvalidArgument(format!("--metric {metric} needs --true A.npy"))
            })?;
            metrics::score_by_name(metric, &io::read_labels(&t)?, &p)?
        }
    };
    println!("{v}");
    Ok(())
}

pub(crate) fn check_rsa(a: &RsaArgs) -> Result<()> {
    io::check_output(&a.out, &["safetensors"], &[Some(&a.acts)])
}

pub(crate) fn rsa(a: RsaArgs) -> Result<()> {
    let mut rec = neuroscope::record::Recording::load_safetensors(&a.acts)?;
    if let Some(ls) = a.layers {
        let want = io::list(&ls);
        rec = rec.select(&want.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    let r = rsa::Rsa::of_recording(&rec, a.metric, a.correlation)?;
    r.save_safetensors(&a.out)?;
    println!(
        "second-order {:?} between {} layers over {} stimuli:",
        r.correlation,
        r.layers.len(),
        rec.len()
    );
    let w = r.layers.iter().map(|l| l.len()).max().unwrap_or(0).max(6);
    for (i, l) in r.layers.iter().enumerate() {
        let row: Vec<String> = (0..r.layers.len())
            .map(|j| format!("{:6.3}", r.second_order[[i, j]]))
            .collect();
        println!("{l:>w$} {}", row.join(" "));
    }
    println!("wrote {}", a.out.display());
    Ok(())
}
