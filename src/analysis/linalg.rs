//! The few dense linear-algebra kernels the analysis needs, on top of [`faer`].
//!
//! Kept in one place so that the choice of library is one file's business: ndarray matrices in,
//! ndarray matrices out, row-major throughout.

use crate::rng::Rng;
use crate::{kernels, Error, Result};
use faer::{linalg::matmul::matmul, Accum, MatRef, Par, Side};
use ndarray::{Array1, Array2};

fn view(x: &Array2<f64>) -> MatRef<'_, f64> {
    let (n, p) = x.dim();
    match x.as_slice() {
        Some(s) => MatRef::from_row_major_slice(s, n, p),
        None => panic!("linalg: internal matrices are always standard layout"),
    }
}

fn to_nd(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Run a faer product with parallelism `par` straight into a new row-major ndarray (no copy of
/// the result).
fn product(
    rows: usize,
    cols: usize,
    par: Par,
    f: impl FnOnce(faer::MatMut<'_, f64>, Par),
) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((rows, cols));
    let slice = out.as_slice_mut().expect("fresh array is contiguous");
    faer_call(par, || {
        f(
            faer::MatMut::from_row_major_slice_mut(slice, rows, cols),
            par,
        )
    });
    out
}

/// Run `f`, which calls faer with parallelism `par`, then clear the vector state that faer's
/// x86-64 kernels leave on the threads they ran on ([`kernels::clear_upper_here`]): without
/// it, the scalar code after a product on those threads ran up to 13 times slower on an
/// AVX-512 Xeon (the Gaussian draws of a randomized PCA: 15 -> 199 ms).
fn faer_call<R>(par: Par, f: impl FnOnce() -> R) -> R {
    let r = f();
    match par {
        Par::Seq => kernels::clear_upper_here(),
        Par::Rayon(_) => kernels::clear_upper_everywhere(),
    }
    r
}

fn std_layout(x: &Array2<f64>) -> std::borrow::Cow<'_, Array2<f64>> {
    if x.is_standard_layout() {
        std::borrow::Cow::Borrowed(x)
    } else {
        std::borrow::Cow::Owned(x.as_standard_layout().into_owned())
    }
}

/// faer's parallelism: a FIXED four-way split, whatever the size of the rayon pool, so that
/// the blocking (and with it the order of floating-point additions) never depends on how many
/// threads the machine has: the same seed gives the same bits on 1, 2 or 64 cores. On a pool
/// with fewer threads the four parts simply run one after another.
fn par() -> Par {
    Par::Rayon(std::num::NonZeroUsize::new(4).expect("4 > 0"))
}

/// `a b` for row-major matrices.
pub fn matmul_nn(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let (a, b) = (std_layout(a), std_layout(b));
    product(a.nrows(), b.ncols(), par(), |out, par| {
        matmul(out, Accum::Replace, view(&a), view(&b), 1.0, par)
    })
}

/// `a^T b`.
pub fn matmul_tn(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let (a, b) = (std_layout(a), std_layout(b));
    product(a.ncols(), b.ncols(), par(), |out, par| {
        matmul(
            out,
            Accum::Replace,
            view(&a).transpose(),
            view(&b),
            1.0,
            par,
        )
    })
}

/// `a b^T`.
pub fn matmul_nt(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let (a, b) = (std_layout(a), std_layout(b));
    product(a.nrows(), b.nrows(), par(), |out, par| {
        matmul(
            out,
            Accum::Replace,
            view(&a),
            view(&b).transpose(),
            1.0,
            par,
        )
    })
}

/// `a b^T` on the calling thread only (for use inside parallel loops).
pub(crate) fn matmul_nt_seq(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let (a, b) = (std_layout(a), std_layout(b));
    product(a.nrows(), b.nrows(), Par::Seq, |out, par| {
        matmul(
            out,
            Accum::Replace,
            view(&a),
            view(&b).transpose(),
            1.0,
            par,
        )
    })
}

/// `out (n x m, row-major) = a b^T` in single precision on the calling thread, the one body of
/// the two wrappers below.
fn product_nt_f32(
    a: ndarray::ArrayView2<'_, f32>,
    b: ndarray::ArrayView2<'_, f32>,
    out: &mut [f32],
) {
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let (n, m, p) = (a.nrows(), b.nrows(), a.ncols());
    // a standard-layout array is contiguous by definition: both slices exist
    let sa = a.as_slice().expect("standard layout is contiguous");
    let sb = b.as_slice().expect("standard layout is contiguous");
    faer_call(Par::Seq, || {
        matmul(
            faer::MatMut::from_row_major_slice_mut(out, n, m),
            Accum::Replace,
            MatRef::from_row_major_slice(sa, n, p),
            MatRef::from_row_major_slice(sb, m, p).transpose(),
            1.0f32,
            Par::Seq,
        )
    });
}

/// `a b^T` in single precision on the calling thread, row-major in a vector (`a.nrows()` rows of
/// `b.nrows()`), for any views: the upper part of a symmetric radius search's candidates (a
/// block of rows against the rows from some row on) without copying those rows.
pub(crate) fn matmul_nt_rows_seq_f32(
    a: ndarray::ArrayView2<'_, f32>,
    b: ndarray::ArrayView2<'_, f32>,
) -> Vec<f32> {
    let mut out = vec![0f32; a.nrows() * b.nrows()];
    product_nt_f32(a, b, &mut out);
    out
}

/// `a b^T` in single precision on the calling thread (for use inside parallel loops): twice the
/// SIMD lanes of the double product, for searches that only need candidates and check them in
/// double precision afterwards (`neighbors::knn`).
pub(crate) fn matmul_nt_seq_f32(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((a.nrows(), b.nrows()));
    // a fresh array is contiguous by construction
    let so = out.as_slice_mut().expect("fresh array is contiguous");
    product_nt_f32(a.view(), b.view(), so);
    out
}

/// The Gram matrix `x x^T` (samples x samples), symmetrised exactly.
///
/// Few rows and very many columns (64 stimuli x 290,400 units) is the RSA shape: the product
/// is then split over fixed column slabs, one per task, and the partial sums added in slab
/// order, so the result does not depend on the thread count.
pub fn gram(x: &Array2<f64>) -> Array2<f64> {
    let (n, p) = x.dim();
    let x = std_layout(x);
    let xs = x.as_slice().expect("standard layout");
    let mut g = if n <= 256 && p >= 32 * 1024 {
        use rayon::prelude::*;
        const SLAB: usize = 16 * 1024;
        let parts: Vec<Array2<f64>> = (0..p.div_ceil(SLAB))
            .into_par_iter()
            .map(|s| {
                let c0 = s * SLAB;
                let w = SLAB.min(p - c0);
                let v = MatRef::from_row_major_slice_with_stride(&xs[c0..], n, w, p);
                syrk_lower(v, Par::Seq)
            })
            .collect();
        let mut acc = Array2::zeros((n, n));
        for part in parts {
            acc += &part;
        }
        acc
    } else {
        syrk_lower(view(&x), par())
    };
    mirror_lower(&mut g);
    g
}

/// Lower triangle (diagonal included) of `v v^T`: half the work of a full product.
fn syrk_lower(v: MatRef<'_, f64>, par: Par) -> Array2<f64> {
    use faer::linalg::matmul::triangular::{matmul as tri, BlockStructure};
    let n = v.nrows();
    product(n, n, par, |out, par| {
        tri(
            out,
            BlockStructure::TriangularLower,
            Accum::Replace,
            v,
            BlockStructure::Rectangular,
            v.transpose(),
            BlockStructure::Rectangular,
            1.0,
            par,
        )
    })
}

fn mirror_lower(g: &mut Array2<f64>) {
    let n = g.nrows();
    for i in 0..n {
        for j in 0..i {
            g[[j, i]] = g[[i, j]];
        }
    }
}

/// The cross-product matrix `x^T x` (features x features), symmetrised exactly.
pub fn cross(x: &Array2<f64>) -> Array2<f64> {
    let x = std_layout(x);
    let mut c = syrk_lower(view(&x).transpose(), par());
    mirror_lower(&mut c);
    c
}

/// Eigendecomposition of a symmetric matrix, eigenvalues in DEcreasing order (the order PCA
/// wants), eigenvectors as columns.
pub fn eigh_desc(a: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let a = std_layout(a);
    faer::set_global_parallelism(par());
    let evd = faer_call(par(), || view(&a).self_adjoint_eigen(Side::Lower)).map_err(|e| {
        Error::InvalidArgument(format!(
            "symmetric eigendecomposition did not converge ({e:?})"
        ))
    })?;
    let s = evd.S();
    let u = evd.U();
    let n = a.nrows();
    let w = Array1::from_shape_fn(n, |k| s[n - 1 - k]);
    let v = Array2::from_shape_fn((n, n), |(i, k)| u[(i, n - 1 - k)]);
    Ok((w, v))
}

/// Thin SVD `a = u diag(s) vt`, singular values in decreasing order.
pub fn svd(a: &Array2<f64>) -> Result<(Array2<f64>, Array1<f64>, Array2<f64>)> {
    let a = std_layout(a);
    faer::set_global_parallelism(par());
    let d = faer_call(par(), || view(&a).thin_svd())
        .map_err(|e| Error::InvalidArgument(format!("SVD did not converge ({e:?})")))?;
    let k = a.nrows().min(a.ncols());
    let s = Array1::from_shape_fn(k, |i| d.S()[i]);
    let u = to_nd(d.U());
    let vt = to_nd(d.V().transpose());
    Ok((u, s, vt))
}

/// Inverse of a square matrix by LU with partial pivoting (`np.linalg.inv`); an error when the
/// matrix is singular (a non-finite or huge entry in the result).
pub fn inverse(a: &Array2<f64>) -> Result<Array2<f64>> {
    use faer::linalg::solvers::DenseSolveCore;
    let a = std_layout(a);
    faer::set_global_parallelism(par());
    let inv = faer_call(par(), || {
        to_nd(view(&a).partial_piv_lu().inverse().as_ref())
    });
    if inv.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(
            "the matrix is singular and has no inverse; use a shrinkage estimate or more measurements".into(),
        ));
    }
    Ok(inv)
}

