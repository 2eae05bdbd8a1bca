//! Representational similarity analysis: workflow 2's matrices, and rsatoolbox's estimators,
//! comparisons and inference.
//!
//! Workflow 2: for one layer, how similar is the response to stimulus `i` to the response to
//! stimulus `j` ([`similarity`], an `n x n` matrix; [`rdm`] for dissimilarities). Second order:
//! how similar are two layers' first-order matrices ([`second_order`], Spearman on the lower
//! triangles as the seed does, or Pearson or Kendall's tau-b).
//!
//! One step further, with rsatoolbox 0.3.2's definitions and numbers (`tests/rsa.rs`):
//!
//! | rsatoolbox | here |
//! |---|---|
//! | `RDMs` | [`Rdms`] |
//! | `calc_rdm(dataset, method, descriptor, noise, cv_descriptor)` | [`CalcRdm`] (euclidean, correlation, mahalanobis, crossnobis) |
//! | `prec_from_unbalanced(dataset, descriptor, method)` | [`noise_precision`] |
//! | `compare(rdm1, rdm2, method)` | [`compare`] with a [`Comparison`] |
//! | `pool_rdm`, `boot_noise_ceiling` | [`pool_rdm`], [`noise_ceiling`] |
//! | `eval_bootstrap_pattern / _rdm / eval_bootstrap` | [`Bootstrap`] with [`BootstrapOver`] |
//! | `Result` (`get_ci`, `test_pairwise`, `summary`) | [`ModelComparison`] |
//! | `plot_model_comparison`, `show_rdm` | [`plot::model_comparison`](crate::plot::model_comparison), [`plot::rdm_grid`](crate::plot::rdm_grid), [`plot::rdm_mds`](crate::plot::rdm_mds) |
//!
//! CKA lives in [`analysis::cka`](crate::analysis::cka) (re-exported here as before).
//!
//! ```
//! use ndarray::Array2;
//! use neuroscope::analysis::rsa::{CalcRdm, Comparison, RdmMethod, compare};
//! // 6 measurements of 3 conditions in 2 runs, 4 channels
//! let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i % 3) * (j + 1)) as f64 + 0.1 * ((i * 7 + j) % 3) as f64);
//! let conditions = [0, 1, 2, 0, 1, 2];
//! let runs = [0, 0, 0, 1, 1, 1];
//! let data = CalcRdm::new(RdmMethod::Crossnobis).conditions(&conditions).runs(&runs).compute(&x)?;
//! let model = CalcRdm::new(RdmMethod::Euclidean).conditions(&conditions).compute(&x)?;
//! let r = compare(&model, &data, Comparison::Spearman)?;
//! assert!(r[[0, 0]] > 0.9);
//! # Ok::<(), neuroscope::Error>(())
//! ```
//!
//! ```
//! use ndarray::array;
//! use neuroscope::analysis::rsa::{similarity, second_order, Metric, Correlation};
//! let layer1 = array![[1.0, 2.0, 3.0], [2.0, 4.0, 6.5], [3.0, 1.0, 0.0], [0.0, 1.0, 3.0]];
//! let layer2 = layer1.mapv(|v: f64| v * v);
//! let s1 = similarity(&layer1, Metric::Pearson)?;                // np.corrcoef(layer1)
//! assert!((s1[[0, 0]] - 1.0).abs() < 1e-12);
//! let s2 = similarity(&layer2, Metric::Pearson)?;
//! let so = second_order(&[s1, s2], Correlation::Spearman)?;      // 2 x 2 between layers
//! assert_eq!(so.dim(), (2, 2));
//! # Ok::<(), neuroscope::Error>(())
//! ```

mod compare;
mod correlation;
mod estimate;
mod inference;
mod rdms;

pub use super::cka::{cka_linear, cka_matrix, cka_rbf};
pub use compare::{compare, Comparison};
pub use correlation::{kendall_tau_b, pearson, rank, spearman};
pub use estimate::{noise_precision, CalcRdm, RdmMethod, Shrinkage};
pub use inference::{
    bootstrap, noise_ceiling, pool_rdm, Bootstrap, BootstrapOver, ModelComparison,
};
pub use rdms::Rdms;

use super::{linalg, neighbors, to_f64_checked, Scalar};
use crate::data::Image;
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};

