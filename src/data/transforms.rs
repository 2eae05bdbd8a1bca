//! Image transforms with torchvision's meaning and numbers.
//!
//! [`Resize`] is the antialiased bilinear resampling of torchvision (`antialias=True`, its
//! default since 0.17) and of PIL: when enlarging it equals plain bilinear interpolation with
//! half-pixel centres, when shrinking the triangle filter widens so that every input pixel
//! counts. [`CenterCrop`] rounds the offsets as torchvision does. The tests compare both with
//! PIL on committed fixtures.
//!
//! Order matters for speed, not for the result: resizing a grey image and then replicating it
//! to three channels ([`GrayToRgb`]) gives exactly the values torchvision gets by replicating
//! first, with a third of the work.
//!
//! ```
//! use neuroscope::data::{transforms::*, Image};
//! let tf = Compose::new().resize(224, 224).gray_to_rgb().normalize(Normalize::imagenet());
//! let out = tf.apply(Image::new(1, 28, 28, vec![0.5; 784]).unwrap()).unwrap();
//! assert_eq!(out.shape(), (3, 224, 224));
//! assert!((out.get(0, 100, 100) - (0.5 - 0.485) / 0.229).abs() < 1e-5);
//! ```

use super::Image;
use crate::{Error, Result};
use std::fmt::Debug;

/// A function from image to image, applied to each sample before batching.
pub trait Transform: Send + Sync + Debug {
    /// Transforms one image.
    fn apply(&self, image: Image) -> Result<Image>;

    /// Transforms one image straight into `out` (a slot of a batch buffer, which must have
    /// exactly the output's size) and returns the output shape. The default applies and
    /// copies; [`Compose`] fuses its trailing per-pixel steps into the write, which saves two
    /// passes over every 3 x 224 x 224 image.
    fn apply_into(&self, image: Image, out: &mut [f32]) -> Result<(usize, usize, usize)> {
        let img = self.apply(image)?;
        copy_into(&img, out)
    }

    /// The per-pixel form of this step, if it has one (used for fusion).
    fn pointwise(&self) -> Option<Pointwise<'_>> {
        None
    }
}

/// A per-pixel step that [`Compose::apply_into`] can fuse into its final write.
#[derive(Clone, Copy, Debug)]
pub enum Pointwise<'a> {
    /// [`GrayToRgb`].
    GrayToRgb,
    /// [`Normalize`].
    Normalize(&'a Normalize),
}

fn copy_into(img: &Image, out: &mut [f32]) -> Result<(usize, usize, usize)> {
    if out.len() != img.data().len() {
        return Err(Error::Shape {
            what: "transformed image".into(),
            expected: format!("{} values like the first image of the batch", out.len()),
            got: format!(
                "{:?}; add a Resize or CenterCrop to the transform",
                img.shape()
            ),
        });
    }
    out.copy_from_slice(img.data());
    Ok(img.shape())
}

