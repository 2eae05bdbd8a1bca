//! The batched matrix transposes behind ConvNeXt's `Permute` modules (NCHW <-> NHWC), on
//! rayon's threads in cache-sized tiles, for forward passes that need no gradient.
//!
//! Why: candle's `permute(..).contiguous()` is one strided copy on one thread: 5-6 % of a
//! ConvNeXt-T recording (two per block) with the other core idle. A copy has no arithmetic, so
//! the values are the same bits.

use super::cpu::{is_cpu_f32, with_cpu_f32};
use candle_core::Tensor;
use rayon::prelude::*;

/// Output rows (input columns) per rayon task and the tile edge of the copy.
const TILE: usize = 16;

/// `x.permute(perm).contiguous()` for a 4-D CPU f32 tensor when `perm` moves the channels last
/// (`[0, 2, 3, 1]`, NCHW -> NHWC) or first (`[0, 3, 1, 2]`, NHWC -> NCHW); `None` for other
/// permutations, devices and dtypes, or a tensor whose gradient is tracked (candle's permute
/// has the backward).
pub(crate) fn permute_channels(x: &Tensor, perm: [usize; 4]) -> crate::Result<Option<Tensor>> {
    if !is_cpu_f32(x) || x.track_op() || x.rank() != 4 {
        return Ok(None);
    }
    let (n, d1, d2, d3) = x.dims4()?;
    // each image is a `rows x cols` matrix to transpose
    let (rows, cols, out_dims) = match perm {
        [0, 2, 3, 1] => (d1, d2 * d3, (n, d2, d3, d1)),
        [0, 3, 1, 2] => (d1 * d2, d3, (n, d3, d1, d2)),
        _ => return Ok(None),
    };
    let out = with_cpu_f32(x, |src| {
        let mut out = vec![0f32; src.len()];
        let per = rows * cols;
        if per > 0 {
            out.par_chunks_mut(per)
                .zip(src.par_chunks(per))
                .for_each(|(o, s)| transpose(s, rows, cols, o));
        }
        out
    })?;
    Ok(Some(Tensor::from_vec(out, out_dims, x.device())?))
}

/// `o[j * rows + i] = s[i * cols + j]`, `TILE` output rows per task, copied in
/// `TILE x TILE` tiles.
pub(super) fn transpose(s: &[f32], rows: usize, cols: usize, o: &mut [f32]) {
    o.par_chunks_mut(rows * TILE)
        .enumerate()
        .for_each(|(t, ob)| {
            let j0 = t * TILE;
            let nj = ob.len() / rows;
            for i0 in (0..rows).step_by(TILE) {
                let ni = TILE.min(rows - i0);
                for dj in 0..nj {
                    let orow = &mut ob[dj * rows + i0..][..ni];
                    for (di, v) in orow.iter_mut().enumerate() {
                        *v = s[(i0 + di) * cols + j0 + dj];
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use crate::Result;
    use candle_core::{Device, Tensor};

    #[test]
    fn channel_permutes_are_candles_copies() -> Result<()> {
        for (i, dims) in [(2, 96, 7, 9), (1, 3, 1, 1), (3, 17, 5, 33), (2, 1, 4, 4)]
            .into_iter()
            .enumerate()
        {
            let x = Tensor::randn(0f32, 1.0, dims, &Device::Cpu)?;
            for perm in [[0, 2, 3, 1], [0, 3, 1, 2]] {
                let [a, b, c, d] = perm;
                let theirs = x.permute((a, b, c, d))?.contiguous()?;
                let ours = super::permute_channels(&x, perm)?.ok_or_else(|| {
                    crate::Error::InvalidArgument("permute_channels declined".into())
                })?;
                assert_eq!(ours.dims(), theirs.dims(), "case {i}");
                let (o, t) = (
                    ours.flatten_all()?.to_vec1::<f32>()?,
                    theirs.flatten_all()?.to_vec1::<f32>()?,
                );
                assert_eq!(o, t, "case {i} {perm:?}");
            }
        }
        let v = candle_core::Var::randn(0f32, 1.0, (1, 2, 3, 4), &Device::Cpu)?;
        assert!(super::permute_channels(v.as_tensor(), [0, 2, 3, 1])?.is_none());
        assert!(super::permute_channels(&v.as_tensor().detach(), [0, 1, 3, 2])?.is_none());
        Ok(())
    }
}