/// How first-order matrices compare stimuli.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Pearson correlation of the two response vectors (`np.corrcoef`; the seed's choice).
    Pearson,
    /// Cosine similarity (correlation without centring).
    Cosine,
    /// Euclidean distance (a DISsimilarity: 0 on the diagonal).
    Euclidean,
}

impl Metric {
    /// Parse `pearson`, `cosine` or `euclidean`.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Metric;
    /// assert_eq!(Metric::parse("cosine")?, Metric::Cosine);
    /// assert!(Metric::parse("manhattan").is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pearson" | "correlation" => Ok(Metric::Pearson),
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            _ => Err(Error::UnknownName {
                kind: "RSA metric".into(),
                name: s.into(),
                valid: "pearson, cosine, euclidean".into(),
            }),
        }
    }
}

from_str_by_parse!(Metric);

/// How second-order matrices compare layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correlation {
    /// Spearman's rank correlation (`scipy.stats.spearmanr`; the seed's choice).
    Spearman,
    /// Pearson correlation.
    Pearson,
    /// Kendall's tau-b (`scipy.stats.kendalltau`), O(m log m) per pair.
    Kendall,
}

impl Correlation {
    /// Parse `spearman`, `pearson` or `kendall`.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Correlation;
    /// assert_eq!(Correlation::parse("kendall")?, Correlation::Kendall);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "spearman" => Ok(Correlation::Spearman),
            "pearson" => Ok(Correlation::Pearson),
            "kendall" => Ok(Correlation::Kendall),
            _ => Err(Error::UnknownName {
                kind: "correlation".into(),
                name: s.into(),
                valid: "spearman, pearson, kendall".into(),
            }),
        }
    }
}

from_str_by_parse!(Correlation);

/// First-order matrix of a layer: rows of `x` are stimuli (flattened activations).
pub fn similarity<S: Data<Elem = T>, T: Scalar>(
    x: &ArrayBase<S, Ix2>,
    metric: Metric,
) -> Result<Array2<f64>> {
    if metric == Metric::Euclidean {
        let x = to_f64_checked(x, "RSA activations", 2)?;
        super::check_dense(x.nrows(), "euclidean RSA")?;
        return Ok(neighbors::pairwise_distances(&x));
    }
    let (n, p) = x.dim();
    if n < 2 || p == 0 {
        return Err(Error::Shape {
            what: "RSA activations".into(),
            expected: "at least 2 rows (stimuli) and 1 column (unit)".into(),
            got: format!("{n} x {p}"),
        });
    }
    // Large temporaries reused, as in `analysis::to_f64_checked`.
    crate::kernels::keep_freed_memory();
    // One fused pass per stimulus: widen to f64, check, centre (Pearson), scale to unit norm;
    // ROWS stimuli at a time on a thread (see `standardize_rows`; 0.057 -> 0.044 s for
    // 64 x 290,400).
    use rayon::prelude::*;
    const ROWS: usize = 4;
    let src = x.as_standard_layout();
    let src = src.as_slice().ok_or_else(|| {
        Error::InvalidArgument("internal: RSA activations not in row-major order".into())
    })?;
    let mut z = Array2::<f64>::zeros((n, p));
    let out = z
        .as_slice_mut()
        .ok_or_else(|| Error::InvalidArgument("internal: RSA array not contiguous".into()))?;
    let pearson = metric == Metric::Pearson;
    let problems: Vec<String> = out
        .par_chunks_mut(ROWS * p)
        .zip(src.par_chunks(ROWS * p))
        .enumerate()
        .flat_map_iter(|(g, (rows, s))| {
            let found: Vec<Option<Problem>> = if rows.len() == ROWS * p {
                let t: [&[T]; ROWS] = std::array::from_fn(|i| &s[i * p..(i + 1) * p]);
                standardize_rows(split_rows(rows, p), t, pearson).to_vec()
            } else {
                // the last, shorter group: one stimulus at a time
                rows.chunks_mut(p)
                    .zip(s.chunks(p))
                    .map(|(row, t)| standardize_rows([row], [t], pearson)[0])
                    .collect()
            };
            found.into_iter().enumerate().filter_map(move |(k, e)| {
                let i = g * ROWS + k;
                e.map(|e| e.describe(i, metric, &s[k * p..(k + 1) * p]))
            })
        })
        .collect();
    if let Some(msg) = problems.into_iter().next() {
        return Err(Error::InvalidArgument(msg));
    }
    let mut g = linalg::gram(&z);
    for i in 0..n {
        g[[i, i]] = 1.0;
    }
    g.mapv_inplace(|v| v.clamp(-1.0, 1.0));
    Ok(g)
}

