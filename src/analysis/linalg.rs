//! The few dense linear-algebra kernels the analysis needs, on top of [`faer`].
//!
//! Kept in one place so that the choice of library is one file's business: ndarray matrices in,
//! ndarray matrices out, row-major throughout.

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

/// Flip signs so that the largest-magnitude entry of each row of `vt` is positive, and flip the
/// matching column of `u` (scikit-learn's `svd_flip(u, vt, u_based_decision=False)`), which makes
/// components comparable across solvers and libraries.
pub(crate) fn flip_rows(vt: &mut Array2<f64>, mut u: Option<&mut Array2<f64>>) {
    for k in 0..vt.nrows() {
        let row = vt.row(k);
        let mut best = 0usize;
        for (j, v) in row.iter().enumerate() {
            if v.abs() > row[best].abs() {
                best = j;
            }
        }
        if row[best] < 0.0 {
            vt.row_mut(k).mapv_inplace(|v| -v);
            if let Some(u) = u.as_deref_mut() {
                u.column_mut(k).mapv_inplace(|v| -v);
            }
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
