//! LayerNorm over the last axis or the channels, and softmax over the last axis, in one pass, for forward passes that need
//! no gradient (recording), with the bits of the candle operations they replace.
//!
//! Why: `LayerNorm` (ViT's 25, ConvNeXt's 18 per block stack) and the attention softmax were
//! chains of candle operations (mean, subtract, square, mean, add, square root, divide,
//! multiply, add; maximum, subtract, exponential, sum, divide), each a pass over the whole
//! activation with a fresh buffer: together with GELU most of the 20-35 % of ViT-B/16 and
//! ConvNeXt-T recordings spent outside the matrix products. Here each row is read once and
//! written once.
//!
//! Same bits: every step is the candle operation's own arithmetic in its order. Candle sums a
//! contiguous row (`sum_keepdim` over the last axis) with `cpu::vec_sum`: on a CPU with AVX2
//! four 8-lane accumulators over blocks of 32, combined as `(a0 + a1) + (a2 + a3)`, then the
//! halves of the 8 lanes and two horizontal adds, then the rest of the row one by one; elsewhere
//! one sequential sum. [`candle_row_sum`] computes the same additions in the same order
//! (lane-wise, in plain code), chosen by the same test. `mean_keepdim` multiplies the sum by
//! `1 / n` and adds 0 (candle's affine map), `+ eps` multiplies by 1 and adds `eps`.
//! Tests compare the bits with the candle chains.

use super::cpu::{is_cpu_f32, with_cpu_f32};
use candle_core::Tensor;
use rayon::prelude::*;

/// Rows per rayon task: enough work to hide the scheduling.
const ROWS_PER_TASK: usize = 64;

/// The sum of a row as candle's `sum_keepdim` over the last axis computes it on this CPU.
pub(crate) fn candle_row_sum(row: &[f32]) -> f32 {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return avx2_order_sum(row);
        }
    }
    row.iter().fold(0f32, |s, &v| s + v)
}

/// candle's AVX2 `vec_sum` order, in plain code: `acc[j][l] += row[i + 8 j + l]` over the
/// blocks of 32, then the same combination of lanes as its `vec_reduce`, then the tail.
#[cfg_attr(
    not(any(target_arch = "x86", target_arch = "x86_64")),
    allow(dead_code)
)]
fn avx2_order_sum(row: &[f32]) -> f32 {
    let np = row.len() & !31;
    let mut acc = [[0f32; 8]; 4];
    for block in row[..np].chunks_exact(32) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, v) in a.iter_mut().enumerate() {
                *v += block[j * 8 + l];
            }
        }
    }
    let lanes = |a: [f32; 8], b: [f32; 8]| -> [f32; 8] { std::array::from_fn(|l| a[l] + b[l]) };
    let x0 = lanes(acc[0], acc[1]);
    let x2 = lanes(acc[2], acc[3]);
    let x0 = lanes(x0, x2);
    // _mm_add_ps(low half, high half), then hadd(t0, t0) and hadd(t1, t1): lane 0 is
    // (t0[0] + t0[1]) + (t0[2] + t0[3]).
    let t0: [f32; 4] = std::array::from_fn(|l| x0[l] + x0[l + 4]);
    let mut s = (t0[0] + t0[1]) + (t0[2] + t0[3]);
    for &v in &row[np..] {
        s += v;
    }
    s
}

