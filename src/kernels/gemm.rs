//! 2-D convolution on the CPU as im2col + gemm in NCHW, the way PyTorch's and Caffe's CPU
//! kernels compute it, for the forward pass and both gradients.
//!
//! Why not candle's `conv2d`: candle 0.11's CPU convolution first copies the whole input to
//! NHWC on one thread, gathers its im2col tiles element by element and scatters the result back
//! to NCHW, and its backward goes through further transposed copies. Here each image's columns
//! (`C_in k k x OH OW`) are built with row copies, one gemm writes the output in place (no
//! layout change), the kernel's gradient is one gemm per image accumulated in a fixed order,
//! and the input's gradient is `W^T g` scattered back (col2im) for every stride.
//!
//! Determinism: every output element is one gemm dot product whose order does not depend on
//! the thread count, and accumulations over images run in image order.

use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// The shape of one convolution: `n x cin x h x w` input, `cout x cin x k x k` kernel, zero
/// padding `p`, stride `s`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub p: usize,
    pub s: usize,
}

impl Geom {
    pub fn out(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.p - self.k) / self.s + 1,
            (self.w + 2 * self.p - self.k) / self.s + 1,
        )
    }
    fn l(&self) -> usize {
        let (oh, ow) = self.out();
        oh * ow
    }
    fn kk(&self) -> usize {
        self.cin * self.k * self.k
    }
    /// A 1x1 kernel with stride 1 and no padding: the image itself is its column matrix.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }
    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
}

