//! A set of representational dissimilarity matrices over the same conditions, stored as
//! rsatoolbox stores them: one upper-triangle vector per RDM (row by row, `np.triu(k=1)`), with
//! NaN for a pair that is missing (a condition drawn twice by a bootstrap).

use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, Axis};

/// One or several RDMs over the same `n` conditions (rsatoolbox's `RDMs`).
///
/// Each RDM is a vector of the `n (n - 1) / 2` dissimilarities above the diagonal, row by row,
/// so that comparisons, pooling and bootstraps work on rows of one matrix. Conditions carry names
/// (rsatoolbox's pattern descriptor), which figures use as tick labels.
///
/// ```
/// use ndarray::array;
/// use neuroscope::analysis::rsa::Rdms;
/// let m = array![[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]];
/// let r = Rdms::from_matrices(&[m.clone()])?;
/// assert_eq!(r.vector(0).to_vec(), vec![1.0, 2.0, 3.0]);
/// assert_eq!(r.matrix(0), m);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rdms {
    vectors: Array2<f64>,
    n_conditions: usize,
    conditions: Vec<String>,
    measure: String,
}

/// The number of conditions whose upper triangle has `len` entries, if `len` is triangular.
pub(crate) fn conditions_for_pairs(len: usize) -> Option<usize> {
    let n = ((1.0 + (1.0 + 8.0 * len as f64).sqrt()) / 2.0).round() as usize;
    (n >= 2 && n * (n - 1) / 2 == len).then_some(n)
}

/// The upper triangle of a square matrix, row by row (`m[np.triu_indices(n, k=1)]`).
pub(crate) fn upper_triangle(m: &Array2<f64>) -> Array1<f64> {
    let n = m.nrows();
    let mut v = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            v.push(m[[i, j]]);
        }
    }
    Array1::from(v)
}

impl Rdms {
    /// RDMs from their upper-triangle vectors, one per row (rsatoolbox's `RDMs(dissimilarities)`).
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Rdms;
    /// let r = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0], [2.0, 2.0, 1.0]])?;
    /// assert_eq!((r.len(), r.n_conditions()), (2, 3));
    /// assert!(Rdms::from_vectors(ndarray::array![[1.0, 2.0]]).is_err()); // not n (n - 1) / 2
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn from_vectors(vectors: Array2<f64>) -> Result<Rdms> {
        let Some(n) = conditions_for_pairs(vectors.ncols()) else {
            return Err(Error::Shape {
                what: "RDM vectors".into(),
                expected:
                    "rows of n (n - 1) / 2 dissimilarities (the upper triangle) for some n >= 2"
                        .into(),
                got: format!("{} entries per row", vectors.ncols()),
            });
        };
        if vectors.nrows() == 0 {
            return Err(Error::InvalidArgument(
                "an RDM set needs at least one RDM".into(),
            ));
        }
        if vectors.iter().any(|v| v.is_infinite()) {
            return Err(Error::InvalidArgument(
                "RDM vectors hold an infinite dissimilarity; only finite values and NaN (missing) are allowed".into(),
            ));
        }
        Ok(Rdms {
            vectors,
            n_conditions: n,
            conditions: (0..n).map(|i| i.to_string()).collect(),
            measure: String::new(),
        })
    }

    /// RDMs from square matrices (their upper triangles; the matrices must be symmetric).
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Rdms;
    /// let bad = ndarray::array![[0.0, 1.0], [2.0, 0.0]];
    /// assert!(Rdms::from_matrices(&[bad]).is_err());
    /// ```
    pub fn from_matrices(matrices: &[Array2<f64>]) -> Result<Rdms> {
        let Some(first) = matrices.first() else {
            return Err(Error::InvalidArgument(
                "an RDM set needs at least one RDM".into(),
            ));
        };
        let n = first.nrows();
        let mut v = Array2::zeros((matrices.len(), n * n.saturating_sub(1) / 2));
        for (k, m) in matrices.iter().enumerate() {
            if m.dim() != (n, n) {
                return Err(Error::Shape {
                    what: format!("RDM {k}"),
                    expected: format!("{n} x {n}, as RDM 0 (the same conditions)"),
                    got: format!("{} x {}", m.nrows(), m.ncols()),
                });
            }
            for i in 0..n {
                for j in i + 1..n {
                    let (a, b) = (m[[i, j]], m[[j, i]]);
                    if a != b
                        && !(a.is_nan() && b.is_nan())
                        && (a - b).abs() > 1e-9 * a.abs().max(b.abs())
                    {
                        return Err(Error::InvalidArgument(format!(
                            "RDM {k} is not symmetric: entry ({i}, {j}) is {a}, entry ({j}, {i}) is {b}"
                        )));
                    }
                }
            }
            v.row_mut(k).assign(&upper_triangle(m));
        }
        Rdms::from_vectors(v)
    }