/// Splits `rows` (`R x p` values) into its `R` rows.
fn split_rows<const R: usize>(rows: &mut [f64], p: usize) -> [&mut [f64]; R] {
    let mut rest = rows;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(p);
        rest = tail;
        head
    })
}

/// Widens `R` stimuli to f64 into `rows`, centres them (Pearson) and scales each to unit norm;
/// per stimulus the [`Problem`] that refuses it, if any.
///
/// Why `R` at a time: each stimulus's sum and sum of squares are one chain of dependent
/// additions in column order (kept so that the numbers stay those of the notebooks), bound by
/// the adder's latency; the chains of `R` stimuli side by side keep the adder busy. Each chain
/// is the single-row loop's, bit for bit.
fn standardize_rows<T: Scalar, const R: usize>(
    rows: [&mut [f64]; R],
    src: [&[T]; R],
    pearson: bool,
) -> [Option<Problem>; R] {
    let p = src[0].len();
    let mut sum = [0.0f64; R];
    for j in 0..p {
        for r in 0..R {
            let v = src[r][j].to_f64();
            rows[r][j] = v;
            sum[r] += v;
        }
    }
    let mut out = [None; R];
    // the mean to subtract: none for cosine (`v - 0.0` is `v`, signed zeros included) and for
    // a refused stimulus
    let mut mean = [0.0f64; R];
    for r in 0..R {
        if !sum[r].is_finite() {
            out[r] = Some(Problem::NonFinite);
        } else if pearson {
            mean[r] = sum[r] / p as f64;
        }
    }
    // Centre and sum the squares in one pass (the same values and order as two).
    // `Iterator::sum` of f64 folds from -0.0; the squares are never -0.0, so from 0.0 alike.
    let mut sq = [-0.0f64; R];
    for j in 0..p {
        for r in 0..R {
            let v = rows[r][j] - mean[r];
            rows[r][j] = v;
            sq[r] += v * v;
        }
    }
    for r in 0..R {
        if out[r].is_some() {
            continue;
        }
        let norm = sq[r].sqrt();
        if norm == 0.0 {
            out[r] = Some(Problem::NoNorm);
            continue;
        }
        let inv = 1.0 / norm;
        rows[r].iter_mut().for_each(|v| *v *= inv);
    }
    out
}

/// Why [`standardize_rows`] refused a stimulus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// A NaN or infinite value.
    NonFinite,
    /// A constant (Pearson) or zero (cosine) response vector.
    NoNorm,
}

impl Problem {
    /// The message for stimulus `i`, whose activations are `row`.
    fn describe<T: Scalar>(self, i: usize, metric: Metric, row: &[T]) -> String {
        let pearson = metric == Metric::Pearson;
        match self {
            Problem::NonFinite => {
                let (j, v) = row
                    .iter()
                    .map(|v| v.to_f64())
                    .enumerate()
                    .find(|(_, v)| !v.is_finite())
                    // all finite: the sum overflowed; name the first value, as before
                    .unwrap_or((0, row.first().map_or(f64::NAN, |v| v.to_f64())));
                format!("RSA activations hold a non-finite value ({v}) at row {i}, column {j}; remove or impute NaN/inf values first")
            }
            Problem::NoNorm => format!(
                "stimulus {i} has a {} response vector, so its {} with others is undefined; drop the stimulus or the silent layer",
                if pearson { "constant" } else { "zero" },
                if pearson { "correlation" } else { "cosine" }
            ),
        }
    }
}

/// Representational dissimilarity matrix: `1 - r` for Pearson and cosine, the distance for
/// euclidean.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::rsa::{rdm, Metric};
/// let d = rdm(&array![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], Metric::Pearson)?;
/// assert!((d[[0, 1]] - 2.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn rdm<S: Data<Elem = T>, T: Scalar>(
    x: &ArrayBase<S, Ix2>,
    metric: Metric,
) -> Result<Array2<f64>> {
    let s = similarity(x, metric)?;
    Ok(match metric {
        Metric::Euclidean => s,
        _ => s.mapv(|v| 1.0 - v),
    })
}