/// Transforms applied in order (torchvision's `Compose`), built with chained methods.
///
/// ```
/// use neuroscope::data::transforms::{Compose, Normalize, Transform};
/// let tf = Compose::new().resize_shorter(256).center_crop(224, 224).normalize(Normalize::imagenet());
/// assert_eq!(tf.len(), 3);
/// ```
#[derive(Debug, Default)]
pub struct Compose {
    steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// No transform at all (the identity).
    pub fn new() -> Self {
        Compose::default()
    }
    /// Appends any transform.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(t));
        self
    }
    /// Appends `Resize((height, width))`.
    pub fn resize(self, height: usize, width: usize) -> Self {
        self.then(Resize::exact(height, width))
    }
    /// Appends `Resize(size)`: the shorter side becomes `size`, keeping the aspect ratio.
    pub fn resize_shorter(self, size: usize) -> Self {
        self.then(Resize::shorter_side(size))
    }
    /// Appends `CenterCrop((height, width))`.
    pub fn center_crop(self, height: usize, width: usize) -> Self {
        self.then(CenterCrop { height, width })
    }
    /// Appends [`GrayToRgb`].
    pub fn gray_to_rgb(self) -> Self {
        self.then(GrayToRgb)
    }
    /// Appends `Grayscale(num_output_channels=channels)`.
    pub fn grayscale(self, channels: usize) -> Self {
        self.then(Grayscale { channels })
    }
    /// Appends a [`Normalize`].
    pub fn normalize(self, n: Normalize) -> Self {
        self.then(n)
    }
    /// Appends `Normalize(mean, std)`; one value applies to every channel.
    pub fn normalize_mean_std(self, mean: &[f32], std: &[f32]) -> Self {
        self.then(Normalize::new(mean, std))
    }
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }
    /// True for the identity.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The usual ImageNet evaluation pipeline: resize the shorter side to 256, centre-crop 224,
    /// normalise with the ImageNet mean and std (torchvision's `IMAGENET1K_V1` transforms).
    pub fn imagenet_eval() -> Self {
        Compose::new()
            .resize_shorter(256)
            .center_crop(224, 224)
            .normalize(Normalize::imagenet())
    }
}

impl Transform for Compose {
    fn apply(&self, mut image: Image) -> Result<Image> {
        for s in &self.steps {
            image = s.apply(image)?;
        }
        Ok(image)
    }

    fn apply_into(&self, mut image: Image, out: &mut [f32]) -> Result<(usize, usize, usize)> {
        let fused_from = self
            .steps
            .iter()
            .rposition(|s| s.pointwise().is_none())
            .map_or(0, |i| i + 1);
        for s in &self.steps[..fused_from] {
            image = s.apply(image)?;
        }
        let tail: Vec<Pointwise> = self.steps[fused_from..]
            .iter()
            .filter_map(|s| s.pointwise())
            .collect();
        fused_write(&image, &tail, out)
    }
}

/// Applies a chain of per-pixel steps to `image`, writing the result into `out` in one pass.
fn fused_write(
    image: &Image,
    steps: &[Pointwise],
    out: &mut [f32],
) -> Result<(usize, usize, usize)> {
    let (c_in, h, w) = image.shape();
    let plane = h * w;
    // Track, for each output channel, which input plane it reads and the affine map applied.
    let mut source: Vec<usize> = (0..c_in).collect();
    let mut affine: Vec<(f32, f32)> = vec![(0.0, 1.0); c_in]; // (mean, std): (x - mean) / std
    for step in steps {
        match step {
            Pointwise::GrayToRgb => match source.len() {
                3 => {}
                1 => {
                    source = vec![source[0]; 3];
                    affine = vec![affine[0]; 3];
                }
                c => {
                    return Err(Error::Shape {
                        what: "input of GrayToRgb".into(),
                        expected: "1 or 3 channels".into(),
                        got: format!("{c} channels"),
                    })
                }
            },
            Pointwise::Normalize(n) => {
                let c = source.len();
                n.check(c)?;
                for (ch, a) in affine.iter_mut().enumerate() {
                    let (m, s) = n.stats(ch);
                    // ((x - m0) / s0 - m) / s, kept as one affine map when chained.
                    *a = if *a == (0.0, 1.0) {
                        (m, s)
                    } else {
                        (a.0 + m * a.1, a.1 * s)
                    };
                }
            }
        }
    }
    let c_out = source.len();
    if out.len() != c_out * plane {
        return Err(Error::Shape {
            what: "transformed image".into(),
            expected: format!("{} values like the first image of the batch", out.len()),
            got: format!(
                "{:?}; add a Resize or CenterCrop to the transform",
                (c_out, h, w)
            ),
        });
    }
    for (ch, dst) in out.chunks_mut(plane).enumerate() {
        let src = image.plane(source[ch]);
        let (m, s) = affine[ch];
        if (m, s) == (0.0, 1.0) {
            dst.copy_from_slice(src);
        } else {
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = (v - m) / s);
        }
    }
    Ok((c_out, h, w))
}

