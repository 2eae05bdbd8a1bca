//! The f32 matrix product of `sgemm` (the sibling `gemm` module) in AVX-512 registers, with
//! the `gemm` crate's sums bit for bit.
//!
//! Why: the `gemm` crate (0.19, without its `x86-v4` feature) runs 8-lane AVX2 micro-kernels
//! on every x86-64 CPU. On a CPU whose AVX-512 units are 16 lanes wide (Intel Xeon from Skylake-SP
//! on, Sapphire Rapids and later) that leaves half of each multiply-add unit idle, and PyTorch's
//! oneDNN does not: the recordings there ran 1.8-1.9x PyTorch's time. The crate's own AVX-512
//! kernels (`x86-v4`) order the sums differently, which would change every number a notebook
//! prints (issue 30).
//!
//! Same bits: in one call the `gemm` crate's micro-kernel (`gemm_common::microkernel!`) computes
//! every output element as one chain of fused multiply-adds over the depth in order, from +0,
//! and then writes `beta * acc` (`alpha == 0`) or `fma(beta, acc, dst)` (`alpha == 1`); with
//! `beta == 1` those are `acc` and `dst + acc`. [`sgemm_block`] computes each element the same
//! way, 32 columns x 12 rows per register tile. It is used only where the crate would run that
//! micro-kernel in one depth block: more than 256 outputs, at least 2 rows and columns, a depth
//! from 3 to 512 ([`applies`]); other shapes keep the crate's own paths.

use gemm::Parallelism;
use rayon::prelude::*;

/// Output columns per register tile (two 16-lane registers) and rows (broadcast values).
const NR: usize = 32;
const MR: usize = 12;
/// Columns of the right operand packed at a time: with a depth of 512, 1 MB (in L2).
const NC: usize = NR * 16;

/// A matrix operand read through raw strides: element `(i, j)` at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(super) struct Operand {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Operand {
    /// The address of element `(i, j)` (methods, so that closures capture the whole `Sync`
    /// operand).
    ///
    /// # Safety
    /// The element must lie inside the operand's allocation.
    #[inline(always)]
    unsafe fn at_ptr(self, i: usize, j: usize) -> *const f32 {
        // SAFETY: the caller's.
        unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }

    /// Element `(i, j)`.
    ///
    /// # Safety
    /// The element must be readable.
    #[inline(always)]
    unsafe fn at(self, i: usize, j: usize) -> f32 {
        // SAFETY: the caller's.
        unsafe { *self.at_ptr(i, j) }
    }

    /// The address of row `i`'s first element.
    ///
    /// # Safety
    /// As [`Operand::at_ptr`].
    #[inline(always)]
    unsafe fn row(self, i: usize) -> *const f32 {
        // SAFETY: the caller's.
        unsafe { self.at_ptr(i, 0) }
    }
}

// SAFETY: an operand is only read, by the threads of one `sgemm_block` call, during which the
// caller keeps its memory valid and unmodified (the function's contract).
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

/// Whether this process uses the AVX-512 product: the CPU has AVX-512F, and
/// `NEUROSCOPE_AVX512=0` does not turn it off (to compare against the AVX2 kernels).
pub(super) fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var("NEUROSCOPE_AVX512").map_or(true, |v| v != "0")
                && std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// The shapes on which the `gemm` crate runs its standard micro-kernel over one depth block,
/// where [`sgemm_block`] reproduces it.
pub(super) fn applies(m: usize, n: usize, k: usize) -> bool {
    m >= 2 && n >= 2 && m * n > 256 && (3..=512).contains(&k)
}

/// A raw output pointer that tasks on other threads write through, each to its own rows.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Dst(*mut f32);

#[cfg(target_arch = "x86_64")]
impl Dst {
    /// The output element `off` places further on (a method, so that closures capture the
    /// whole `Send` wrapper rather than its raw pointer).
    ///
    /// # Safety
    /// As `pointer::add`: `off` stays inside the output.
    unsafe fn at(self, off: usize) -> *mut f32 {
        // SAFETY: the caller's.
        unsafe { self.0.add(off) }
    }
}
// SAFETY: the tasks of `sgemm_block` write disjoint row ranges of the output (each owns a range
// of 12-row tiles), and the caller holds the output exclusively for the call.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for Dst {}
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for Dst {}