/// An orthonormal basis of the columns of `a` (thin Q of a QR decomposition).
pub fn orthonormalize(a: &Array2<f64>) -> Array2<f64> {
    let a = std_layout(a);
    faer::set_global_parallelism(par());
    faer_call(par(), || to_nd(view(&a).qr().compute_thin_Q().as_ref()))
}

/// The two precisions [`randomized_svd`] computes in: scikit-learn keeps float32 data in float32
/// (half the bytes through the same products, and its products' speed) and float64 in float64.
/// Widening is the analysis' own [`Scalar::to_f64`](super::Scalar::to_f64).
pub(crate) trait Real: faer::traits::RealField + super::Scalar {
    /// The nearest value of this precision.
    fn of(v: f64) -> Self;
}
impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
}
impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
}

/// `a b` into a new column-major matrix, in `a`'s precision, with the fixed four-way split.
fn mul<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> faer::Mat<T> {
    let mut out = faer::Mat::<T>::zeros(a.nrows(), b.ncols());
    faer_call(par(), || {
        matmul(out.as_mut(), Accum::Replace, a, b, T::of(1.0), par())
    });
    out
}

/// `P L` of the LU factorisation with partial pivoting `y = P L U` (SciPy's
/// `lu(y, permute_l=True)[0]`): a basis of `y`'s column space whose columns are far from
/// parallel, at a fraction of a QR's cost. The power iterations of [`randomized_svd`] only need
/// their columns kept apart from one another (scikit-learn's `power_iteration_normalizer="LU"`).
///
/// On the calling thread: faer's parallel LU of a 9,216 x 60 panel took 4.5 ms, its sequential
/// one 0.8 ms.
///
/// `None` where a pivot is zero (`y` has fewer independent columns than columns: constant or
/// rank-deficient data, a silent layer): faer then divides by it, where LAPACK would leave the
/// column, and the factors hold NaN; the caller takes the QR instead.
fn lu_permuted<T: Real>(mut y: faer::Mat<T>) -> Option<faer::Mat<T>> {
    use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
    let (m, l) = y.shape();
    let mut fwd = vec![0usize; m];
    let mut bwd = vec![0usize; m];
    faer_call(Par::Seq, || {
        let mut mem = faer::dyn_stack::MemBuffer::new(lu_in_place_scratch::<usize, T>(
            m,
            l,
            Par::Seq,
            Default::default(),
        ));
        lu_in_place(
            y.as_mut(),
            &mut fwd,
            &mut bwd,
            Par::Seq,
            faer::dyn_stack::MemStack::new(&mut mem),
            Default::default(),
        );
    });
    // Row i of the factors is row fwd[i] of y: put L's rows back in y's order; L is unit lower
    // trapezoidal (its strict upper part holds U in the factored matrix).
    let pl = faer::Mat::from_fn(m, l, |r, c| {
        let i = bwd[r];
        match i.cmp(&c) {
            std::cmp::Ordering::Greater => y[(i, c)],
            std::cmp::Ordering::Equal => T::of(1.0),
            std::cmp::Ordering::Less => T::of(0.0),
        }
    });
    let finite = (0..l).all(|c| pl.col(c).iter().all(|v| v.to_f64().is_finite()));
    finite.then_some(pl)
}

