//! How the optimised image is parameterised: raw pixels (workflow 5) or Lucent's Fourier basis with
//! decorrelated colour, which favours low frequencies and natural colour statistics.

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{Device, Tensor, Var};

/// The image parameterisation.
///
/// ```
/// use neuroscope::featvis::Param;
/// assert_eq!(Param::default(), Param::Pixels { noise: 0.005 });
/// assert!(matches!(Param::fft(), Param::Fft { decorrelate: true, .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    /// Workflow 5's `generate_random_image`: grey 0.5 plus uniform noise in `±noise / 2`, the
    /// pixels optimised directly and fed to the network unbounded.
    Pixels {
        /// Width of the uniform noise (workflow 5: 0.005).
        noise: f32,
    },
    /// Lucent's `fft_image` + `to_valid_rgb`: Fourier coefficients (normal, `sd`) scaled by
    /// `1 / frequency^decay_power`, an inverse real FFT, colour decorrelation (3 channels) and
    /// a sigmoid, so pixels stay in `(0, 1)`.
    Fft {
        /// Standard deviation of the initial coefficients (Lucent: 0.01).
        sd: f32,
        /// Spectrum decay (Lucent: 1.0).
        decay_power: f32,
        /// Apply Lucent's colour-correlation square root (3-channel images only).
        decorrelate: bool,
    },
}

impl Default for Param {
    fn default() -> Self {
        Param::Pixels { noise: 0.005 }
    }
}

impl Param {
    /// Lucent's defaults: `Fft { sd: 0.01, decay_power: 1.0, decorrelate: true }`.
    pub fn fft() -> Param {
        Param::Fft {
            sd: 0.01,
            decay_power: 1.0,
            decorrelate: true,
        }
    }
}

