//! Random, differentiable image transforms applied before each forward pass (Lucent's
//! `transform` module): they make the optimised image work under small shifts, scales and
//! rotations, which removes most of the high-frequency noise of the plain method.
//!
//! Every transform is written with candle operations that have a backward on every device
//! (narrow, concatenation, index-select, convolution), so gradients reach the image on the
//! CPU, CUDA and Metal alike. Resampling (scale, rotation, resize) is bilinear with
//! `align_corners=True` and zeros outside, as PyTorch's `interpolate` and kornia's `rotate`.

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// One augmentation (Lucent's `transform`s; named apart from [`crate::data::Transform`], a
/// dataset's preprocessing). A list of them is applied in order, with fresh random choices
/// every step.
///
/// ```
/// use neuroscope::featvis::Augment;
/// let t = Augment::lucent();
/// assert_eq!(t.len(), 5);
/// assert_eq!(t[0], Augment::Pad { px: 12, value: 0.5 });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Augment {
    /// Constant padding on every side (Lucent: 12 px of grey 0.5).
    Pad {
        /// Pixels per side.
        px: usize,
        /// Fill value.
        value: f32,
    },
    /// A random shift by 0..d-1 pixels down and right, zeros coming in (Lucent's `jitter(d)`).
    Jitter(usize),
    /// Resize by a factor drawn from the list (Lucent's `random_scale`).
    Scale(Vec<f32>),
    /// Rotate about the centre by an angle in degrees drawn from the list (`random_rotate`).
    Rotate(Vec<f32>),
    /// Gaussian blur with this standard deviation in pixels (edges renormalised).
    Blur(f32),
    /// Bilinear resize to `size x size` (Lucent upsamples images smaller than 224 px).
    Resize(usize),
}

impl Augment {
    /// Lucent's `standard_transforms`: pad 12 (grey), jitter 8, scale 0.9..1.1 in 11 steps,
    /// rotate -10..10 degrees (0 five more times), jitter 4.
    pub fn lucent() -> Vec<Augment> {
        let scales = (0..11).map(|i| 1.0 + (i as f32 - 5.0) / 50.0).collect();
        let mut angles: Vec<f32> = (-10..=10).map(|a| a as f32).collect();
        angles.extend([0.0; 5]);
        vec![
            Augment::Pad { px: 12, value: 0.5 },
            Augment::Jitter(8),
            Augment::Scale(scales),
            Augment::Rotate(angles),
            Augment::Jitter(4),
        ]
    }

    /// Applies the transform to an `N x C x H x W` batch (the same random choice for all).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use neuroscope::{featvis::Augment, rng::Rng};
    /// let x = Tensor::ones((1, 3, 16, 16), candle_core::DType::F32, &Device::Cpu)?;
    /// let mut rng = Rng::new(0);
    /// let y = Augment::Pad { px: 2, value: 0.5 }.apply(&x, &mut rng)?;
    /// assert_eq!(y.dims(), &[1, 3, 20, 20]);
    /// let z = Augment::Rotate(vec![0.0]).apply(&x, &mut rng)?;    // identity
    /// assert!((z - &x)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn apply(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        match self {
            Augment::Pad { px, value } => pad(x, *px, *value),
            Augment::Jitter(d) => {
                if *d < 2 {
                    return Err(Error::InvalidArgument(format!(
                        "jitter must be at least 2 pixels, got {d}"
                    )));
                }
                let dy = rng.below(*d as u64) as usize;
                let dx = rng.below(*d as u64) as usize;
                translate(x, dy, dx)
            }
            Augment::Scale(scales) => {
                let s = pick(scales, rng, "scale")?;
                let (oh, ow) = (
                    (s as f64 * h as f64).ceil() as usize,
                    (s as f64 * w as f64).ceil() as usize,
                );
                resize(x, oh.max(1), ow.max(1))
            }
            Augment::Rotate(angles) => {
                let a = (pick(angles, rng, "rotate")? as f64).to_radians();
                if a == 0.0 {
                    return Ok(x.clone());
                }
                let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
                let (sin, cos) = a.sin_cos();
                // Output pixel (i, j) reads the input at the inverse rotation of its offset.
                sample(x, h, w, |i, j| {
                    let (dy, dx) = (i as f64 - cy, j as f64 - cx);
                    (cy + cos * dy - sin * dx, cx + sin * dy + cos * dx)
                })
            }
            Augment::Blur(sigma) => blur(x, *sigma),
            Augment::Resize(size) => {
                if (h, w) == (*size, *size) {
                    Ok(x.clone())
                } else {
                    resize(x, *size, *size)
                }
            }
        }
    }
}

fn pick(list: &[f32], rng: &mut Rng, what: &str) -> Result<f32> {
    if list.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what}: the list of choices is empty"
        )));
    }
    Ok(list[rng.below(list.len() as u64) as usize])
}