    /// Name the conditions (rsatoolbox's pattern descriptor; tick labels in figures).
    pub fn with_conditions<N: AsRef<str>>(mut self, names: &[N]) -> Result<Rdms> {
        if names.len() != self.n_conditions {
            return Err(Error::Shape {
                what: "condition names".into(),
                expected: format!("one per condition ({})", self.n_conditions),
                got: names.len().to_string(),
            });
        }
        self.conditions = names.iter().map(|s| s.as_ref().to_string()).collect();
        Ok(self)
    }

    /// Record how the dissimilarities were measured (`"correlation"`, `"crossnobis"`, ...).
    pub fn with_measure(mut self, measure: impl Into<String>) -> Rdms {
        self.measure = measure.into();
        self
    }

    /// How many RDMs the set holds.
    pub fn len(&self) -> usize {
        self.vectors.nrows()
    }
    /// Always false: a set holds at least one RDM.
    pub fn is_empty(&self) -> bool {
        self.vectors.nrows() == 0
    }
    /// How many conditions each RDM compares.
    pub fn n_conditions(&self) -> usize {
        self.n_conditions
    }
    /// The condition names.
    pub fn conditions(&self) -> &[String] {
        &self.conditions
    }
    /// How the dissimilarities were measured (empty when unknown).
    pub fn measure(&self) -> &str {
        &self.measure
    }
    /// All upper-triangle vectors, `len() x n (n - 1) / 2`.
    pub fn vectors(&self) -> &Array2<f64> {
        &self.vectors
    }
    /// RDM `i`'s upper-triangle vector.
    pub fn vector(&self, i: usize) -> ArrayView1<'_, f64> {
        self.vectors.row(i)
    }
    /// RDM `i` as a symmetric `n x n` matrix with a zero diagonal.
    pub fn matrix(&self, i: usize) -> Array2<f64> {
        let n = self.n_conditions;
        let v = self.vectors.row(i);
        let mut m = Array2::zeros((n, n));
        let mut k = 0;
        for a in 0..n {
            for b in a + 1..n {
                m[[a, b]] = v[k];
                m[[b, a]] = v[k];
                k += 1;
            }
        }
        m
    }

    /// The RDMs with the given indices (rsatoolbox's `subset` / `subsample` over RDMs; indices
    /// may repeat, as a bootstrap over subjects draws them).
    pub fn select(&self, indices: &[usize]) -> Result<Rdms> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!(
                "RDM index {bad} out of range: the set holds {} RDMs",
                self.len()
            )));
        }
        if indices.is_empty() {
            return Err(Error::InvalidArgument("select at least one RDM".into()));
        }
        Ok(Rdms {
            vectors: self.vectors.select(Axis(0), indices),
            ..self.clone()
        })
    }

    /// Conditions drawn with repetition (rsatoolbox's `subsample_pattern`): the conditions are
    /// taken in ascending order, a condition drawn `k` times appears `k` times, and the pairs of a
    /// condition with its own copy are NaN, because their dissimilarity (0) is trivial to predict
    /// and must not count in a comparison.
    ///
    /// ```
    /// use neuroscope::analysis::rsa::Rdms;
    /// let r = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0]])?;
    /// let s = r.subsample_conditions(&[2, 0, 2])?;   // -> conditions 0, 2, 2
    /// let v = s.vector(0);
    /// assert_eq!((v[0], v[1]), (2.0, 2.0));
    /// assert!(v[2].is_nan());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn subsample_conditions(&self, conditions: &[usize]) -> Result<Rdms> {
        let n = self.n_conditions;
        if let Some(&bad) = conditions.iter().find(|&&i| i >= n) {
            return Err(Error::InvalidArgument(format!(
                "condition index {bad} out of range: the RDMs compare {n} conditions"
            )));
        }
        if conditions.len() < 2 {
            return Err(Error::InvalidArgument(
                "a subsample needs at least 2 conditions".into(),
            ));
        }
        let mut sel = conditions.to_vec();
        sel.sort_unstable();
        let m = sel.len();
        // index of pair (a, b), a < b, in the upper-triangle vector
        let pair = |a: usize, b: usize| a * (2 * n - a - 1) / 2 + (b - a - 1);
        let mut out = Array2::zeros((self.len(), m * (m - 1) / 2));
        for (r, src) in self.vectors.rows().into_iter().enumerate() {
            let mut k = 0;
            for i in 0..m {
                for j in i + 1..m {
                    let (a, b) = (sel[i], sel[j]);
                    out[[r, k]] = if a == b { f64::NAN } else { src[pair(a, b)] };
                    k += 1;
                }
            }
        }
        Ok(Rdms {
            vectors: out,
            n_conditions: m,
            conditions: sel.iter().map(|&i| self.conditions[i].clone()).collect(),
            measure: self.measure.clone(),
        })
    }
}