/// The power iterations' normalisation of the product `y()`: [`lu_permuted`], or [`thin_q`]
/// where LU meets a zero pivot. The LU factors the product in place, so the rare fallback
/// computes it again rather than every step keeping a copy.
fn normalise<T: Real>(y: impl Fn() -> faer::Mat<T>) -> faer::Mat<T> {
    lu_permuted(y()).unwrap_or_else(|| thin_q(y()))
}

/// The orthonormal `Q` of the thin QR factorisation of a tall `y` (Householder, as
/// `orthonormalize`), on the calling thread: faer's parallel QR of a 9,216 x 60 panel took 16 ms,
/// its sequential one 3 ms. The parallelism is passed explicitly, not through faer's global
/// setting, so that a concurrent analysis cannot change how this one is blocked.
fn thin_q<T: Real>(mut y: faer::Mat<T>) -> faer::Mat<T> {
    use faer::linalg::{householder, qr::no_pivoting::factor};
    let (m, l) = y.shape();
    let size = m.min(l);
    let block = factor::recommended_block_size::<T>(m, l);
    let mut coeff = faer::Mat::<T>::zeros(block, size);
    faer_call(Par::Seq, || {
        let mut mem = faer::dyn_stack::MemBuffer::new(factor::qr_in_place_scratch::<T>(
            m,
            l,
            block,
            Par::Seq,
            Default::default(),
        ));
        factor::qr_in_place(
            y.as_mut(),
            coeff.as_mut(),
            Par::Seq,
            faer::dyn_stack::MemStack::new(&mut mem),
            Default::default(),
        );
        // the Householder vectors: the strict lower part, a unit diagonal
        let basis = faer::Mat::<T>::from_fn(m, size, |i, j| match i.cmp(&j) {
            std::cmp::Ordering::Greater => y[(i, j)],
            std::cmp::Ordering::Equal => T::of(1.0),
            std::cmp::Ordering::Less => T::of(0.0),
        });
        let mut q = faer::Mat::<T>::identity(m, size);
        let mut mem = faer::dyn_stack::MemBuffer::new(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(
                m, block, size,
            ),
        );
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            basis.as_ref(),
            coeff.as_ref(),
            faer::Conj::No,
            q.as_mut(),
            Par::Seq,
            faer::dyn_stack::MemStack::new(&mut mem),
        );
        q
    })
}