/// Constant padding of `px` on every side.
fn pad(x: &Tensor, px: usize, value: f32) -> Result<Tensor> {
    if px == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let side = |hh: usize, ww: usize| -> Result<Tensor> {
        Ok((Tensor::ones((n, c, hh, ww), x.dtype(), x.device())? * value as f64)?)
    };
    let x = Tensor::cat(&[side(h, px)?, x.clone(), side(h, px)?], 3)?;
    let w2 = w + 2 * px;
    Ok(Tensor::cat(&[side(px, w2)?, x, side(px, w2)?], 2)?)
}

/// Shifts the image down by `dy` and right by `dx`, zeros coming in, size kept.
fn translate(x: &Tensor, dy: usize, dx: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let mut y = x.clone();
    if dy > 0 {
        let z = Tensor::zeros((n, c, dy, w), x.dtype(), x.device())?;
        y = Tensor::cat(&[z, y.narrow(2, 0, h - dy.min(h))?], 2)?;
    }
    if dx > 0 {
        let z = Tensor::zeros((n, c, h, dx), x.dtype(), x.device())?;
        y = Tensor::cat(&[z, y.narrow(3, 0, w - dx.min(w))?], 3)?;
    }
    Ok(y)
}

/// Bilinear resize with `align_corners=True` (PyTorch's `interpolate(..., "bilinear", True)`).
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[[[0f32, 1.0], [2.0, 3.0]]]], &Device::Cpu)?;
/// let y = neuroscope::featvis::resize(&x, 3, 3)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn resize(x: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let ry = if oh > 1 {
        (h as f64 - 1.0) / (oh as f64 - 1.0)
    } else {
        0.0
    };
    let rx = if ow > 1 {
        (w as f64 - 1.0) / (ow as f64 - 1.0)
    } else {
        0.0
    };
    sample(x, oh, ow, |i, j| (i as f64 * ry, j as f64 * rx))
}

/// Bilinear sampling: output pixel `(i, j)` of an `oh x ow` grid reads the input at the
/// fractional position `at(i, j) = (row, column)`, zeros outside. Four index-selects on the
/// flattened image, weighted: differentiable on every device.
fn sample(
    x: &Tensor,
    oh: usize,
    ow: usize,
    at: impl Fn(usize, usize) -> (f64, f64),
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let m = oh * ow;
    let mut idx = vec![vec![0u32; m]; 4];
    let mut wt = vec![vec![0f32; m]; 4];
    for i in 0..oh {
        for j in 0..ow {
            let (sy, sx) = at(i, j);
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let corners = [
                (y0, x0, (1.0 - fy) * (1.0 - fx)),
                (y0, x0 + 1.0, (1.0 - fy) * fx),
                (y0 + 1.0, x0, fy * (1.0 - fx)),
                (y0 + 1.0, x0 + 1.0, fy * fx),
            ];
            for (k, &(yy, xx, wgt)) in corners.iter().enumerate() {
                let inside = yy >= 0.0 && xx >= 0.0 && yy < h as f64 && xx < w as f64;
                if inside && wgt > 0.0 {
                    idx[k][i * ow + j] = (yy as usize * w + xx as usize) as u32;
                    wt[k][i * ow + j] = wgt as f32;
                }
            }
        }
    }
    let flat = x.reshape((n, c, h * w))?;
    let mut out: Option<Tensor> = None;
    for k in 0..4 {
        if wt[k].iter().all(|&v| v == 0.0) {
            continue;
        }
        let ix = Tensor::from_slice(&idx[k], m, x.device())?;
        let wk = Tensor::from_slice(&wt[k], (1, 1, m), x.device())?.to_dtype(x.dtype())?;
        let term = flat.index_select(&ix, 2)?.broadcast_mul(&wk)?;
        out = Some(match out {
            Some(o) => (o + term)?,
            None => term,
        });
    }
    let out = match out {
        Some(o) => o,
        None => Tensor::zeros((n, c, m), x.dtype(), x.device())?,
    };
    Ok(out.reshape((n, c, oh, ow))?)
}

/// Gaussian blur per channel; edges are divided by the kernel mass that falls inside.
fn blur(x: &Tensor, sigma: f32) -> Result<Tensor> {
    if sigma <= 0.0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let r = (2.0 * sigma).ceil() as usize;
    let k = 2 * r + 1;
    let g: Vec<f32> = (0..k)
        .map(|i| (-((i as f32 - r as f32).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = g.iter().sum();
    let kernel: Vec<f32> = (0..k * k).map(|i| g[i / k] * g[i % k] / (s * s)).collect();
    let kernel = Tensor::from_vec(kernel, (1, 1, k, k), x.device())?.to_dtype(x.dtype())?;
    let planes = x.reshape((n * c, 1, h, w))?;
    let num = planes.conv2d(&kernel, r, 1, 1, 1)?;
    let ones = Tensor::ones((1, 1, h, w), DType::F32, x.device())?.to_dtype(x.dtype())?;
    let mass = ones.conv2d(&kernel, r, 1, 1, 1)?;
    Ok(num.broadcast_div(&mass)?.reshape((n, c, h, w))?)
}