/// The input rows `ix = ox * s + kx - p` that fall inside `0..w`, as the range of `ox`.
fn valid(o: usize, k_off: usize, p: usize, s: usize, len: usize) -> (usize, usize) {
    // ox * s + k_off >= p  and  ox * s + k_off - p < len
    let lo = if k_off >= p {
        0
    } else {
        (p - k_off).div_ceil(s)
    };
    let hi = if len + p > k_off {
        ((len + p - k_off - 1) / s + 1).min(o)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Output rows whose columns are built at once: the whole image unless its column matrix
/// would pass `limit` floats (VGG-16's conv1_2 at 224 px: 29 M floats, 116 MB per thread), then
/// bands of rows under it, each at least `min_cols` output positions wide where the image has
/// that many. The band size depends on the shape only, never on the thread count.
fn bands(g: &Geom, limit: usize, min_cols: usize) -> Vec<std::ops::Range<usize>> {
    let (oh, ow) = g.out();
    let rows = (limit / (g.kk() * ow).max(1))
        .max(min_cols.div_ceil(ow.max(1)))
        .clamp(1, oh.max(1));
    (0..oh)
        .step_by(rows)
        .map(|r| r..(r + rows).min(oh))
        .collect()
}

/// The default of [`bands`] for the gradients: 4 M floats (16 MB) of columns per thread. Their
/// sums run over the output positions (the kernel's gradient) or gather the bands' columns
/// onto the input (col2im), so a band size changes their order of addition: it stays what it
/// was.
const COLS_LIMIT: usize = 1 << 22;

/// The forward pass's limit: 256 K floats (1 MB), so that a band's columns are still in the
/// L2 cache when the product reads them, rather than written out to L3 or memory and read back
/// (ResNet-50's layer1 3 x 3 convolutions: 7.2 MB of columns per image). Each output element
/// is one dot product over the kernel's depth whichever band holds it, blocked by
/// `depth_block`, which depends on the number of columns only through "more than 64" and
/// "more than 256 outputs": bands of at least [`FORWARD_MIN_COLS`] positions keep both
/// answers, hence the same bits. An occlusion on ResNet-50: 2.36 -> 2.30 s (interleaved runs).
const FORWARD_COLS_LIMIT: usize = 1 << 18;

/// The narrowest forward band, in output positions (see [`FORWARD_COLS_LIMIT`]).
const FORWARD_MIN_COLS: usize = 256;

/// The output rows of the band `rows` whose kernel row `ky` reads inside the image (the rest
/// read padding), as `(first, end)`: shared by [`im2col`] and its adjoint [`col2im`].
fn band_rows(g: &Geom, ky: usize, rows: &std::ops::Range<usize>) -> (usize, usize) {
    let (lo, hi) = valid(g.out().0, ky, g.p, g.s, g.h);
    (
        lo.clamp(rows.start, rows.end),
        hi.clamp(rows.start, rows.end),
    )
}

/// Columns of one image for the output rows `rows`: row `(ci, ky, kx)` holds the input value
/// each of those output positions reads through that kernel tap (0 in the padding).
fn im2col(x: &[f32], g: &Geom, rows: &std::ops::Range<usize>, cols: &mut [f32]) {
    let ow = g.out().1;
    let l = rows.len() * ow;
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.k {
            let (ylo, yhi) = band_rows(g, ky, rows);
            for kx in 0..g.k {
                let row = &mut cols[((ci * g.k + ky) * g.k + kx) * l..][..l];
                let (xlo, xhi) = valid(ow, kx, g.p, g.s, g.w);
                row[..(ylo - rows.start) * ow].fill(0.0);
                row[(yhi - rows.start) * ow..].fill(0.0);
                for oy in ylo..yhi {
                    let iy = oy * g.s + ky - g.p;
                    let dst = &mut row[(oy - rows.start) * ow..][..ow];
                    dst[..xlo].fill(0.0);
                    dst[xhi..].fill(0.0);
                    let src = &plane[iy * g.w..][..g.w];
                    if g.s == 1 {
                        let ix = xlo + kx - g.p;
                        copy_short(&mut dst[xlo..xhi], &src[ix..ix + (xhi - xlo)]);
                    } else if xhi > xlo {
                        let ix = xlo * g.s + kx - g.p;
                        gather_strided(&mut dst[xlo..xhi], &src[ix..], g.s);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of im2col (AlexNet's 27-wide conv2 rows:
/// 1,600 per output row), in fixed-size pieces that compile to register moves: a `memmove`
/// call per row cost 6 % of an AlexNet recording.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let (d8, dr) = dst.as_chunks_mut::<8>();
    let (s8, sr) = src.as_chunks::<8>();
    for (d, s) in d8.iter_mut().zip(s8) {
        *d = *s;
    }
    for (d, s) in dr.iter_mut().zip(sr) {
        *d = *s;
    }
}

/// `dst[i] = src[i * s]` for every `i` of `dst` (a strided convolution's im2col row): in
/// AVX-512 registers for stride 2 (ResNet's stem and downsampling layers) and 4 (AlexNet's
/// first layer), else by an iterator (no bound check per value, unlike indexing). A copy: the
/// same values.
#[inline]
fn gather_strided(dst: &mut [f32], src: &[f32], s: usize) {
    debug_assert!(dst.is_empty() || (dst.len() - 1) * s < src.len());
    #[cfg(target_arch = "x86_64")]
    if (s == 2 || s == 4) && super::gemm512::enabled() {
        // SAFETY: `enabled` found AVX-512F.
        let done = unsafe {
            if s == 2 {
                super::gemm512::gather_every::<2>(dst, src)
            } else {
                super::gemm512::gather_every::<4>(dst, src)
            }
        };
        for (d, v) in dst[done..]
            .iter_mut()
            .zip(src[done * s..].iter().step_by(s))
        {
            *d = *v;
        }
        return;
    }
    for (d, v) in dst.iter_mut().zip(src.iter().step_by(s)) {
        *d = *v;
    }
}

/// Adds the columns of output rows `rows` back onto the input positions they were read from
/// (the adjoint of [`im2col`]), for input channel `ci`.
fn col2im(cols: &[f32], g: &Geom, rows: &std::ops::Range<usize>, ci: usize, plane: &mut [f32]) {
    let ow = g.out().1;
    let l = rows.len() * ow;
    for ky in 0..g.k {
        let (ylo, yhi) = band_rows(g, ky, rows);
        for kx in 0..g.k {
            let row = &cols[((ci * g.k + ky) * g.k + kx) * l..][..l];
            let (xlo, xhi) = valid(ow, kx, g.p, g.s, g.w);
            for oy in ylo..yhi {
                let iy = oy * g.s + ky - g.p;
                let dst = &mut plane[iy * g.w..][..g.w];
                let src = &row[(oy - rows.start) * ow..][..ow];
                if g.s == 1 {
                    let ix = xlo + kx - g.p;
                    for (d, v) in dst[ix..ix + (xhi - xlo)].iter_mut().zip(&src[xlo..xhi]) {
                        *d += v;
                    }
                } else {
                    for (ox, v) in src.iter().enumerate().take(xhi).skip(xlo) {
                        dst[ox * g.s + kx - g.p] += v;
                    }
                }
            }
        }
    }
}

/// A row-major matrix view: `rows x cols` elements, `ld` apart from one row to the next,
/// optionally read transposed.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    ld: usize,
    t: bool,
}

pub(crate) fn mat(data: &[f32], ld: usize) -> Mat<'_> {
    Mat { data, ld, t: false }
}

pub(crate) fn mat_t(data: &[f32], ld: usize) -> Mat<'_> {
    Mat { data, ld, t: true }
}

/// `c (m x n, row stride ldc) = a (m x k) * b (k x n)`, adding to `c` when `acc`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    dims: (usize, usize, usize),
    a: Mat,
    b: Mat,
    c: &mut [f32],
    ldc: usize,
    acc: bool,
    par: Parallelism,
) {
    // SAFETY: `c` is an exclusively borrowed, initialised slice of `c.len()` values.
    unsafe { sgemm_raw(dims, a, b, c.as_mut_ptr(), c.len(), ldc, acc, par) }
}

/// [`sgemm`] into values not yet written (`acc` false): every element of the `m x n` output
/// is written, none read, so its buffer needs no zero-filling pass first.
pub(crate) fn sgemm_into(
    dims: (usize, usize, usize),
    a: Mat,
    b: Mat,
    c: &mut [MaybeUninit<f32>],
    ldc: usize,
    par: Parallelism,
) {
    // SAFETY: `c` is exclusively borrowed; with `acc` false no element is read before it is
    // written (a `MaybeUninit` slot may hold anything until then).
    unsafe { sgemm_raw(dims, a, b, c.as_mut_ptr().cast(), c.len(), ldc, false, par) }
}

/// Whether an `m x n x k` product runs on the AVX-512 product (`gemm512`), which sums each
/// element the same way whatever the operands' strides. (The `gemm` crate's small-product
/// paths do not: a transposed operand can change its order of additions.)
pub(crate) fn layout_free(m: usize, n: usize, k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        depth_block(m, n, k) == k && super::gemm512::enabled() && super::gemm512::applies(m, n, k)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k);
        false
    }
}

/// [`sgemm`] on a raw output of `c_len` values (its `m x n` elements written, and read only
/// when `acc`): for outputs that tasks on several threads write side by side.
///
/// # Safety
/// `c` must be valid for reads (when `acc`) and writes of `c_len` values and not aliased by
/// `a` or `b` during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_raw(
    (m, n, k): (usize, usize, usize),
    a: Mat,
    b: Mat,
    c: *mut f32,
    c_len: usize,
    ldc: usize,
    acc: bool,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The last element each operand addresses must lie inside its slice.
    let last = |x: Mat, r: usize, cl: usize| {
        if x.t {
            (cl - 1) * x.ld + r
        } else {
            (r - 1) * x.ld + cl
        }
    };
    assert!(
        k == 0 || (last(a, m, k) <= a.data.len() && last(b, k, n) <= b.data.len()),
        "conv gemm operands out of bounds"
    );
    assert!((m - 1) * ldc + n <= c_len, "conv gemm output out of bounds");
    let strides = |x: Mat| {
        if x.t {
            (1, x.ld as isize)
        } else {
            (x.ld as isize, 1)
        }
    };
    let ((a_rs, a_cs), (b_rs, b_cs)) = (strides(a), strides(b));
    // One gemm call per depth block (see `depth_block`), each adding to what the previous
    // ones wrote: the same operations gemm performs for its own blocks, in the same order.
    // (k == 0 makes one call, which clears `c` unless `acc`.)
    let block = depth_block(m, n, k);
    let mut k0 = 0;
    loop {
        let kb = block.min(k - k0);
        let read = acc || k0 > 0;
        #[cfg(target_arch = "x86_64")]
        let avx512 = super::gemm512::enabled() && super::gemm512::applies(m, n, kb);
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        if avx512 {
            // SAFETY: as for gemm below (the same bounds); `enabled` found AVX-512F; `c` is
            // written through only (read when `read`), as the caller's contract allows.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                super::gemm512::sgemm_block(
                    (m, n, kb),
                    super::gemm512::Operand {
                        ptr: a.data.as_ptr().offset(k0 as isize * a_cs),
                        rs: a_rs,
                        cs: a_cs,
                    },
                    super::gemm512::Operand {
                        ptr: b.data.as_ptr().offset(k0 as isize * b_rs),
                        rs: b_rs,
                        cs: b_cs,
                    },
                    c,
                    ldc,
                    read,
                    par,
                )
            };
        } else {
            // SAFETY: the bounds of every element the strides address are checked above for the
            // whole depth `k`; a block `k0..k0 + kb` addresses a subset of those elements (the
            // offsets move along the depth axis only). `c` is the caller's to write (and to
            // read when `read`: gemm reads the destination only then).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    kb,
                    c,
                    1,
                    ldc as isize,
                    read,
                    a.data.as_ptr().offset(k0 as isize * a_cs),
                    a_cs,
                    a_rs,
                    b.data.as_ptr().offset(k0 as isize * b_rs),
                    b_cs,
                    b_rs,
                    if read { 1.0 } else { 0.0 },
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
        k0 += kb;
        if k0 >= k {
            break;
        }
    }
}