/// Randomized SVD of the row-major `n x p` matrix `a` (Halko, Martinsson and Tropp 2011, as
/// scikit-learn's `randomized_svd`): the `k` largest singular values and their right singular
/// vectors (`k x p`), from `k + oversamples` seeded Gaussian probes and `iters` power iterations.
///
/// As scikit-learn: a wide matrix is worked on through its transpose (`transpose="auto"`), the
/// power iterations are normalised by LU and the last one by QR, and the products run in the
/// data's own precision. Unlike scikit-learn's `power_iteration_normalizer="auto"`, one or two
/// iterations are normalised too: without it, two float32 iterations on a spectrum falling by
/// 0.6 per component got the fourth singular value 6e-4 wrong and the fifth 86 % wrong (the
/// test below; an LU costs under a millisecond here). The small `(k + oversamples) x min(n, p)`
/// problem at the end is solved in float64 whatever the data (an exact SVD, so that small
/// singular values keep their digits).
pub(crate) fn randomized_svd<T: Real>(
    a: &[T],
    (n, p): (usize, usize),
    k: usize,
    oversamples: usize,
    iters: usize,
    seed: u64,
) -> Result<(Array1<f64>, Array2<f64>)> {
    let l = (k + oversamples).min(n.min(p));
    let a = MatRef::from_row_major_slice(a, n, p);
    // scikit-learn's transpose="auto": work on the transpose of a wide matrix
    let transpose = n < p;
    let m = if transpose { a.transpose() } else { a };
    let mut rng = Rng::new(seed);
    let draws: Vec<f64> = (0..m.ncols() * l).map(|_| rng.normal()).collect();
    let mut q = faer::Mat::<T>::from_fn(m.ncols(), l, |i, j| T::of(draws[i * l + j]));
    for _ in 0..iters {
        q = normalise(|| mul(m, q.as_ref()));
        q = normalise(|| mul(m.transpose(), q.as_ref()));
    }
    let q = thin_q(mul(m, q.as_ref())); // rows(m) x l, orthonormal
    let b = mul(q.transpose(), m); // l x cols(m)
    let b = Array2::from_shape_fn(b.shape(), |(i, j)| b[(i, j)].to_f64());
    let (ub, s, vtb) = svd(&b)?;
    let s = s.slice(ndarray::s![..k]).to_owned();
    let vt = if transpose {
        // m = a^T = Q Ub S Vb^T, so a's right singular vectors are the columns of Q Ub
        let qw = Array2::from_shape_fn(q.shape(), |(i, j)| q[(i, j)].to_f64());
        matmul_nt(&ub.slice(ndarray::s![.., ..k]).t().to_owned(), &qw)
    } else {
        vtb.slice(ndarray::s![..k, ..]).to_owned()
    };
    Ok((s, vt))
}

