//! `neuroscope rdm`, `compare-rdms`, `cka` and `probe`: comparing representations with
//! rsatoolbox's and scikit-learn's definitions; each prints one number or writes one matrix.

use crate::io;
use clap::Args;
use ndarray::Array2;
use neuroscope::analysis::cka::{Cka, Kernel};
use neuroscope::analysis::probe::{LogisticRegression, Probe};
use neuroscope::analysis::rsa::{compare, CalcRdm, Comparison, RdmMethod, Rdms, Shrinkage};
use neuroscope::io::npy;
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct RdmArgs {
    /// Measurements (.npy, N x channels; higher ranks flattened), or REC.safetensors:LAYER.
    #[arg(long)]
    input: PathBuf,
    /// euclidean, correlation, mahalanobis or crossnobis (rsatoolbox's definitions).
    #[arg(long)]
    method: RdmMethod,
    /// Condition of each measurement (.npy integers); repeated conditions are averaged and the
    /// RDM's rows follow the conditions in ascending order. Default: one per row.
    #[arg(long)]
    conditions: Option<PathBuf>,
    /// Run of each measurement (.npy integers), for crossnobis.
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Noise for mahalanobis / crossnobis: a precision matrix (.npy, channels x channels), or an
    /// estimate from the residuals around the condition means: shrinkage_diag, shrinkage_eye,
    /// diag or full. Default: identity.
    #[arg(long)]
    noise: Option<String>,
    /// Subtract each pattern's mean over channels first.
    #[arg(long)]
    remove_mean: bool,
    /// Output .npy (float64, conditions x conditions).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct CompareArgs {
    /// First RDM(s) (.npy): an n x n matrix, a stack k x n x n, or upper-triangle vectors.
    #[arg(long)]
    a: PathBuf,
    /// Second RDM(s), over the same conditions.
    #[arg(long)]
    b: PathBuf,
    /// corr, spearman, rho-a, tau-a, kendall, cosine, corr_cov or cosine_cov.
    #[arg(long, default_value = "cosine")]
    method: Comparison,
}

#[derive(Args)]
pub(crate) struct CkaArgs {
    /// First representation (.npy, N x features), or REC.safetensors:LAYER.
    #[arg(long)]
    a: PathBuf,
    /// Second representation of the same N samples.
    #[arg(long)]
    b: PathBuf,
    /// Use the unbiased HSIC estimator (Song et al. 2012).
    #[arg(long)]
    unbiased: bool,
    /// linear or rbf.
    #[arg(long, default_value = "linear")]
    kernel: Kernel,
}

#[derive(Args)]
pub(crate) struct ProbeArgs {
    /// Features (.npy, N x features), or REC.safetensors:LAYER.
    #[arg(long)]
    input: PathBuf,
    /// Class of each sample (.npy integers >= 0), or REC.safetensors:labels.
    #[arg(long)]
    labels: PathBuf,
    /// Number of stratified folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Inverse L2 strength of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    /// Most L-BFGS iterations per fold.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// Do not standardise the features on each training fold.
    #[arg(long)]
    no_standardize: bool,
}

pub(crate) fn check_rdm(a: &RdmArgs) -> Result<()> {
    io::check_output(
        &a.out,
        &["npy"],
        &[Some(&a.input), a.conditions.as_ref(), a.runs.as_ref()],
    )
}

pub(crate) fn rdm(a: RdmArgs) -> Result<()> {
    let x = io::read_matrix(&a.input)?;
    let mut est = CalcRdm::new(a.method).remove_mean(a.remove_mean);
    if let Some(c) = &a.conditions {
        est = est.conditions(&io::read_labels(c)?);
    }
    if let Some(r) = &a.runs {
        est = est.runs(&io::read_labels(r)?);
    }
    match a.noise.as_deref() {
        None => {}
        Some(n) if n.ends_with(".npy") => est = est.precision(io::read_matrix(&PathBuf::from(n))?),
        Some(n) => est = est.estimate_noise(n.parse::<Shrinkage>()?),
    }
    let r = est.compute(&x)?;
    npy::write_f64(&a.out, &r.matrix(0).into_dyn())?;
    println!(
        "{} x {} {} RDM (conditions {}); wrote {}",
        r.n_conditions(),
        r.n_conditions(),
        r.measure(),
        r.conditions().join(", "),
        a.out.display()
    );
    Ok(())
}

/// RDMs from a file: `n x n` (one matrix), `k x n x n` (a stack), `k x m` or `m` (vectors).
fn read_rdms(path: &PathBuf) -> Result<Rdms> {
    let a = npy::read_f64(path)?;
    let shape = a.shape().to_vec();
    let data: Vec<f64> = a.iter().copied().collect();
    let mat = |rows: usize, cols: usize, v: &[f64]| {
        Array2::from_shape_vec((rows, cols), v.to_vec())
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    };
    let r = match shape.as_slice() {
        [m] => mat(1, *m, &data).and_then(Rdms::from_vectors),
        [n, m] if n == m => mat(*n, *n, &data).and_then(|x| Rdms::from_matrices(&[x])),
        [k, m] => mat(*k, *m, &data).and_then(Rdms::from_vectors),
        [k, n, m] if n == m => (0..*k)
            .map(|i| mat(*n, *n, &data[i * n * n..(i + 1) * n * n]))
            .collect::<Result<Vec<_>>>()
            .and_then(|mats| Rdms::from_matrices(&mats)),
        _ => Err(Error::Shape {
            what: "RDM file".into(),
            expected: "an n x n RDM, a k x n x n stack, or upper-triangle vectors".into(),
            got: format!("{shape:?}"),
        }),
    };
    r.map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))
}

pub(crate) fn compare_rdms(a: CompareArgs) -> Result<()> {
    let (x, y) = (read_rdms(&a.a)?, read_rdms(&a.b)?);
    let c = compare(&x, &y, a.method)?;
    if c.len() == 1 {
        println!("{}", c[[0, 0]]);
    } else {
        for row in c.rows() {
            let v: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            println!("{}", v.join(" "));
        }
    }
    Ok(())
}

pub(crate) fn cka(a: CkaArgs) -> Result<()> {
    let (x, y) = (io::read_matrix(&a.a)?, io::read_matrix(&a.b)?);
    println!(
        "{}",
        Cka::new()
            .kernel(a.kernel)
            .unbiased(a.unbiased)
            .compute(&x, &y)?
    );
    Ok(())
}

pub(crate) fn probe(a: ProbeArgs) -> Result<()> {
    let x = io::read_matrix(&a.input)?;
    let labels = io::read_labels(&a.labels)?;
    let y: Vec<usize> = labels
        .iter()
        .map(|&l| {
            usize::try_from(l).map_err(|_| {
                Error::InvalidArgument(format!("class labels must be >= 0, found {l}"))
            })
        })
        .collect::<Result<_>>()?;
    let model = LogisticRegression::new().c(a.c).max_iter(a.max_iter);
    let s = Probe::new()
        .folds(a.folds)
        .model(model)
        .standardize(!a.no_standardize)
        .score(&x, &y)?;
    if s.not_converged > 0 {
        eprintln!(
            "warning: L-BFGS stopped before the tolerance in {} of {} folds (raise --max-iter)",
            s.not_converged,
            s.fold_accuracies.len()
        );
    }
    println!("{}", s.mean());
    Ok(())
}