/// Entries strictly below the diagonal, row by row (`m[np.tril_indices_from(m, k=-1)]`).
///
/// ```
/// use ndarray::array;
/// let v = neuroscope::analysis::rsa::lower_triangle(&array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
/// assert_eq!(v.to_vec(), vec![4.0, 7.0, 8.0]);
/// ```
pub fn lower_triangle(m: &Array2<f64>) -> Array1<f64> {
    let n = m.nrows();
    let mut v = Vec::with_capacity(n * (n.saturating_sub(1)) / 2);
    for i in 0..n {
        for j in 0..i.min(m.ncols()) {
            v.push(m[[i, j]]);
        }
    }
    Array1::from(v)
}

/// Correlate every pair of rows of `rows` (`spearmanr(rows, axis=1)`, `np.corrcoef(rows)`, or
/// Kendall's tau-b pairwise).
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::rsa::{correlate_rows, Correlation};
/// let c = correlate_rows(&array![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], Correlation::Spearman)?;
/// assert!((c[[0, 1]] + 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn correlate_rows(rows: &Array2<f64>, method: Correlation) -> Result<Array2<f64>> {
    let k = rows.nrows();
    let data: Vec<Vec<f64>> = rows
        .rows()
        .into_iter()
        .map(|r| match method {
            Correlation::Spearman => rank(&r.to_vec()),
            _ => r.to_vec(),
        })
        .collect();
    let mut out = Array2::<f64>::eye(k);
    for i in 0..k {
        for j in 0..i {
            let v = match method {
                Correlation::Kendall => kendall_tau_b(&data[i], &data[j]),
                _ => pearson(&data[i], &data[j]),
            }
            .map_err(|e| e.context(&format!("rows {j} and {i}")))?;
            out[[i, j]] = v;
            out[[j, i]] = v;
        }
    }
    Ok(out)
}

/// Second-order matrix between layers: correlate the lower triangles (`k=-1`) of their
/// first-order matrices, as workflow 2's `spearman_corrcoef(flattened_similarity_matrices)`.
pub fn second_order(first_order: &[Array2<f64>], method: Correlation) -> Result<Array2<f64>> {
    let Some(first) = first_order.first() else {
        return Err(Error::InvalidArgument(
            "second-order RSA needs at least one first-order matrix".into(),
        ));
    };
    let n = first.nrows();
    for (i, m) in first_order.iter().enumerate() {
        if m.dim() != (n, n) {
            return Err(Error::Shape {
                what: format!("first-order matrix {i}"),
                expected: format!("{n} x {n} (same stimuli as matrix 0)"),
                got: format!("{} x {}", m.nrows(), m.ncols()),
            });
        }
    }
    if n < 3 {
        return Err(Error::InvalidArgument(format!("second-order RSA needs at least 3 stimuli (got {n}): the lower triangle must hold 2+ entries")));
    }
    let m = n * (n - 1) / 2;
    let mut rows = Array2::zeros((first_order.len(), m));
    for (i, fo) in first_order.iter().enumerate() {
        rows.row_mut(i).assign(&lower_triangle(fo));
    }
    correlate_rows(&rows, method)
}

/// Reorder rows and columns of a square matrix by `order` (`m[np.ix_(order, order)]`).
///
/// ```
/// use ndarray::array;
/// let m = neuroscope::analysis::rsa::reorder(&array![[1.0, 2.0], [3.0, 4.0]], &[1, 0])?;
/// assert_eq!(m, array![[4.0, 3.0], [2.0, 1.0]]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn reorder(m: &Array2<f64>, order: &[usize]) -> Result<Array2<f64>> {
    let n = m.nrows();
    let mut seen = vec![false; n];
    for &i in order {
        if i >= n || seen[i] {
            return Err(Error::InvalidArgument(format!(
                "reorder: {order:?} is not a permutation of 0..{n}"
            )));
        }
        seen[i] = true;
    }
    if order.len() != n {
        return Err(Error::InvalidArgument(format!(
            "reorder: {} indices for a {n} x {n} matrix",
            order.len()
        )));
    }
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        m[[order[i], order[j]]]
    }))
}