/// [`randomized_svd`] of `x` in the precision of the data it was widened from (`T`): float32
/// data is narrowed back (every value was a float32 before centring, so this is scikit-learn's
/// `X - mean` in float32, rounded once from the exact float64 difference).
pub(crate) fn randomized_svd_as<T: super::Scalar>(
    x: &Array2<f64>,
    k: usize,
    oversamples: usize,
    iters: usize,
    seed: u64,
) -> Result<(Array1<f64>, Array2<f64>)> {
    use rayon::prelude::*;
    let x = std_layout(x);
    let Some(flat) = x.as_slice() else {
        return Err(Error::InvalidArgument(
            "randomized SVD: the matrix is not contiguous".into(),
        ));
    };
    if T::SINGLE {
        let mut narrow = vec![0f32; flat.len()];
        narrow
            .par_chunks_mut(1 << 16)
            .zip(flat.par_chunks(1 << 16))
            .for_each(|(o, i)| o.iter_mut().zip(i).for_each(|(o, &v)| *o = v as f32));
        randomized_svd(&narrow, x.dim(), k, oversamples, iters, seed)
    } else {
        randomized_svd(flat, x.dim(), k, oversamples, iters, seed)
    }
}

/// Flip signs so that the largest-magnitude entry of each row of `vt` is positive, and flip the
/// matching column of `u` (scikit-learn's `svd_flip(u, vt, u_based_decision=False)`), which makes
/// components comparable across solvers and libraries.
///
/// Rows are searched in parallel (each row's search is its own: the same flips on any number
/// of threads); all 1,000 rows of a full PCA of 9,216 features took 10 ms on one thread.
pub(crate) fn flip_rows(vt: &mut Array2<f64>, mut u: Option<&mut Array2<f64>>) {
    use rayon::prelude::*;
    let rows: &Array2<f64> = vt;
    let flip: Vec<bool> = (0..rows.nrows())
        .into_par_iter()
        .map(|k| {
            let (mut best, mut top) = (0.0f64, -1.0f64);
            for &v in rows.row(k) {
                // the first of the largest magnitudes, as numpy's argmax
                if v.abs() > top {
                    (best, top) = (v, v.abs());
                }
            }
            best < 0.0
        })
        .collect();
    for (k, _) in flip.iter().enumerate().filter(|(_, &f)| f) {
        vt.row_mut(k).mapv_inplace(|v| -v);
        if let Some(u) = u.as_deref_mut() {
            u.column_mut(k).mapv_inplace(|v| -v);
        }
    }
}

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn module() {
        use super as linalg;
        use ndarray::array;
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        let g = linalg::gram(&x); // x x^T
        assert_eq!(g, array![[5.0, 11.0], [11.0, 25.0]]);
    }

    #[test]
    fn matmul_nn() {
        use ndarray::array;
        let c = super::matmul_nn(&array![[1.0, 2.0]], &array![[3.0], [4.0]]);
        assert_eq!(c, array![[11.0]]);
    }

    #[test]
    fn matmul_tn() {
        use ndarray::array;
        let c = super::matmul_tn(&array![[1.0], [2.0]], &array![[3.0], [4.0]]);
        assert_eq!(c, array![[11.0]]);
    }

    #[test]
    fn matmul_nt() {
        use ndarray::array;
        let c = super::matmul_nt(&array![[1.0, 2.0]], &array![[3.0, 4.0]]);
        assert_eq!(c, array![[11.0]]);
    }

    #[test]
    fn gram() {
        use ndarray::array;
        let g = super::gram(&array![[1.0, 0.0], [1.0, 1.0]]);
        assert_eq!(g[[0, 1]], g[[1, 0]]);
    }

    #[test]
    fn cross() {
        use ndarray::array;
        let c = super::cross(&array![[1.0, 2.0]]);
        assert_eq!(c, array![[1.0, 2.0], [2.0, 4.0]]);
    }

    #[test]
    fn eigh_desc() -> crate::Result<()> {
        use ndarray::array;
        let (w, v) = super::eigh_desc(&array![[2.0, 0.0], [0.0, 3.0]])?;
        assert_eq!(w.to_vec(), vec![3.0, 2.0]);
        assert_eq!(v[[1, 0]].abs(), 1.0);
        Ok(())
    }

    #[test]
    fn svd() -> crate::Result<()> {
        use ndarray::array;
        let (u, s, vt) = super::svd(&array![[3.0, 0.0], [0.0, 4.0]])?;
        assert_eq!(s.to_vec(), vec![4.0, 3.0]);
        assert_eq!((u.dim(), vt.dim()), ((2, 2), (2, 2)));
        Ok(())
    }

    #[test]
    fn orthonormalize() {
        use ndarray::array;
        let q = super::orthonormalize(&array![[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]);
        assert!((q.column(0).dot(&q.column(1))).abs() < 1e-12);
    }
}