/// The largest depth gemm may take in one block on any machine.
const GEMM_KC: usize = 512;

/// The depth of the blocks `sgemm` hands to gemm, so that the sums do not depend on the CPU.
///
/// Why: gemm (gemm-common 0.19) sizes its depth block `kc` for the general path (more than 64
/// rows or columns) from the L1 data cache it reads in `/sys/devices/system/cpu`: 512 on a
/// 32 KB 8-way L1 (AMD Zen 2-4, Intel Skylake), 1024 on a 48 KB 12-way one (Intel Ice Lake,
/// Sapphire Rapids; AMD Zen 5). Each output element is a sum over the depth, accumulated block
/// by block, so a dot product of depth 1,152 was summed as 3 x 384 on one machine and
/// 2 x 576 on the other: different roundings, and after a training run or 30 feature
/// visualisation steps, different numbers. Blocks of at most 512 are one block for gemm on
/// every machine; we cut them as gemm does on the 8-way L1 (`ceil(k / 512)` equal blocks), so
/// results made on such machines stay what they were. Small products (at most 64 rows and 64
/// columns) and gemm's vector paths block by fixed rules already and are left whole.
fn depth_block(m: usize, n: usize, k: usize) -> usize {
    let general = (m > 64 || n > 64) && m * n > 256 && m > 1 && n > 1;
    if k <= GEMM_KC || !general {
        return k.max(1);
    }
    k.div_ceil(k.div_ceil(GEMM_KC))
}