/// `dst (m x n, row stride ldc, column stride 1) = a (m x k) b (k x n)`, or `dst + a b` when
/// `read`, each element summed as the `gemm` crate sums it (module docs).
///
/// The left operand is read in place when its rows are contiguous (each tile's 12 rows
/// broadcast from their own addresses: at a depth of at most 512 they stay in L1), otherwise
/// packed tile by tile; the right one is read in place when its rows are contiguous and their
/// addresses suit the caches (see `direct` below), otherwise its columns are first packed into
/// depth-major 32-column blocks, `NC` columns at a time. Packing moves values only: the sums
/// are the same either way.
///
/// # Safety
/// The CPU must support AVX-512F; every element `a` and `b` address for `i < m`, `j < n`,
/// `l < k` must be readable, and every `dst + i * ldc + j` writable and not aliased by `a` or `b`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_block(
    (m, n, k): (usize, usize, usize),
    a: Operand,
    b: Operand,
    dst: *mut f32,
    ldc: usize,
    read: bool,
    par: Parallelism,
) {
    let threads = match par {
        Parallelism::None => 1,
        Parallelism::Rayon(0) => rayon::current_num_threads(),
        Parallelism::Rayon(t) => t,
    };
    let tiles_m = m.div_ceil(MR);
    let dst = Dst(dst);
    // B read in place when its rows are contiguous and far enough apart in the L1 cache's sets,
    // and either close together (under 4 KB: a tile's rows share pages), few (a depth of at
    // most 64: their pages stay in the TLB) or read by few row tiles (a 64-row convolution,
    // where packing costs more than it saves); otherwise packed (VGG's 3,136-wide columns
    // at a depth of 512: 125 -> 141 GFLOPS on one core)
    let direct = b.cs == 1 && !aliases(b.rs) && (tiles_m <= 8 || b.rs < 1024 || k <= 64);
    // A read in place when its rows are contiguous; otherwise (a transposed A: the output
    // gradient in a linear layer's weight gradient, batched products of transposed operands)
    // packed once for the call, tile after tile, each depth-major with 12 values per depth
    // (packed per tile, it was packed again for every 512-column panel)
    let pack_a = a.cs != 1;
    // the packed B, kept by each thread from call to call (a fresh 1 MB buffer per call cost
    // page faults and a zero fill in every convolution)
    thread_local! {
        static PB: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut pb = if direct {
        Vec::new()
    } else {
        PB.with(|p| std::mem::take(&mut *p.borrow_mut()))
    };
    thread_local! {
        static PA: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut pa = Vec::new();
    if pack_a {
        pa = PA.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if pa.len() < tiles_m * MR * k {
            pa.resize(tiles_m * MR * k, 0f32);
        }
        let fill = |(ti, block): (usize, &mut [f32])| {
            pack_a_tile(a, k, ti * MR, MR.min(m - ti * MR), block)
        };
        let used = &mut pa[..tiles_m * MR * k];
        if threads > 1 && tiles_m > 1 {
            used.par_chunks_mut(MR * k).enumerate().for_each(fill);
        } else {
            used.chunks_mut(MR * k).enumerate().for_each(fill);
        }
    }
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let tiles_n = nc.div_ceil(NR);
        if !direct {
            // B's columns j0..j0 + nc packed: per 32-column tile, a depth-major k x 32 block
            // (lanes past n never read: the tile masks them)
            if pb.len() < tiles_n * NR * k {
                pb.resize(tiles_n * NR * k, 0f32);
            }
            let groups = threads.min(tiles_n);
            let per = tiles_n.div_ceil(groups);
            let pack = |(g, blocks): (usize, &mut [f32])| {
                pack_b(
                    b,
                    k,
                    j0 + g * per * NR,
                    (nc - g * per * NR).min(per * NR),
                    blocks,
                )
            };
            let used = &mut pb[..tiles_n * NR * k];
            if groups > 1 {
                used.par_chunks_mut(per * NR * k).enumerate().for_each(pack);
            } else {
                pack((0, used));
            }
        }
        let (pb, pa) = (&pb, &pa);
        let run = |tm: std::ops::Range<usize>| {
            for ti in tm {
                let rows = MR.min(m - ti * MR);
                // the tile's row addresses and the step between two depths; rows past m repeat
                // the last one (computed, not written)
                let (arows, acs): ([*const f32; MR], isize) = if pack_a {
                    let block = &pa[ti * MR * k..][..MR * k];
                    (std::array::from_fn(|r| block[r..].as_ptr()), MR as isize)
                } else {
                    let rows = std::array::from_fn(|r| {
                        let i = (ti * MR + r).min(m - 1);
                        // SAFETY: i < m: row i's first element is readable.
                        unsafe { a.row(i) }
                    });
                    (rows, a.cs)
                };
                for tj in 0..tiles_n {
                    let cols = NR.min(nc - tj * NR);
                    let (bp, brs) = if direct {
                        // SAFETY: column j0 + tj * 32 < n of row 0 is readable.
                        (unsafe { b.at_ptr(0, j0 + tj * NR) }, b.rs)
                    } else {
                        (pb[tj * NR * k..].as_ptr(), NR as isize)
                    };
                    // SAFETY: the tile's rows ti*12.. < m and columns j0 + tj*32.. < n lie in
                    // the output (caller's contract), and this task owns the rows of the tiles
                    // in `tm`; the operands are readable over the depth (`tile`'s contract:
                    // packed blocks hold 12 x k and k x 32 values).
                    unsafe {
                        let out = dst.at((ti * MR) * ldc + j0 + tj * NR);
                        let args = (arows, acs, bp, brs, k, out, ldc, rows, cols, read);
                        match (pack_a, cols == NR) {
                            (true, true) => tile::<true, true, 8>(args),
                            (true, false) => tile::<true, false, 8>(args),
                            (false, true) => tile::<false, true, 8>(args),
                            (false, false) => tile::<false, false, 8>(args),
                        }
                    }
                }
            }
        };
        if threads > 1 && tiles_m > 1 {
            let per = tiles_m.div_ceil(threads * 4);
            (0..tiles_m)
                .step_by(per)
                .collect::<Vec<_>>()
                .into_par_iter()
                .for_each(|t0| run(t0..(t0 + per).min(tiles_m)));
        } else {
            run(0..tiles_m);
        }
    }
    if !direct {
        PB.with(|p| *p.borrow_mut() = pb);
    }
    if pack_a {
        PA.with(|p| *p.borrow_mut() = pa);
    }
}

/// Whether rows `stride` floats apart crowd into few sets of a 64-set L1 data cache (each
/// 64-byte line of an address maps to set `line mod 64`): a 1,024-float stride puts every row
/// of a 32-column tile into the same 2 sets, and a tile reading 512 such rows then misses L1 on
/// each one (a 1,024-wide product ran at half speed). Rows that spread over at least half of
/// the sets are read in place; the others are packed first.
#[cfg(target_arch = "x86_64")]
fn aliases(stride: isize) -> bool {
    let line = (stride.unsigned_abs() * 4) / 64;
    let mut sets = [false; 64];
    for l in 0..64 {
        sets[(l * line) % 64] = true;
        sets[(l * line + 1) % 64] = true;
    }
    sets.iter().filter(|&&s| s).count() < 32
}

/// Packs columns `j0..j0 + w` of `b`'s `k` rows into `blocks`: per 32 columns a depth-major
/// `k x 32` block (lanes past `w` in the last one left as they are, never read).
#[cfg(target_arch = "x86_64")]
fn pack_b(b: Operand, k: usize, j0: usize, w: usize, blocks: &mut [f32]) {
    if b.cs == 1 {
        // row by row, so that each source row is read from start to end
        for l in 0..k {
            // SAFETY: row l < k's columns j0 .. j0 + w are inside b (caller of `sgemm_block`).
            let src = unsafe { std::slice::from_raw_parts(b.at_ptr(l, j0), w) };
            for (t, part) in src.chunks(NR).enumerate() {
                blocks[(t * k + l) * NR..][..part.len()].copy_from_slice(part);
            }
        }
    } else if b.rs == 1 {
        // a transposed b: each column contiguous along the depth, turned in 8 x 8 tiles
        let (c8, k8) = (w / 8 * 8, k / 8 * 8);
        for c0 in (0..c8).step_by(8) {
            let block = &mut blocks[(c0 / NR) * k * NR..];
            for l0 in (0..k8).step_by(8) {
                // SAFETY: columns j0 + c0 .. + 8 <= j0 + w and depths l0 .. + 8 <= k are inside
                // b (caller of `sgemm_block`), each column's 8 values contiguous (rs == 1);
                // the 8 rows of 8 written lie inside `block` (l0 + 7 < k, c0 % 32 + 8 <= 32);
                // the CPU has AVX-512F, hence AVX (`sgemm_block`'s contract).
                unsafe {
                    transpose8(
                        std::array::from_fn(|i| b.at_ptr(l0, j0 + c0 + i)),
                        block[l0 * NR + c0 % NR..].as_mut_ptr(),
                        NR,
                    )
                };
            }
            for l in k8..k {
                for c in c0..c0 + 8 {
                    // SAFETY: j0 + c < n and l < k: readable.
                    block[l * NR + c % NR] = unsafe { b.at(l, j0 + c) };
                }
            }
        }
        for c in c8..w {
            let block = &mut blocks[(c / NR) * k * NR..];
            for l in 0..k {
                // SAFETY: j0 + c < n and l < k: readable.
                block[l * NR + c % NR] = unsafe { b.at(l, j0 + c) };
            }
        }
    } else {
        // any other layout, value by value
        for c in 0..w {
            let block = &mut blocks[(c / NR) * k * NR..];
            for l in 0..k {
                // SAFETY: j0 + c < n and l < k: readable (caller of `sgemm_block`).
                block[l * NR + c % NR] = unsafe { b.at(l, j0 + c) };
            }
        }
    }
}

/// Writes the transpose of the 8 x 8 block whose row `i` is the 8 values at `src[i]` to `dst`,
/// row `j` (the `j`-th value of every source row) at `dst + j * ld`.
///
/// # Safety
/// AVX; 8 readable values at each `src[i]`, 8 writable at each `dst + j * ld`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8(src: [*const f32; 8], dst: *mut f32, ld: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's: each load reads the 8 values of one source row.
    let r: [__m256; 8] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(src[i]) });
    // pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
    let out = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    for (j, v) in out.into_iter().enumerate() {
        // SAFETY: the caller's: row j of the destination holds 8 writable values.
        unsafe { _mm256_storeu_ps(dst.add(j * ld), v) };
    }
}