#[cfg(test)]
mod vector_state {
    use super::*;

    /// faer's x86-64 kernels leave the upper vector state in use (which slows every SSE
    /// instruction after them on Intel); the wrappers above clear it before returning.
    #[test]
    fn products_return_with_clear_upper_state() -> Result<()> {
        kernels::clear_upper_here();
        if kernels::upper_state_in_use() != Some(false) {
            eprintln!("SKIPPED: this processor does not report the upper vector state");
            return Ok(());
        }
        let a = Array2::from_shape_fn((96, 200), |(i, j)| ((i * 7 + j * 3) % 13) as f64 - 6.0);
        // Not vacuous: where faer multiplies with its AVX kernels, a bare product leaves the
        // state in use, and the observation sees it.
        #[cfg(target_arch = "x86_64")]
        let avx = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let avx = false;
        if avx {
            let mut out = vec![0.0f64; 96 * 96];
            matmul(
                faer::MatMut::from_row_major_slice_mut(&mut out, 96, 96),
                Accum::Replace,
                view(&a),
                view(&a).transpose(),
                1.0,
                Par::Seq,
            );
            assert_eq!(
                kernels::upper_state_in_use(),
                Some(true),
                "bare faer product"
            );
            kernels::clear_upper_here();
        }
        let g = matmul_nt_seq(&a, &a);
        assert_eq!(kernels::upper_state_in_use(), Some(false), "matmul_nt_seq");
        let f = matmul_nt_seq_f32(&a.mapv(|v| v as f32), &a.mapv(|v| v as f32));
        assert_eq!(
            kernels::upper_state_in_use(),
            Some(false),
            "matmul_nt_seq_f32"
        );
        let q = orthonormalize(&a.t().to_owned());
        assert_eq!(kernels::upper_state_in_use(), Some(false), "orthonormalize");
        let (w, _) = eigh_desc(&g)?;
        assert_eq!(kernels::upper_state_in_use(), Some(false), "eigh_desc");
        // the values are the products' (a sanity check that the wrappers ran them)
        assert_eq!(g[[0, 0]], a.row(0).dot(&a.row(0)));
        assert_eq!(f[[1, 1]] as f64, a.row(1).dot(&a.row(1)));
        assert!(w[0] > 0.0 && q.ncols() == 96);
        Ok(())
    }
}