pub(crate) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

thread_local! {
    /// The im2col columns of the images each thread works on, kept from call to call: a
    /// fresh buffer per image or rayon task cost a zero fill of up to 16 MB before each
    /// image's columns were written over it (2 % of an occlusion on ResNet-50).
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's column buffer (taken out for the call, so that a nested call on
/// the same thread, from a rayon task run while this one waits, gets a buffer of its own).
fn with_cols<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    let mut cols = COLS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let r = f(&mut cols);
    COLS.with(|c| *c.borrow_mut() = cols);
    r
}

/// Runs `f(out_i, in_i, scratch, parallelism)` for every image: spread over threads (each
/// gemm on one) when there are at least as many images as threads, otherwise one image at a
/// time with a parallel gemm. Every output element is computed the same way in both cases.
fn per_image<T: Send, F>(out: &mut [T], out_len: usize, inp: &[f32], in_len: usize, f: F)
where
    F: Fn(&mut [T], &[f32], &mut Vec<f32>, Parallelism) + Sync,
{
    if out.len() / out_len.max(1) >= threads() {
        out.par_chunks_mut(out_len)
            .zip(inp.par_chunks(in_len))
            .for_each(|(o, i)| with_cols(|cols| f(o, i, cols, Parallelism::None)));
    } else {
        with_cols(|cols| {
            for (o, i) in out.chunks_mut(out_len).zip(inp.chunks(in_len)) {
                f(o, i, cols, Parallelism::Rayon(threads()));
            }
        })
    }
}