/// `dst[i] = src[S i]` for `S` of 2 (ResNet's strided layers) or 4 (AlexNet's first layer),
/// for the first 16-value groups of `dst` whose `16 S` source values lie in `src`: lanes picked
/// from pairs of registers by a permute (`S = 4`: two pairs, their halves joined by a lane
/// shuffle); returns how many values it wrote (the caller copies the rest).
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather_every<const S: usize>(dst: &mut [f32], src: &[f32]) -> usize {
    use std::arch::x86_64::*;
    const { assert!(S == 2 || S == 4, "gather_every: stride 2 or 4") };
    let groups = (dst.len() / 16).min(src.len() / (16 * S));
    // stride 2: all 16 even lanes of a pair; stride 4: lanes 0, 4, .., 28 of a pair into the
    // low eight lanes (the high eight unused)
    let idx = if S == 2 {
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
    } else {
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28)
    };
    for g in 0..groups {
        // SAFETY: values 16 S g .. 16 S (g + 1) of src and 16 g .. 16 g + 16 of dst lie inside
        // the slices (`groups` above); the CPU has AVX-512F (the contract).
        unsafe {
            let p = src.as_ptr().add(16 * S * g);
            let pair = |o: usize| {
                _mm512_permutex2var_ps(
                    _mm512_loadu_ps(p.add(o)),
                    idx,
                    _mm512_loadu_ps(p.add(o + 16)),
                )
            };
            let v = if S == 2 {
                pair(0)
            } else {
                // 128-bit lanes 0, 1 of the first pair's pick, then 0, 1 of the second's
                _mm512_shuffle_f32x4::<0b01_00_01_00>(pair(0), pair(32))
            };
            _mm512_storeu_ps(dst.as_mut_ptr().add(16 * g), v);
        }
    }
    groups * 16
}