#[cfg(test)]
mod randomized {
    use super::*;

    /// `n x p` with singular values 100 * 0.6^i for i < 12, then noise at 0.01.
    fn low_rank(n: usize, p: usize) -> Array2<f64> {
        let mut rng = Rng::new(5);
        let u = orthonormalize(&Array2::from_shape_fn((n, 12), |_| rng.normal()));
        let v = orthonormalize(&Array2::from_shape_fn((p, 12), |_| rng.normal()));
        let mut us = u.clone();
        for (j, mut c) in us.columns_mut().into_iter().enumerate() {
            c *= 100.0 * 0.6f64.powi(j as i32);
        }
        matmul_nt(&us, &v) + Array2::from_shape_fn((n, p), |_| 0.01 * rng.normal())
    }

    fn max_abs<T: Real>(m: MatRef<'_, T>) -> f64 {
        let mut best = 0.0f64;
        for j in 0..m.ncols() {
            for i in 0..m.nrows() {
                best = best.max(m[(i, j)].to_f64().abs());
            }
        }
        best
    }

    /// `P L` times faer's `U` of the same matrix gives the matrix back, and `L` is partial
    /// pivoting's: no entry larger than 1, a unit entry per column.
    fn check_lu<T: Real>(m: usize, l: usize, tol: f64) -> Result<()> {
        let mut rng = Rng::new(m as u64);
        let y = faer::Mat::<T>::from_fn(m, l, |_, _| T::of(rng.normal()));
        let pl = lu_permuted(y.clone()).ok_or_else(|| {
            Error::InvalidArgument(format!("{m} x {l}: a random matrix has no zero pivot"))
        })?;
        let u = y.partial_piv_lu().U().to_owned();
        let back = mul(pl.as_ref(), u.as_ref());
        let diff = faer::Mat::<T>::from_fn(m, l, |i, j| back[(i, j)] - y[(i, j)]);
        assert!(
            max_abs(diff.as_ref()) <= tol * max_abs(y.as_ref()),
            "{m} x {l}: P L U differs from y by {}",
            max_abs(diff.as_ref())
        );
        assert!(
            max_abs(pl.as_ref()) <= 1.0,
            "partial pivoting bounds L by 1"
        );
        for c in 0..l {
            let ones = (0..m).filter(|&r| pl[(r, c)] == T::of(1.0)).count();
            assert!(ones >= 1, "column {c} has its unit diagonal entry");
        }
        Ok(())
    }