/// `y = post(conv(x, w) (+ bias))`, `n x cout x oh x ow`, where `post(y_i, parallelism)`
/// finishes each image's `cout x oh x ow` output in place (a fused epilogue) right after its
/// products, while it is still in the caches; `parallelism` says whether the image may be
/// spread over threads (one image at a time) or runs on this thread (images in parallel).
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    post: &(dyn Fn(&mut [f32], Parallelism) + Sync),
) -> Vec<f32> {
    forward_with(x, w, bias, g, (FORWARD_COLS_LIMIT, FORWARD_MIN_COLS), post)
}

fn forward_with(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    (limit, min_cols): (usize, usize),
    post: &(dyn Fn(&mut [f32], Parallelism) + Sync),
) -> Vec<f32> {
    let ((_, ow), l, kk) = (g.out(), g.l(), g.kk());
    let len = g.n * g.cout * l;
    // Not zero-filled first: the heap reuses freed blocks (`super::memory`), so `calloc` would
    // clear the whole output in a pass of its own (3.6 % of an occlusion on ResNet-50), and the
    // products write every element anyway.
    let mut y = Vec::<f32>::with_capacity(len);
    let bands = bands(g, limit, min_cols);
    per_image(
        &mut y.spare_capacity_mut()[..len],
        g.cout * l,
        x,
        g.in_len(),
        |yi, xi, cols, par| {
            if g.pointwise() {
                sgemm_into((g.cout, l, kk), mat(w, kk), mat(xi, l), yi, l, par);
            } else {
                for rows in &bands {
                    let lt = rows.len() * ow;
                    cols.resize(kk * lt, 0.0);
                    im2col(xi, g, rows, cols);
                    let dst = &mut yi[rows.start * ow..];
                    sgemm_into((g.cout, lt, kk), mat(w, kk), mat(cols, lt), dst, l, par);
                }
            }
            // SAFETY: the products wrote all `cout` rows of `l` values of this image (the bands
            // cover the output rows `0..oh`, each `ow` wide).
            let yi =
                unsafe { std::slice::from_raw_parts_mut(yi.as_mut_ptr().cast::<f32>(), yi.len()) };
            if let Some(bias) = bias {
                for (plane, &bv) in yi.chunks_mut(l).zip(bias) {
                    for v in plane {
                        *v += bv;
                    }
                }
            }
            post(yi, par);
        },
    );
    // SAFETY: every image's `cout * l` values were written above (the images cover `len`); a
    // panic on the way leaves `y` empty.
    unsafe { y.set_len(len) };
    y
}

/// The kernel's gradient `sum_i grad_i cols_i^T`, `cout x cin x k x k`.
///
/// Images are split into at most [`GW_GROUPS`] consecutive groups, each accumulated image by
/// image (band by band) on one thread with a single-threaded gemm, and the groups' sums are then
/// added in group order. A per-image gemm spread over threads costs more in synchronisation than
/// it computes for a small layer (workflow 3's conv2: 50 x 500 x 64 per image), while the groups
/// keep every thread busy. The grouping depends on the shapes only, so the result has the same
/// bits at any thread count.
pub(crate) fn grad_weight(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    grad_weight_with(x, grad, g, COLS_LIMIT)
}

/// Most groups of images in [`grad_weight`]; fewer when their partial sums would pass
/// [`COLS_LIMIT`] floats together (a large kernel: VGG's 512 x 4608).
const GW_GROUPS: usize = 8;

fn grad_weight_with(x: &[f32], grad: &[f32], g: &Geom, limit: usize) -> Vec<f32> {
    let size = g.cout * g.kk();
    let groups = GW_GROUPS.min(g.n).min((limit / size.max(1)).max(1)).max(1);
    let per = g.n.div_ceil(groups);
    let in_len = g.in_len();
    let out_len = g.cout * g.l();
    let partial = |range: std::ops::Range<usize>, par: Parallelism| {
        let mut gw = vec![0f32; size];
        let mut cols = Vec::new();
        for i in range {
            let (xi, gi) = (&x[i * in_len..][..in_len], &grad[i * out_len..][..out_len]);
            grad_weight_image(xi, gi, g, limit, &mut gw, &mut cols, i % per != 0, par);
        }
        gw
    };
    let ranges: Vec<_> = (0..g.n)
        .step_by(per.max(1))
        .map(|a| a..(a + per).min(g.n))
        .collect();
    if ranges.len() == 1 {
        return partial(0..g.n, Parallelism::Rayon(threads()));
    }
    let parts: Vec<Vec<f32>> = ranges
        .into_par_iter()
        .map(|r| partial(r, Parallelism::None))
        .collect();
    let mut parts = parts.into_iter();
    let mut gw = parts.next().unwrap_or_else(|| vec![0f32; size]);
    for p in parts {
        for (a, b) in gw.iter_mut().zip(&p) {
            *a += b;
        }
    }
    gw
}