/// Packs rows `i0..i0 + rows` (`rows <= 12`) of `a`'s `k` columns into `pa` depth-major, 12
/// values per depth; rows past the edge repeat the last row (computed, never written).
#[cfg(target_arch = "x86_64")]
fn pack_a_tile(a: Operand, k: usize, i0: usize, rows: usize, pa: &mut [f32]) {
    if a.rs == 1 && rows == MR {
        // a transposed A: the tile's 12 values of each depth lie side by side
        for (l, d) in pa.chunks_exact_mut(MR).take(k).enumerate() {
            // SAFETY: rows i0 .. i0 + 12 <= m of column l < k are readable, one apart (rs 1).
            d.copy_from_slice(unsafe { std::slice::from_raw_parts(a.at_ptr(i0, l), MR) });
        }
        return;
    }
    for (l, d) in pa.chunks_exact_mut(MR).take(k).enumerate() {
        for (r, v) in d.iter_mut().enumerate() {
            // SAFETY: row i0 + min(r, rows - 1) < m and column l < k: readable.
            *v = unsafe { a.at(i0 + r.min(rows - 1), l) };
        }
    }
}

/// [`tile`]'s operands: `(arows, acs, b, brs, k, out, ldc, rows, cols, read)`.
#[cfg(target_arch = "x86_64")]
type TileArgs = (
    [*const f32; MR],
    isize,
    *const f32,
    isize,
    usize,
    *mut f32,
    usize,
    usize,
    usize,
    bool,
);