/// Stimulus order for block-structured matrices: by class (ascending), then by `feature`
/// (descending, so "high redness first" as workflow 2), then by original index.
///
/// ```
/// let order = neuroscope::analysis::rsa::order_by_class_then(&[1, 0, 1, 0], Some(&[0.1, 0.2, 0.9, 0.5]))?;
/// assert_eq!(order, vec![3, 1, 2, 0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn order_by_class_then(labels: &[usize], feature: Option<&[f64]>) -> Result<Vec<usize>> {
    if let Some(f) = feature {
        super::check_len("feature", f.len(), labels.len())?;
    }
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    idx.sort_by(|&a, &b| {
        labels[a].cmp(&labels[b]).then_with(|| match feature {
            Some(f) => f[b].total_cmp(&f[a]),
            None => std::cmp::Ordering::Equal,
        })
    });
    Ok(idx)
}

/// Mean redness of an RGB image: mean over pixels of `R - (G + B) / 2`, in the image's own value
/// units (positive for reddish images, negative for green/blue ones, 0 for grey ones).
///
/// ```
/// use neuroscope::data::Image;
/// let red = Image::new(3, 1, 1, vec![1.0, 0.0, 0.0])?;
/// assert_eq!(neuroscope::analysis::rsa::redness(&red)?, 1.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn redness(image: &Image) -> Result<f64> {
    let (c, h, w) = image.shape();
    if c != 3 {
        return Err(Error::Shape {
            what: "image for redness".into(),
            expected: "3 x H x W (RGB)".into(),
            got: format!("{c} x {h} x {w}"),
        });
    }
    let d = image.data();
    let hw = h * w;
    let s: f64 = (0..hw)
        .map(|k| d[k] as f64 - 0.5 * (d[hw + k] as f64 + d[2 * hw + k] as f64))
        .sum();
    Ok(s / hw as f64)
}

/// Workflow 2's `pick_redness_extrema`: for each class (ascending), the `per_class / 2` reddest
/// images followed by the `per_class / 2` least red. Returns indices into `images`.
///
/// ```
/// use neuroscope::data::Image;
/// let img = |r: f32| Image::new(3, 1, 1, vec![r, 0.0, 0.0]).unwrap();
/// let images = vec![img(0.1), img(0.9), img(0.5), img(0.3)];
/// let picked = neuroscope::analysis::rsa::pick_redness_extrema(&images, &[0, 0, 0, 0], 2)?;
/// assert_eq!(picked, vec![1, 0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn pick_redness_extrema(
    images: &[Image],
    labels: &[usize],
    per_class: usize,
) -> Result<Vec<usize>> {
    super::check_len("labels", labels.len(), images.len())?;
    if per_class < 2 || !per_class.is_multiple_of(2) {
        return Err(Error::InvalidArgument(format!(
            "per_class must be an even number >= 2, got {per_class}"
        )));
    }
    let red: Vec<f64> = images.iter().map(redness).collect::<Result<_>>()?;
    let mut classes: Vec<usize> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut out = Vec::new();
    for c in classes {
        let mut idx: Vec<usize> = (0..images.len()).filter(|&i| labels[i] == c).collect();
        if idx.len() < per_class {
            return Err(Error::InvalidArgument(format!(
                "class {c} has {} images, fewer than per_class = {per_class}",
                idx.len()
            )));
        }
        idx.sort_by(|&a, &b| red[b].total_cmp(&red[a]).then(a.cmp(&b)));
        out.extend_from_slice(&idx[..per_class / 2]);
        out.extend_from_slice(&idx[idx.len() - per_class / 2..]);
    }
    Ok(out)
}

/// First-order matrices of every layer of a recording and the second-order matrix between
/// them: workflow 2's whole RSA in one value.
#[derive(Debug, Clone)]
pub struct Rsa {
    /// Layer names, in the recording's order.
    pub layers: Vec<String>,
    /// One `n x n` matrix per layer.
    pub first_order: Vec<Array2<f64>>,
    /// `layers x layers` matrix.
    pub second_order: Array2<f64>,
    /// How stimuli were compared.
    pub metric: Metric,
    /// How layers were compared.
    pub correlation: Correlation,
}