/// Lucent's `color_correlation_svd_sqrt`, divided by its largest column norm.
const COLOR_CORRELATION: [[f32; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// The live parameters and how they become an image.
pub(crate) struct Image {
    kind: Param,
    vars: Vec<(String, Var)>,
    /// FFT only: per-frequency scale (`1, 1, H, Wf`), inverse-DFT bases and the colour matrix.
    scale: Option<Tensor>,
    bases: Option<[Tensor; 4]>,
    color: Option<Tensor>,
}

impl Image {
    pub(crate) fn new(
        kind: Param,
        shape: (usize, usize, usize, usize),
        device: &Device,
        seed: u64,
    ) -> Result<Image> {
        let (n, c, h, w) = shape;
        // Image i draws from its own stream (seed + i), so image i of a batch starts where a
        // single run with seed + i starts: batched and one-by-one runs agree.
        let per_image = |len: usize, f: &mut dyn FnMut(&mut Rng) -> f32| -> Vec<f32> {
            (0..n)
                .flat_map(|i| {
                    let mut rng = Rng::new(seed.wrapping_add(i as u64));
                    (0..len).map(|_| f(&mut rng)).collect::<Vec<f32>>()
                })
                .collect()
        };
        match kind {
            Param::Pixels { noise } => {
                let v = per_image(c * h * w, &mut |r| 0.5 + (r.uniform() as f32 - 0.5) * noise);
                let var = Var::from_vec(v, shape, device)?;
                Ok(Image {
                    kind,
                    vars: vec![("image".into(), var)],
                    scale: None,
                    bases: None,
                    color: None,
                })
            }
            Param::Fft {
                sd, decay_power, ..
            } => {
                let wf = w / 2 + 1;
                // Real and imaginary parts interleaved per coefficient, as Lucent's (..., 2).
                let both = per_image(c * h * wf * 2, &mut |r| r.normal() as f32 * sd);
                let re: Vec<f32> = both.iter().step_by(2).copied().collect();
                let im: Vec<f32> = both.iter().skip(1).step_by(2).copied().collect();
                // numpy's fftfreq: k / n for k < (n + 1) / 2, then negative.
                let freq = |k: usize, len: usize| {
                    let k = if k < len.div_ceil(2) {
                        k as f64
                    } else {
                        k as f64 - len as f64
                    };
                    k / len as f64
                };
                let floor = 1.0 / h.max(w) as f64;
                // Lucent's scale, its "magic" 1/4 and the 1/sqrt(HW) of norm="ortho" in one.
                let ortho = 1.0 / ((h * w) as f64).sqrt() / 4.0;
                let scale: Vec<f32> = (0..h * wf)
                    .map(|i| {
                        let (fy, fx) = (freq(i / wf, h), freq(i % wf, w));
                        let f = (fy * fy + fx * fx).sqrt().max(floor);
                        (ortho / f.powf(decay_power as f64)) as f32
                    })
                    .collect();
                let tau = std::f64::consts::TAU;
                // Along H (complex inverse DFT): cos and sin of 2 pi k m / H, indexed [m, k].
                let ch: Vec<f32> = (0..h * h)
                    .map(|i| (tau * ((i / h) * (i % h)) as f64 / h as f64).cos() as f32)
                    .collect();
                let sh: Vec<f32> = (0..h * h)
                    .map(|i| (tau * ((i / h) * (i % h)) as f64 / h as f64).sin() as f32)
                    .collect();
                // Along W (complex-to-real): weight 2 for the frequencies that stand for a
                // conjugate pair, 1 for DC and (even W) Nyquist; indexed [l, x].
                let weight = |l: usize| {
                    if l == 0 || (w % 2 == 0 && l == w / 2) {
                        1.0
                    } else {
                        2.0
                    }
                };
                let cw: Vec<f32> = (0..wf * w)
                    .map(|i| {
                        let (l, x) = (i / w, i % w);
                        (weight(l) * (tau * (l * x) as f64 / w as f64).cos()) as f32
                    })
                    .collect();
                let sw: Vec<f32> = (0..wf * w)
                    .map(|i| {
                        let (l, x) = (i / w, i % w);
                        (weight(l) * (tau * (l * x) as f64 / w as f64).sin()) as f32
                    })
                    .collect();
                let color = if c == 3 {
                    let m = COLOR_CORRELATION;
                    let max_norm = (0..3)
                        .map(|j| (0..3).map(|i| m[i][j] * m[i][j]).sum::<f32>().sqrt())
                        .fold(0f32, f32::max);
                    let v: Vec<f32> = m.iter().flatten().map(|v| v / max_norm).collect();
                    Some(Tensor::from_vec(v, (3, 3), device)?)
                } else {
                    None
                };
                Ok(Image {
                    kind,
                    vars: vec![
                        ("re".into(), Var::from_vec(re, (n, c, h, wf), device)?),
                        ("im".into(), Var::from_vec(im, (n, c, h, wf), device)?),
                    ],
                    scale: Some(Tensor::from_vec(scale, (1, 1, h, wf), device)?),
                    bases: Some([
                        Tensor::from_vec(ch, (h, h), device)?,
                        Tensor::from_vec(sh, (h, h), device)?,
                        Tensor::from_vec(cw, (wf, w), device)?,
                        Tensor::from_vec(sw, (wf, w), device)?,
                    ]),
                    color,
                })
            }
        }
    }

    /// The variables the optimiser updates.
    pub(crate) fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// The current image, `N x C x H x W` (for `Pixels`, the variable itself, so a copy must
    /// be taken to keep it past the next update).
    pub(crate) fn image(&self) -> Result<Tensor> {
        match self.kind {
            Param::Pixels { .. } => Ok(self.vars[0].1.as_tensor().clone()),
            Param::Fft { decorrelate, .. } => {
                let (Some(scale), Some([ch, sh, cw, sw])) = (&self.scale, &self.bases) else {
                    return Err(Error::InvalidArgument(
                        "internal: an FFT image without its Fourier bases".into(),
                    ));
                };
                let re = self.vars[0].1.as_tensor().broadcast_mul(scale)?;
                let im = self.vars[1].1.as_tensor().broadcast_mul(scale)?;
                let (n, c, h, wf) = re.dims4()?;
                let w = cw.dim(1)?;
                // Inverse DFT along H: Y = (C + iS)(Xr + iXi).
                let (re, im) = (re.reshape((n * c, h, wf))?, im.reshape((n * c, h, wf))?);
                // (ops::matmul: sums that do not depend on the CPU, also above 512 px.)
                use crate::kernels::matmul;
                let yr = (matmul(ch, &re)? - matmul(sh, &im)?)?;
                let yi = (matmul(sh, &re)? + matmul(ch, &im)?)?;
                // Complex-to-real along W: x = Yr cos - Yi sin (weighted).
                let x = (matmul(&yr, cw)? - matmul(&yi, sw)?)?;
                let mut x = x.reshape((n, c, h, w))?;
                if decorrelate {
                    if let Some(m) = &self.color {
                        x = matmul(m, &x.reshape((n, c, h * w))?)?.reshape((n, c, h, w))?;
                    }
                }
                Ok(candle_nn::ops::sigmoid(&x)?)
            }
        }
    }
}