/// Target size of a [`Resize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Exactly `height x width`.
    Exact(usize, usize),
    /// The shorter side becomes this; the longer keeps the aspect ratio (truncated, as
    /// torchvision's `Resize(int)`).
    ShorterSide(usize),
}

/// Antialiased bilinear resize (torchvision `Resize(..., antialias=True)`, PIL `BILINEAR`).
///
/// ```
/// use neuroscope::data::{transforms::{Resize, Transform}, Image};
/// let img = Image::new(1, 1, 2, vec![0.0, 1.0]).unwrap();
/// let big = Resize::exact(1, 4).apply(img).unwrap();
/// assert_eq!(big.data(), &[0.0, 0.25, 0.75, 1.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    /// The target size.
    pub size: Size,
}

impl Resize {
    /// Resize to exactly `height x width`.
    pub fn exact(height: usize, width: usize) -> Self {
        Resize {
            size: Size::Exact(height, width),
        }
    }
    /// Resize so the shorter side is `size`.
    pub fn shorter_side(size: usize) -> Self {
        Resize {
            size: Size::ShorterSide(size),
        }
    }
    /// The output `(height, width)` for an input of `(height, width)`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        match self.size {
            Size::Exact(oh, ow) => (oh, ow),
            Size::ShorterSide(s) if h <= w => (s, (s as f64 * w as f64 / h as f64) as usize),
            Size::ShorterSide(s) => ((s as f64 * h as f64 / w as f64) as usize, s),
        }
    }
}

/// For each output position: the first input index and the normalised filter weights.
/// This is PIL's `precompute_coeffs` and ATen's `compute_indices_weights_aa` for the
/// triangle (bilinear) filter.
fn resample_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle filter's support is 1
    let inv = 1.0 / filterscale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| (1.0 - ((x as f64 - center + 0.5) * inv).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            (xmin, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

impl Transform for Resize {
    fn apply(&self, image: Image) -> Result<Image> {
        let (c, h, w) = image.shape();
        let (oh, ow) = self.output_size(h, w);
        if oh == 0 || ow == 0 || h == 0 || w == 0 {
            return Err(Error::InvalidArgument(format!(
                "cannot resize a {h} x {w} image to {oh} x {ow}"
            )));
        }
        if (oh, ow) == (h, w) {
            return Ok(image);
        }
        let wx = resample_weights(w, ow);
        let wy = resample_weights(h, oh);
        let mut out = vec![0f32; c * oh * ow];
        let mut tmp = vec![0f32; h * ow];
        for ch in 0..c {
            let src = image.plane(ch);
            // Horizontal pass: h rows of w -> h rows of ow.
            for y in 0..h {
                let row = &src[y * w..(y + 1) * w];
                let dst = &mut tmp[y * ow..(y + 1) * ow];
                for (d, (x0, k)) in dst.iter_mut().zip(&wx) {
                    *d = k.iter().zip(&row[*x0..]).map(|(a, b)| a * b).sum();
                }
            }
            // Vertical pass: accumulate weighted rows, which vectorises well.
            let plane = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
            for (y, (y0, k)) in wy.iter().enumerate() {
                let dst = &mut plane[y * ow..(y + 1) * ow];
                for (j, &kw) in k.iter().enumerate() {
                    let srow = &tmp[(y0 + j) * ow..(y0 + j + 1) * ow];
                    for (d, s) in dst.iter_mut().zip(srow) {
                        *d += kw * s;
                    }
                }
            }
        }
        Image::new(c, oh, ow, out)
    }
}

/// Python's `round`, which rounds halves to even (torchvision's crop offsets use it).
fn round_half_even(v: f64) -> i64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - v.signum()) as i64
    } else {
        r as i64
    }
}