/// Adds (or, when `!acc`, writes) one image's `grad_i cols_i^T` to `gw`.
#[allow(clippy::too_many_arguments)]
fn grad_weight_image(
    xi: &[f32],
    gi: &[f32],
    g: &Geom,
    limit: usize,
    gw: &mut [f32],
    cols: &mut Vec<f32>,
    acc: bool,
    par: Parallelism,
) {
    let ((_, ow), l, kk) = (g.out(), g.l(), g.kk());
    if g.pointwise() {
        // (cout x l) * (l x cin): the image read transposed.
        sgemm((g.cout, kk, l), mat(gi, l), mat_t(xi, l), gw, kk, acc, par);
        return;
    }
    for (b, rows) in bands(g, limit, 0).iter().enumerate() {
        let lt = rows.len() * ow;
        cols.resize(kk * lt, 0.0);
        im2col(xi, g, rows, cols);
        let gt = mat(&gi[rows.start * ow..], l);
        sgemm(
            (g.cout, kk, lt),
            gt,
            mat_t(cols, lt),
            gw,
            kk,
            acc || b > 0,
            par,
        );
    }
}

/// The input's gradient: columns `W^T grad_i` scattered back onto each image.
pub(crate) fn grad_input(w: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    grad_input_with(w, grad, g, COLS_LIMIT)
}

