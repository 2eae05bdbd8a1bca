//! What every command reads and checks: input matrices and labels (a `.npy` file or one tensor
//! of a recording), output paths, `--weights`, `--dataset NAME[:N]`, a model with a warning for
//! non-finite weights.

use neuroscope::io::{npy, tensors::Tensors};
use neuroscope::models::{self, Weights};
use neuroscope::{Error, Result};
use std::path::{Path, PathBuf};

/// The network and the images a command runs on: `--arch`, `--weights` / `--seed`, and
/// `--input` or `--dataset` (shared by `record` and `attribute`).
#[derive(clap::Args)]
pub(crate) struct NetInput {
    /// Architecture.
    #[arg(long)]
    pub(crate) arch: String,
    /// Weights: a .safetensors or .pth file, `pretrained` for torchvision's ImageNet weights
    /// from torch hub's cache, or `trained` for neuroscope's shipped mnist_cnn / fashion_cnn;
    /// without it, random weights from --seed.
    #[arg(long)]
    pub(crate) weights: Option<PathBuf>,
    /// Seed of random weights, of the dataset subset, and of any noise the command draws.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// An N x C x H x W float32 .npy array, used as it is (already normalised as the network
    /// expects).
    #[arg(long, conflicts_with = "dataset")]
    pub(crate) input: Option<PathBuf>,
    /// A dataset name, optionally with a seeded subset size: fashion-mnist:1000 (the network's
    /// usual transform).
    #[arg(long)]
    pub(crate) dataset: Option<String>,
}

/// `REC.safetensors:NAME`, one tensor of a file such as `neuroscope record` writes (a layer,
/// or `labels`), split into the file and the name; `None` for a plain path.
fn tensor_source(path: &Path) -> Option<(PathBuf, String)> {
    let s = path.to_str()?;
    let (file, name) = s.rsplit_once(':')?;
    (file.ends_with(".safetensors") && !name.is_empty()).then(|| (PathBuf::from(file), name.into()))
}

/// The file an input argument reads (the `.safetensors` of `REC.safetensors:NAME`).
pub(crate) fn input_file(path: &Path) -> PathBuf {
    tensor_source(path).map_or_else(|| path.to_path_buf(), |(f, _)| f)
}

/// A `.npy` file, or one tensor of a `.safetensors` (`REC.safetensors:LAYER`), as f64.
fn read_array(path: &Path) -> Result<ndarray::ArrayD<f64>> {
    match tensor_source(path) {
        Some((file, name)) => Tensors::load(&file)?.f64(&name),
        None => npy::read_f64(path),
    }
}

/// Integer labels from a `.npy` file or a `.safetensors` tensor (`REC.safetensors:labels`).
pub(crate) fn read_labels(path: &Path) -> Result<Vec<i64>> {
    match tensor_source(path) {
        Some((file, name)) => {
            let a = Tensors::load(&file)?.i64(&name)?;
            if a.ndim() != 1 {
                return Err(Error::Shape {
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
pub(crate) fn read_matrix(path: &Path) -> Result<ndarray::Array2<f64>> {
    let a = read_array(path)?;
    if a.ndim() < 2 {
        return Err(Error::Shape {
            what: format!("{}", path.display()),
            expected: "N x F (samples x features)".into(),
            got: format!("{:?}", a.shape()),
        });
    }
    let n = a.shape()[0];
    let f = a.len() / n.max(1);
    a.into_shape_with_order((n, f))
        .map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// Checks an output path before any work starts: a file name (not a folder), one of `exts`,
/// and none of the command's `inputs` (an output never replaces an input; `None`s skipped).
pub(crate) fn check_output(out: &Path, exts: &[&str], inputs: &[Option<&PathBuf>]) -> Result<()> {
    let files: Vec<PathBuf> = inputs.iter().flatten().map(|p| input_file(p)).collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    neuroscope::io::output::check_output(out, exts, &refs)
}

/// `--batch-size 0` is refused (no batch would ever be full).
pub(crate) fn check_batch(b: usize) -> Result<()> {
    if b == 0 {
        return Err(Error::InvalidArgument(
            "--batch-size 0: give at least 1".into(),
        ));
    }
    Ok(())
}

/// `--dataset NAME[:N]`: the name and the seeded subset size, if any.
pub(crate) fn dataset_spec(spec: &str) -> Result<(String, Option<usize>)> {
    match spec.split_once(':') {
        Some((name, n)) => Ok((
            name.to_string(),
            Some(n.parse::<usize>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "--dataset {spec}: the part after ':' must be a number"
                ))
            })?),
        )),
        None => Ok((spec.to_string(), None)),
    }
}

/// A comma-separated list, blanks dropped.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `--device`, parsed and announced on stderr.
pub(crate) fn device(name: &str) -> Result<neuroscope::device::Device> {
    let device = neuroscope::device::parse(name)?;
    eprintln!("device: {}", neuroscope::device::describe(&device));
    Ok(device)
}

/// `--weights`: `pretrained` (torchvision's ImageNet weights from torch hub's cache),
/// `trained` (neuroscope's shipped ones), a file, or, when absent, seeded random weights.
/// One reading for every subcommand.
pub(crate) fn weights_arg(weights: Option<PathBuf>, seed: u64) -> Weights {
    match weights {
        Some(p) if p.as_os_str() == "pretrained" => Weights::Pretrained,
        Some(p) if p.as_os_str() == "trained" => Weights::Trained,
        Some(p) => Weights::File(p),
        None => Weights::Random { seed },
    }
}

/// Builds `arch` with `--weights` (see [`weights_arg`]) and warns when the weights hold NaN or
/// infinite values (a diverged training run): every output computed from them would too.
pub(crate) fn load_model(
    arch: &str,
    weights: Option<PathBuf>,
    seed: u64,
    device: &neuroscope::device::Device,
) -> Result<models::Model> {
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