/// Crops the centre `height x width` (torchvision `CenterCrop`); a crop larger than the image
/// pads with zeros, as torchvision does.
///
/// ```
/// use neuroscope::data::{transforms::{CenterCrop, Transform}, Image};
/// let img = Image::new(1, 3, 3, (0..9).map(|v| v as f32).collect()).unwrap();
/// let c = CenterCrop { height: 1, width: 1 }.apply(img).unwrap();
/// assert_eq!(c.data(), &[4.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CenterCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl Transform for CenterCrop {
    fn apply(&self, image: Image) -> Result<Image> {
        let (c, h, w) = image.shape();
        let (oh, ow) = (self.height, self.width);
        if (oh, ow) == (h, w) {
            return Ok(image);
        }
        // Offsets of the crop window in the input; negative means padding. torchvision pads
        // (out - in) / 2 rounded down before the image and the rest after it, and crops
        // larger images at Python's round((in - out) / 2).
        let offset = |input: usize, output: usize| {
            if output > input {
                -(((output - input) / 2) as i64)
            } else {
                round_half_even((input - output) as f64 / 2.0)
            }
        };
        let (top, left) = (offset(h, oh), offset(w, ow));
        let mut out = vec![0f32; c * oh * ow];
        for ch in 0..c {
            let src = image.plane(ch);
            for y in 0..oh {
                let sy = y as i64 + top;
                if sy < 0 || sy >= h as i64 {
                    continue;
                }
                for x in 0..ow {
                    let sx = x as i64 + left;
                    if sx >= 0 && sx < w as i64 {
                        out[(ch * oh + y) * ow + x] = src[sy as usize * w + sx as usize];
                    }
                }
            }
        }
        Image::new(c, oh, ow, out)
    }
}

/// Replicates a one-channel image to three channels; three-channel images pass unchanged.
/// For one-channel input this is torchvision's `Grayscale(num_output_channels=3)`.
///
/// ```
/// use neuroscope::data::{transforms::{GrayToRgb, Transform}, Image};
/// let rgb = GrayToRgb.apply(Image::new(1, 1, 1, vec![0.25]).unwrap()).unwrap();
/// assert_eq!(rgb.data(), &[0.25, 0.25, 0.25]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GrayToRgb;

impl Transform for GrayToRgb {
    fn pointwise(&self) -> Option<Pointwise<'_>> {
        Some(Pointwise::GrayToRgb)
    }
    fn apply(&self, image: Image) -> Result<Image> {
        match image.channels() {
            3 => Ok(image),
            1 => {
                let (_, h, w) = image.shape();
                let mut data = image.into_data();
                data.reserve(2 * h * w);
                data.extend_from_within(..h * w);
                data.extend_from_within(..h * w);
                Image::new(3, h, w, data)
            }
            c => Err(Error::Shape {
                what: "input of GrayToRgb".into(),
                expected: "1 or 3 channels".into(),
                got: format!("{c} channels"),
            }),
        }
    }
}

/// torchvision's `Grayscale(num_output_channels)`: RGB becomes luma
/// `0.299 R + 0.587 G + 0.114 B` (ITU-R 601-2), repeated `channels` times (1 or 3).
///
/// ```
/// use neuroscope::data::{transforms::{Grayscale, Transform}, Image};
/// let g = Grayscale { channels: 1 }.apply(Image::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap()).unwrap();
/// assert!((g.data()[0] - 0.299).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Grayscale {
    /// Output channels, 1 or 3.
    pub channels: usize,
}