/// Runs `f(input row, output row)` over the rows of width `d` of a contiguous CPU f32 tensor
/// into a new tensor of the same shape.
fn by_rows(
    x: &Tensor,
    d: usize,
    f: impl Fn(&[f32], &mut [f32], &mut Vec<f32>) + Sync,
) -> candle_core::Result<Tensor> {
    let out = with_cpu_f32(x, |src| {
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(d * ROWS_PER_TASK)
            .zip(src.par_chunks(d * ROWS_PER_TASK))
            .for_each_init(Vec::new, |scratch, (o, s)| {
                for (orow, srow) in o.chunks_mut(d).zip(s.chunks(d)) {
                    f(srow, orow, scratch);
                }
            });
        out
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}

/// Whether the one-pass kernels apply: a CPU f32 tensor whose last axis has `d > 0` values
/// and that no gradient flows through.
fn applies(x: &Tensor) -> bool {
    is_cpu_f32(x) && !x.track_op() && x.rank() >= 1 && x.dims().last().is_some_and(|&d| d > 0)
}

/// `LayerNorm` over the last axis, `(x - mean) / sqrt(var + eps) * weight + bias`, in one pass
/// per row; `None` where the candle operations must run (another device or dtype, or a
/// gradient to track).
pub(crate) fn layer_norm_last(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> crate::Result<Option<Tensor>> {
    if !applies(x) || weight.track_op() || bias.track_op() {
        return Ok(None);
    }
    if !(is_cpu_f32(weight) && is_cpu_f32(bias)) {
        return Ok(None);
    }
    let d = x.dims()[x.rank() - 1];
    let (w, b) = (
        weight.flatten_all()?.to_vec1::<f32>()?,
        bias.flatten_all()?.to_vec1::<f32>()?,
    );
    if w.len() != d || b.len() != d {
        return Ok(None);
    }
    // candle's `mean_keepdim`: the sum times (1 / n as f64) as f32, plus 0 as f32.
    let scale = (1f64 / d as f64) as f32;
    let eps = eps as f32;
    let y = by_rows(x, d, |row, out, sq| {
        let mean = candle_row_sum(row) * scale + 0f32;
        for (o, &v) in out.iter_mut().zip(row) {
            *o = v - mean;
        }
        sq.clear();
        sq.extend(out.iter().map(|&c| c * c));
        let var = candle_row_sum(sq) * scale + 0f32;
        let denom = (var * 1f32 + eps).sqrt();
        for ((o, &wv), &bv) in out.iter_mut().zip(&w).zip(&b) {
            *o = *o / denom * wv + bv;
        }
    })?;
    Ok(Some(y))
}

/// `LayerNorm` over the channels (axis 1) of an `N x C x ...` map (ConvNeXt's `LayerNorm2d`)
/// in one pass per image; `None` where the candle operations must run.
///
/// Candle reduces a non-last axis one element after another in memory order, so every
/// position's sum runs over the channels in order from 0: here each block of positions keeps
/// its running sums side by side while the channels stream past (the same additions, in the
/// same order, vectorised across positions), where candle's strided reduction took a division
/// per element on one thread.
pub(crate) fn layer_norm_channels(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> crate::Result<Option<Tensor>> {
    if !applies(x) || weight.track_op() || bias.track_op() || x.rank() < 2 {
        return Ok(None);
    }
    if !(is_cpu_f32(weight) && is_cpu_f32(bias)) {
        return Ok(None);
    }
    let c = x.dims()[1];
    let plane: usize = x.dims()[2..].iter().product();
    let (w, b) = (
        weight.flatten_all()?.to_vec1::<f32>()?,
        bias.flatten_all()?.to_vec1::<f32>()?,
    );
    if c == 0 || plane == 0 || w.len() != c || b.len() != c {
        return Ok(None);
    }
    let scale = (1f64 / c as f64) as f32;
    let eps = eps as f32;
    // positions per task: running sums for a block of them, the channels streamed past
    const BLOCK: usize = 64;
    let out = with_cpu_f32(x, |src| {
        let mut out = vec![0f32; src.len()];
        let blocks = plane.div_ceil(BLOCK);
        // each task owns one image's block of positions in every channel plane: split the output
        // by image, and an image's planes by block through raw chunks of each channel row
        out.par_chunks_mut(c * plane)
            .zip(src.par_chunks(c * plane))
            .for_each(|(o, s)| {
                let mut rows: Vec<&mut [f32]> = o.chunks_mut(plane).collect();
                let mut parts: Vec<Vec<&mut [f32]>> = (0..blocks).map(|_| Vec::new()).collect();
                for row in rows.iter_mut() {
                    for (k, part) in row.chunks_mut(BLOCK).enumerate() {
                        parts[k].push(part);
                    }
                }
                parts
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(k, mut orows)| {
                        let p0 = k * BLOCK;
                        let len = orows.first().map_or(0, |r| r.len());
                        let mut acc = [0f32; BLOCK];
                        let acc = &mut acc[..len];
                        for ch in 0..c {
                            let xr = &s[ch * plane + p0..][..len];
                            acc.iter_mut().zip(xr).for_each(|(a, &v)| *a += v);
                        }
                        let mean: Vec<f32> = acc.iter().map(|&t| t * scale + 0f32).collect();
                        acc.fill(0.0);
                        for (ch, orow) in orows.iter_mut().enumerate() {
                            let xr = &s[ch * plane + p0..][..len];
                            for ((o, &v), (&m, a)) in
                                orow.iter_mut().zip(xr).zip(mean.iter().zip(acc.iter_mut()))
                            {
                                *o = v - m;
                                *a += *o * *o;
                            }
                        }
                        let denom: Vec<f32> = acc
                            .iter()
                            .map(|&t| ((t * scale + 0f32) * 1f32 + eps).sqrt())
                            .collect();
                        for (ch, orow) in orows.iter_mut().enumerate() {
                            for (o, &d) in orow.iter_mut().zip(&denom) {
                                *o = *o / d * w[ch] + b[ch];
                            }
                        }
                    });
            });
        out
    })?;
    Ok(Some(Tensor::from_vec(out, x.shape(), x.device())?))
}

/// Softmax over the last axis with the maximum subtracted first, in one pass per row; `None`
/// where the candle operations must run.
pub(crate) fn softmax_last(x: &Tensor) -> crate::Result<Option<Tensor>> {
    if !applies(x) {
        return Ok(None);
    }
    let d = x.dims()[x.rank() - 1];
    let y = by_rows(x, d, |row, out, _| softmax_row(row, out))?;
    Ok(Some(y))
}

/// One row of [`softmax_last`]: `out = exp(row - max) / sum`, with the candle chain's bits.
fn softmax_row(row: &[f32], out: &mut [f32]) {
    // candle's max reduction keeps the first of equal values; max is exact in any order.
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // `(v - max).exp()` for each value, eight at a time with glibc's bits where it can
    super::exp_glibc::exp_shifted(row, max, out);
    normalise(out);
}

/// [`softmax_row`] in place.
pub(super) fn softmax_row_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    super::exp_glibc::exp_shifted_in_place(row, max);
    normalise(row);
}

/// Divides a row of exponentials by their sum (candle's order).
fn normalise(out: &mut [f32]) {
    let sum = candle_row_sum(out);
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Result;
    use candle_core::{Device, D};

    fn rand(shape: &[usize], seed: u64) -> Result<Tensor> {
        let mut r = crate::rng::Rng::new(seed);
        let n = shape.iter().product::<usize>();
        let v: Vec<f32> = (0..n).map(|_| (r.uniform() as f32 - 0.3) * 7.0).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    }

    fn bits(t: &Tensor) -> Result<Vec<u32>> {
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(v.iter().map(|x| x.to_bits()).collect())
    }

    /// The one-pass kernel's output, which must exist for an untracked CPU tensor.
    fn fast(y: Result<Option<Tensor>>) -> Result<Tensor> {
        y?.ok_or_else(|| crate::Error::InvalidArgument("the one-pass kernel declined".into()))
    }

    /// Row widths below, at and around candle's 32-value blocks, and ViT's and ConvNeXt's.
    const WIDTHS: [usize; 9] = [1, 7, 31, 32, 33, 96, 197, 384, 768];

    #[test]
    fn row_sum_is_candles_sum_keepdim_bit_for_bit() -> Result<()> {
        for (i, &d) in WIDTHS.iter().enumerate() {
            let x = rand(&[13, d], i as u64)?;
            let theirs = x.sum_keepdim(D::Minus1)?;
            let ours: Vec<f32> = x
                .to_vec2::<f32>()?
                .iter()
                .map(|r| candle_row_sum(r))
                .collect();
            let ours = Tensor::from_vec(ours, (13, 1), &Device::Cpu)?;
            assert_eq!(bits(&ours)?, bits(&theirs)?, "width {d}");
        }
        Ok(())
    }

    #[test]
    fn layer_norm_is_the_candle_chain_bit_for_bit() -> Result<()> {
        for (i, &d) in WIDTHS.iter().enumerate() {
            let x = rand(&[3, 70, d], 10 + i as u64)?;
            let (w, b) = (rand(&[d], 20 + i as u64)?, rand(&[d], 30 + i as u64)?);
            let eps = 1e-6;
            // `models::layers::LayerNorm::normalize`'s operations over the last axis.
            let mean = x.mean_keepdim(D::Minus1)?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
            let theirs = normed
                .broadcast_mul(&w.reshape((1, 1, d))?)?
                .broadcast_add(&b.reshape((1, 1, d))?)?;
            let ours = fast(layer_norm_last(&x, &w, &b, eps))?;
            assert_eq!(ours.dims(), theirs.dims());
            assert_eq!(bits(&ours)?, bits(&theirs)?, "width {d}");
        }
        Ok(())
    }

    #[test]
    fn channel_layer_norm_is_the_candle_chain_bit_for_bit() -> Result<()> {
        // ConvNeXt's stem (96 channels), a plane shorter than a block, ragged last blocks
        for (i, &(c, h, w)) in [(96, 9, 9), (7, 2, 3), (33, 8, 17), (1, 5, 5), (192, 4, 4)]
            .iter()
            .enumerate()
        {
            let x = rand(&[2, c, h, w], 50 + i as u64)?;
            let (wt, b) = (rand(&[c], 60 + i as u64)?, rand(&[c], 70 + i as u64)?);
            let eps = 1e-6;
            // `models::layers::LayerNorm::normalize`'s operations over axis 1.
            let mean = x.mean_keepdim(1)?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(1)?;
            let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
            let theirs = normed
                .broadcast_mul(&wt.reshape((1, c, 1, 1))?)?
                .broadcast_add(&b.reshape((1, c, 1, 1))?)?;
            let ours = fast(layer_norm_channels(&x, &wt, &b, eps))?;
            assert_eq!(ours.dims(), theirs.dims());
            assert_eq!(bits(&ours)?, bits(&theirs)?, "{c} x {h} x {w}");
        }
        Ok(())
    }

    #[test]
    fn softmax_is_the_candle_chain_bit_for_bit() -> Result<()> {
        for (i, &d) in WIDTHS.iter().enumerate() {
            let x = rand(&[2, 3, 41, d], 40 + i as u64)?;
            let max = x.max_keepdim(D::Minus1)?;
            let e = x.broadcast_sub(&max)?.exp()?;
            let theirs = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            let ours = fast(softmax_last(&x))?;
            assert_eq!(bits(&ours)?, bits(&theirs)?, "width {d}");
        }
        Ok(())
    }

    #[test]
    fn tracked_inputs_are_left_to_candle() -> Result<()> {
        let v = candle_core::Var::from_tensor(&rand(&[4, 8], 1)?)?;
        assert!(softmax_last(v.as_tensor())?.is_none());
        let (w, b) = (rand(&[8], 2)?, rand(&[8], 3)?);
        assert!(layer_norm_last(v.as_tensor(), &w, &b, 1e-5)?.is_none());
        let wv = candle_core::Var::from_tensor(&w)?;
        assert!(layer_norm_last(&rand(&[4, 8], 4)?, wv.as_tensor(), &b, 1e-5)?.is_none());
        Ok(())
    }
}