impl Rsa {
    /// Run RSA over every layer of `rec` (stimuli in the recording's order; reorder the
    /// matrices afterwards with [`reorder`]).
    ///
    /// ```
    /// use neuroscope::record::Recording;
    /// use neuroscope::analysis::rsa::{Rsa, Metric, Correlation};
    /// let rec = Recording::from_layers(["conv", "fc"].iter().enumerate().map(|(k, name)| {
    ///     (name.to_string(), ndarray::ArrayD::from_shape_fn(vec![5, 4], |d| (((d[0] + 1) * (d[1] + k + 1) + d[0] * d[0]) % 7) as f32))
    /// }).collect())?;
    /// let r = Rsa::of_recording(&rec, Metric::Pearson, Correlation::Spearman)?;
    /// assert_eq!(r.second_order.dim(), (2, 2));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn of_recording(
        rec: &crate::record::Recording,
        metric: Metric,
        correlation: Correlation,
    ) -> Result<Rsa> {
        let mut first_order = Vec::new();
        let mut rows: Option<(String, usize)> = None;
        for l in &rec.layers {
            let m = rec.matrix(l)?;
            match &rows {
                Some((first, n)) if *n != m.nrows() => {
                    return Err(Error::Shape {
                        what: format!("layer {l} of the recording"),
                        expected: format!("{n} samples, as layer {first} has (the same stimuli)"),
                        got: format!("{} samples", m.nrows()),
                    })
                }
                None => rows = Some((l.clone(), m.nrows())),
                _ => {}
            }
            first_order.push(similarity(&m, metric).map_err(|e| e.context(&format!("layer {l}")))?);
        }
        let second_order = second_order(&first_order, correlation)?;
        Ok(Rsa {
            layers: rec.layers.clone(),
            first_order,
            second_order,
            metric,
            correlation,
        })
    }

    /// Save as `.safetensors`: `first_order/<layer>` and `second_order` (float64), with the
    /// layer order, metric and correlation in the metadata.
    pub fn save_safetensors(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        use crate::io::tensors::{Array, Tensors};
        let mut t = Tensors::default();
        for (l, m) in self.layers.iter().zip(&self.first_order) {
            t.insert(format!("first_order/{l}"), Array::F64(m.clone().into_dyn()));
        }
        t.insert(
            "second_order",
            Array::F64(self.second_order.clone().into_dyn()),
        );
        t.metadata
            .insert("layers".into(), crate::io::tensors::json_list(&self.layers));
        t.metadata
            .insert("metric".into(), format!("{:?}", self.metric).to_lowercase());
        t.metadata.insert(
            "correlation".into(),
            format!("{:?}", self.correlation).to_lowercase(),
        );
        t.save(path)
    }
}

#[cfg(test)]
mod standardize_tests {
    use super::*;
    use ndarray::Array2;

    /// Four stimuli side by side give each stimulus's single-row bits, and refused stimuli are
    /// reported by their own index, the first in row order.
    #[test]
    fn rows_side_by_side_are_the_single_row_loop() {
        let mut r = crate::rng::Rng::new(3);
        let p = 1003;
        let src: Vec<f32> = (0..4 * p).map(|_| r.uniform() as f32 * 5.0 - 1.0).collect();
        let mut four = vec![0.0; 4 * p];
        let res = standardize_rows::<f32, 4>(
            split_rows(&mut four, p),
            std::array::from_fn(|i| &src[i * p..(i + 1) * p]),
            true,
        );
        assert_eq!(res, [None; 4]);
        for i in 0..4 {
            let mut one = vec![0.0; p];
            standardize_rows::<f32, 1>([&mut one], [&src[i * p..(i + 1) * p]], true);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&four[i * p..(i + 1) * p]), "row {i}");
        }
        let mut x = Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f32 * 0.1);
        x[[5, 3]] = f32::NAN;
        let e = similarity(&x, Metric::Pearson).unwrap_err().to_string();
        assert!(e.contains("row 5, column 3"), "{e}");
        x.row_mut(2).fill(1.0);
        let e = similarity(&x, Metric::Pearson).unwrap_err().to_string();
        assert!(e.contains("stimulus 2 has a constant"), "{e}");
    }
}