fn grad_input_with(w: &[f32], grad: &[f32], g: &Geom, limit: usize) -> Vec<f32> {
    let ((_, ow), l, kk) = (g.out(), g.l(), g.kk());
    let mut gx = vec![0f32; g.n * g.in_len()];
    let plane = g.h * g.w;
    let bands = bands(g, limit, 0);
    // W^T (`kk x cout`) written out once for all images: read transposed, the AVX-512 product
    // packed it again for every image (6 % of integrated gradients on ResNet-50). The same
    // values in the same order: the same sums.
    let mut wt = vec![0f32; w.len()];
    super::transpose::transpose(w, g.cout, kk, &mut wt);
    let wt = &wt;
    per_image(
        &mut gx,
        g.in_len(),
        grad,
        g.cout * l,
        |gxi, gi, cols, par| {
            if g.pointwise() {
                // The columns are the gradient itself: (cin x cout) * (cout x l).
                sgemm(
                    (g.cin, l, g.cout),
                    mat(wt, g.cout),
                    mat(gi, l),
                    gxi,
                    l,
                    false,
                    par,
                );
                return;
            }
            for rows in &bands {
                let lt = rows.len() * ow;
                cols.resize(kk * lt, 0.0);
                let gt = mat(&gi[rows.start * ow..], l);
                sgemm((kk, lt, g.cout), mat(wt, g.cout), gt, cols, lt, false, par);
                let cols = &*cols;
                let scatter = |(ci, p): (usize, &mut [f32])| col2im(cols, g, rows, ci, p);
                match par {
                    Parallelism::None => gxi.chunks_mut(plane).enumerate().for_each(scatter),
                    _ => gxi.par_chunks_mut(plane).enumerate().for_each(scatter),
                }
            }
        },
    );
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.uniform() as f32 * 2.0 - 1.0).collect()
    }

    /// The strided gather is `src[i * s]`, in registers and in the scalar remainder alike.
    #[test]
    fn strided_gather_is_indexing() {
        let src = rand(700, 7);
        for s in 1..=5 {
            for (len, off) in [
                (0, 0),
                (5, 1),
                (16, 0),
                (17, 3),
                (55, 2),
                (112, 1),
                (136, 2),
            ] {
                let mut dst = vec![0f32; len];
                gather_strided(&mut dst, &src[off..], s);
                let want: Vec<f32> = (0..len).map(|i| src[off + i * s]).collect();
                assert!(dst == want, "stride {s}, {len} values from {off}");
            }
        }
    }

    /// The forward pass in bands of at least `FORWARD_MIN_COLS` positions gives the bits of
    /// the whole image, also where the depth (576) is cut into blocks and the output has few
    /// channels (8: the blocking then hangs on the band's width).
    #[test]
    fn forward_bands_keep_the_bits() {
        for cout in [8, 70] {
            let g = Geom {
                n: 2,
                cin: 64,
                h: 20,
                w: 20,
                cout,
                k: 3,
                p: 1,
                s: 1,
            };
            let x = rand(g.n * g.in_len(), 5);
            let w = rand(cout * g.kk(), 6);
            let whole = forward_with(&x, &w, None, &g, (usize::MAX, 0), &|_, _| {});
            let banded = forward_with(&x, &w, None, &g, (1, FORWARD_MIN_COLS), &|_, _| {});
            assert!(bands(&g, 1, FORWARD_MIN_COLS).len() > 1, "not banded");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&whole) == bits(&banded), "cout {cout}");
        }
    }

    /// Forward and both gradients against candle's convolution and its backward, whole
    /// images and in bands of output rows.
    #[test]
    fn matches_candle_for_paddings_strides_and_pointwise() {
        for &(n, cin, h, w, cout, k, p, s) in &[
            (2, 3, 9, 9, 4, 3, 1, 1),
            (1, 3, 9, 7, 4, 3, 1, 2),
            (3, 2, 12, 12, 5, 7, 3, 2),
            (2, 3, 16, 16, 2, 11, 2, 4),
            (2, 4, 8, 8, 6, 1, 0, 1),
            (1, 4, 8, 8, 6, 1, 0, 2),
            (2, 1, 28, 28, 3, 5, 0, 1),
            (1, 2, 5, 5, 2, 5, 2, 3),
        ] {
            let g = Geom {
                n,
                cin,
                h,
                w,
                cout,
                k,
                p,
                s,
            };
            let (x, wt) = (rand(n * cin * h * w, 1), rand(cout * cin * k * k, 2));
            let b = rand(cout, 3);
            let dev = Device::Cpu;
            let xt = candle_core::Var::from_vec(x.clone(), (n, cin, h, w), &dev).unwrap();
            let wv = candle_core::Var::from_vec(wt.clone(), (cout, cin, k, k), &dev).unwrap();
            let bt = Tensor::from_vec(b.clone(), (1, cout, 1, 1), &dev).unwrap();
            let yt = xt
                .conv2d(&wv, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            let ours = forward(&x, &wt, Some(&b), &g, &|_, _| {});
            let theirs = yt.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (oh, ow) = g.out();
            assert_eq!(yt.dims(), &[n, cout, oh, ow]);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() < 1e-4 * (1.0 + v.abs()),
                        "{what} {g:?}: {u} vs {v}"
                    );
                }
            };
            close(&ours, &theirs, "forward");
            let gy = rand(ours.len(), 4);
            let gyt = Tensor::from_vec(gy.clone(), yt.shape(), &dev).unwrap();
            let grads = (yt * gyt).unwrap().sum_all().unwrap().backward().unwrap();
            let grad_of = |v: &candle_core::Var| {
                let t = grads.get(v).unwrap().flatten_all().unwrap();
                t.to_vec1::<f32>().unwrap()
            };
            let (gx, gw) = (grad_of(&xt), grad_of(&wv));
            close(&grad_input(&wt, &gy, &g), &gx, "input gradient");
            close(&grad_weight(&x, &gy, &g), &gw, "kernel gradient");
            // Columns in bands of one and of two output rows (what large images get).
            for limit in [1, 2 * g.kk() * ow] {
                let ours = forward_with(&x, &wt, Some(&b), &g, (limit, 0), &|_, _| {});
                close(&ours, &theirs, "banded forward");
                close(
                    &grad_input_with(&wt, &gy, &g, limit),
                    &gx,
                    "banded input gradient",
                );
                close(
                    &grad_weight_with(&x, &gy, &g, limit),
                    &gw,
                    "banded kernel gradient",
                );
            }
        }
    }
}