/// One 12 x 32 output tile: `acc[r] (32 lanes) = sum over l of a[r][l] * b[l][..]`, one fused
/// multiply-add per step in depth order from +0, then written (`rows x cols` of it) as `acc` or
/// `dst + acc`. Row `r` of `a` is read at `arows[r] + l * acs`, row `l` of `b` at
/// `b + l * brs` (32 lanes, those past `cols` masked off). With `PACKED`, `a` is one packed
/// block: element `(r, l)` at `arows[0] + l * 12 + r`. `FULL`: `cols == 32` (unmasked loads).
/// `PF`: B rows prefetched that many steps ahead.
///
/// # Safety
/// AVX-512F; `arows[r] + l * acs` readable for every `r < 12`, `l < k`; the first `cols` of the
/// 32 values at `b + l * brs` readable for every `l < k`, all 32 when `FULL`; the `rows x cols`
/// tile at `out` (row stride `ldc`) writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const PACKED: bool, const FULL: bool, const PF: isize>(
    (arows, acs, b, brs, k, out, ldc, rows, cols, read): TileArgs,
) {
    use std::arch::x86_64::*;
    // columns of the tile inside the output, as two 16-lane masks
    let mask = |from: usize| -> __mmask16 {
        let c = cols.saturating_sub(from).min(16);
        if c == 16 {
            0xffff
        } else {
            ((1u32 << c) - 1) as __mmask16
        }
    };
    let (m0, m1) = (mask(0), mask(16));
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for l in 0..k as isize {
        // SAFETY: l < k: the masked lanes of row l of b and element l of every a row are
        // readable (the contract); masked-off lanes are not read; a prefetch never faults.
        unsafe {
            let brow = b.offset(l * brs);
            if PF > 0 {
                _mm_prefetch::<_MM_HINT_T0>(brow.wrapping_offset(PF * brs) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(brow.wrapping_offset(PF * brs + 16) as *const i8);
            }
            // whole tiles load without a mask (a masked load takes a second micro-op on the
            // port the multiply-adds use)
            let (b0, b1) = if FULL {
                (_mm512_loadu_ps(brow), _mm512_loadu_ps(brow.add(16)))
            } else {
                (
                    _mm512_maskz_loadu_ps(m0, brow),
                    _mm512_maskz_loadu_ps(m1, brow.wrapping_add(16)),
                )
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                let ap = if PACKED {
                    arows[0].offset(l * MR as isize + r as isize)
                } else {
                    arows[r].offset(l * acs)
                };
                let av = _mm512_set1_ps(*ap);
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: row r < rows and the masked lanes are columns < cols of the tile.
        unsafe {
            let row = out.add(r * ldc);
            for (h, (mk, v)) in [(m0, acc[0]), (m1, acc[1])].into_iter().enumerate() {
                if mk == 0 {
                    continue;
                }
                let p = row.add(16 * h);
                if FULL && r < rows {
                    let y = if read {
                        _mm512_add_ps(_mm512_loadu_ps(p), v)
                    } else {
                        v
                    };
                    _mm512_storeu_ps(p, y);
                    continue;
                }
                let y = if read {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mk, p), v)
                } else {
                    v
                };
                _mm512_mask_storeu_ps(p, mk, y);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX-512 product gives the `gemm` crate's bits (its AVX2 micro-kernel's sums) on
    /// every shape it takes: ragged tiles, both operand layouts, writing or adding, one thread
    /// or all. Skipped where the CPU has no AVX-512F (nothing to compare).
    #[test]
    fn avx512_product_is_the_gemm_crates_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let mut r = crate::rng::Rng::new(3);
        for &(m, n, k) in &[
            (17, 33, 3),
            (64, 64, 27),
            (96, 3136, 64),
            (13, 700, 512),
            (200, 49, 300),
            (2, 129, 100),
            (129, 2, 77),
            // rows 1,024 and 768 floats apart: B packed by rows
            (20, 1024, 40),
            (37, 768, 100),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| r.normal() as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|_| r.normal() as f32).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| r.normal() as f32).collect();
            for (at, bt, read, threads) in [
                (false, false, false, 1),
                (true, false, true, 2),
                (false, true, true, 1),
                (true, true, false, 2),
            ] {
                // row-major a (m x k) or its transpose stored k x m; likewise b
                let (a_rs, a_cs) = if at { (1, m as isize) } else { (k as isize, 1) };
                let (b_rs, b_cs) = if bt { (1, k as isize) } else { (n as isize, 1) };
                let par = if threads == 1 {
                    Parallelism::None
                } else {
                    Parallelism::Rayon(threads)
                };
                let (mut ours, mut theirs) = (c0.clone(), c0.clone());
                // SAFETY: the operands hold m x k and k x n values at these strides, the
                // outputs m x n; the CPU has AVX-512F (checked above).
                unsafe {
                    sgemm_block(
                        (m, n, k),
                        Operand {
                            ptr: a.as_ptr(),
                            rs: a_rs,
                            cs: a_cs,
                        },
                        Operand {
                            ptr: b.as_ptr(),
                            rs: b_rs,
                            cs: b_cs,
                        },
                        ours.as_mut_ptr(),
                        n,
                        read,
                        par,
                    );
                    gemm::gemm(
                        m,
                        n,
                        k,
                        theirs.as_mut_ptr(),
                        1,
                        n as isize,
                        read,
                        a.as_ptr(),
                        a_cs,
                        a_rs,
                        b.as_ptr(),
                        b_cs,
                        b_rs,
                        if read { 1.0 } else { 0.0 },
                        1.0,
                        false,
                        false,
                        false,
                        par,
                    );
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&ours) == bits(&theirs),
                    "{m} x {n} x {k}, a^T {at}, b^T {bt}, read {read}"
                );
            }
        }
    }
}