    /// A zero pivot (a zero column, or one that depends on the columns before it) makes faer's
    /// factors NaN: `lu_permuted` says so and the iterations take the QR.
    #[test]
    fn a_zero_pivot_falls_back_to_the_qr() {
        let y = faer::Mat::<f64>::from_fn(
            50,
            4,
            |i, j| if j == 2 { 0.0 } else { (i * (j + 1)) as f64 },
        );
        assert!(lu_permuted(y.clone()).is_none());
        let q = normalise(|| y.clone());
        assert!(max_abs(q.as_ref()).is_finite());
        let qtq = mul(q.transpose(), q.as_ref());
        for j in 0..4 {
            assert!((qtq[(j, j)] - 1.0).abs() < 1e-12);
        }
        let ok = faer::Mat::<f64>::from_fn(50, 4, |i, j| ((i * 7 + j * 13) % 11) as f64 - 5.0);
        assert_eq!(Some(normalise(|| ok.clone())), lu_permuted(ok));
    }

    #[test]
    fn lu_permuted_is_scipys_permuted_l() -> Result<()> {
        check_lu::<f64>(300, 12, 1e-13)?;
        check_lu::<f64>(7, 7, 1e-13)?;
        check_lu::<f32>(500, 20, 1e-5)
    }

    #[test]
    fn thin_q_is_orthonormal_and_spans_the_input() {
        let x = low_rank(200, 30);
        let y = faer::Mat::<f64>::from_fn(200, 30, |i, j| x[[i, j]]);
        let q = thin_q(y.clone());
        let qtq = mul(q.transpose(), q.as_ref());
        let eye = faer::Mat::<f64>::identity(30, 30);
        let off = faer::Mat::<f64>::from_fn(30, 30, |i, j| qtq[(i, j)] - eye[(i, j)]);
        assert!(max_abs(off.as_ref()) < 1e-13);
        // y = Q (Q^T y)
        let back = mul(q.as_ref(), mul(q.transpose(), y.as_ref()).as_ref());
        let diff = faer::Mat::<f64>::from_fn(200, 30, |i, j| back[(i, j)] - y[(i, j)]);
        assert!(max_abs(diff.as_ref()) < 1e-11 * max_abs(y.as_ref()));
    }

    /// The leading singular values and vectors of a matrix with a known spectrum, in float64
    /// and float32, tall and wide (scikit-learn's `transpose="auto"` path), with LU-normalised
    /// power iterations (7) and without (2).
    #[test]
    fn finds_the_leading_spectrum() -> Result<()> {
        for (n, p) in [(300, 120), (120, 300)] {
            let x = low_rank(n, p);
            let (_, s_exact, vt_exact) = svd(&x)?;
            let flat: Vec<f64> = x.iter().copied().collect();
            let narrow: Vec<f32> = flat.iter().map(|&v| v as f32).collect();
            for iters in [2, 7] {
                let (s64, vt64) = randomized_svd(&flat, (n, p), 5, 10, iters, 3)?;
                let (s32, vt32) = randomized_svd(&narrow, (n, p), 5, 10, iters, 3)?;
                for (s, vt, tol) in [(&s64, &vt64, 1e-9), (&s32, &vt32, 2e-5)] {
                    assert_eq!(vt.dim(), (5, p));
                    for i in 0..5 {
                        let rel = (s[i] - s_exact[i]).abs() / s_exact[i];
                        assert!(
                            rel < tol,
                            "{n} x {p}, {iters} iterations: s[{i}] off by {rel:e}"
                        );
                        let cos = vt.row(i).dot(&vt_exact.row(i)).abs();
                        assert!(1.0 - cos < tol, "{n} x {p}: component {i}: |cos| {cos}");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_seed_decides_the_bits() -> Result<()> {
        let x = low_rank(120, 300);
        let flat: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let a = randomized_svd(&flat, (120, 300), 5, 10, 4, 1)?;
        let b = randomized_svd(&flat, (120, 300), 5, 10, 4, 1)?;
        let c = randomized_svd(&flat, (120, 300), 5, 10, 4, 2)?;
        assert_eq!(a, b);
        assert_ne!(a.1, c.1, "another seed, other probes");
        Ok(())
    }
}