impl Transform for Grayscale {
    fn apply(&self, image: Image) -> Result<Image> {
        let (c, h, w) = image.shape();
        let grey = match c {
            1 => image.into_data(),
            3 => {
                let (r, g, b) = (image.plane(0), image.plane(1), image.plane(2));
                (0..h * w)
                    .map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i])
                    .collect()
            }
            _ => {
                return Err(Error::Shape {
                    what: "input of Grayscale".into(),
                    expected: "1 or 3 channels".into(),
                    got: format!("{c} channels"),
                })
            }
        };
        match self.channels {
            1 => Image::new(1, h, w, grey),
            3 => GrayToRgb.apply(Image::new(1, h, w, grey)?),
            n => Err(Error::InvalidArgument(format!(
                "Grayscale outputs 1 or 3 channels, not {n}"
            ))),
        }
    }
}

/// `(x - mean) / std` per channel (torchvision `Normalize`).
///
/// ```
/// use neuroscope::data::{transforms::{Normalize, Transform}, Image};
/// let n = Normalize::new(&[0.5], &[0.5]).apply(Image::new(1, 1, 2, vec![0.0, 1.0]).unwrap()).unwrap();
/// assert_eq!(n.data(), &[-1.0, 1.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    /// Per-channel means (one value: every channel).
    pub mean: Vec<f32>,
    /// Per-channel standard deviations (one value: every channel).
    pub std: Vec<f32>,
}

impl Normalize {
    /// A normalisation with the given statistics.
    pub fn new(mean: &[f32], std: &[f32]) -> Self {
        Normalize {
            mean: mean.to_vec(),
            std: std.to_vec(),
        }
    }
    /// ImageNet's mean `[0.485, 0.456, 0.406]` and std `[0.229, 0.224, 0.225]`.
    pub fn imagenet() -> Self {
        Normalize::new(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225])
    }
    /// MNIST's mean 0.1307 and std 0.3081 (the PyTorch MNIST example's numbers).
    pub fn mnist() -> Self {
        Normalize::new(&[0.1307], &[0.3081])
    }
    /// Fashion-MNIST's training mean 0.2860 and std 0.3530 (`fashion_cnn`'s input).
    pub fn fashion_mnist() -> Self {
        Normalize::new(&[0.2860], &[0.3530])
    }
    /// Mean 0.5, std 0.5: maps `[0, 1]` to `[-1, 1]` (workflow 1's choice).
    pub fn half() -> Self {
        Normalize::new(&[0.5], &[0.5])
    }
}

impl Normalize {
    pub(crate) fn check(&self, c: usize) -> Result<()> {
        if !(self.mean.len() == 1 || self.mean.len() == c)
            || !(self.std.len() == 1 || self.std.len() == c)
        {
            return Err(Error::Shape {
                what: "Normalize statistics".into(),
                expected: format!("1 or {c} values (the image has {c} channels)"),
                got: format!("{} means and {} stds", self.mean.len(), self.std.len()),
            });
        }
        if self.std.contains(&0.0) {
            return Err(Error::InvalidArgument(
                "Normalize: a std of 0 would divide by zero".into(),
            ));
        }
        Ok(())
    }

    /// (mean, std) of channel `ch`; call after `check`.
    fn stats(&self, ch: usize) -> (f32, f32) {
        let pick = |v: &[f32]| if v.len() == 1 { v[0] } else { v[ch] };
        (pick(&self.mean), pick(&self.std))
    }
}

impl Transform for Normalize {
    fn pointwise(&self) -> Option<Pointwise<'_>> {
        Some(Pointwise::Normalize(self))
    }
    fn apply(&self, mut image: Image) -> Result<Image> {
        let (c, h, w) = image.shape();
        self.check(c)?;
        let plane = h * w;
        for (ch, chunk) in image.data_mut().chunks_mut(plane).enumerate() {
            let (m, s) = self.stats(ch);
            // A division, not a multiplication by 1/s, to match torchvision to the last bit.
            chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_even_matches_python() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(-1.5), -2);
        assert_eq!(round_half_even(1.2), 1);
    }

    #[test]
    fn weights_sum_to_one() {
        for (i, o) in [(28, 224), (224, 28), (37, 13), (5, 5)] {
            for (_, k) in resample_weights(i, o) {
                assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }
}
