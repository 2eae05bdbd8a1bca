//! One image as channel-first `f32` pixels, the layout candle and PyTorch use.

use crate::{Error, Result};

/// A channel-first (`C x H x W`) float image.
///
/// 8-bit sources are scaled to `[0, 1]` on the way in, as torchvision's `ToTensor` does, so
/// every transform works on floats and agrees with PyTorch to float precision.
///
/// ```
/// use neuroscope::data::Image;
/// let img = Image::from_u8(1, 2, 2, &[0, 51, 102, 255]).unwrap();
/// assert_eq!(img.shape(), (1, 2, 2));
/// assert_eq!(img.get(0, 1, 1), 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Image {
    /// An image from channel-first floats; `data.len()` must be `c * h * w`.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != channels * height * width {
            return Err(Error::Shape {
                what: "image data".into(),
                expected: format!(
                    "{channels} x {height} x {width} = {} values",
                    channels * height * width
                ),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Image {
            channels,
            height,
            width,
            data,
        })
    }

    /// An image from channel-first bytes, scaled to `[0, 1]` (torchvision's `ToTensor`).
    pub fn from_u8(channels: usize, height: usize, width: usize, bytes: &[u8]) -> Result<Self> {
        Image::new(
            channels,
            height,
            width,
            bytes.iter().map(|&b| b as f32 / 255.0).collect(),
        )
    }

    /// An image from channel-last (`H x W x C`) bytes, the layout of PIL and image files.
    ///
    /// ```
    /// let img = neuroscope::data::Image::from_u8_hwc(1, 2, 3, &[255, 0, 0, 0, 255, 0]).unwrap();
    /// assert_eq!(img.shape(), (3, 1, 2));
    /// assert_eq!(img.get(1, 0, 1), 1.0);
    /// ```
    pub fn from_u8_hwc(height: usize, width: usize, channels: usize, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != channels * height * width {
            return Err(Error::Shape {
                what: "channel-last image bytes".into(),
                expected: format!("{height} x {width} x {channels}"),
                got: format!("{} bytes", bytes.len()),
            });
        }
        let mut data = vec![0f32; bytes.len()];
        let plane = height * width;
        for (p, px) in bytes.chunks_exact(channels).enumerate() {
            for (c, &b) in px.iter().enumerate() {
                data[c * plane + p] = b as f32 / 255.0;
            }
        }
        Image::new(channels, height, width, data)
    }

    /// `(channels, height, width)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The pixels, channel-first.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The pixels, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Takes the pixel buffer.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// One channel's plane, row-major.
    pub fn plane(&self, channel: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[channel * n..(channel + 1) * n]
    }

    /// The value at channel `c`, row `y`, column `x`. Panics when out of range, like slice
    /// indexing.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// 8-bit RGB, channel-last, for display: values are clamped to `[0, 1]`; one channel is
    /// shown as grey; with two or more than three channels the first three (or the first
    /// repeated) are used.
    ///
    /// ```
    /// let img = neuroscope::data::Image::new(1, 1, 1, vec![0.5]).unwrap();
    /// assert_eq!(img.to_rgb8(), vec![128, 128, 128]);
    /// ```
    pub fn to_rgb8(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let ch = |c: usize| if self.channels >= 3 { c } else { 0 };
        let mut out = Vec::with_capacity(plane * 3);
        for p in 0..plane {
            for c in 0..3 {
                let v = self.data[ch(c) * plane + p];
                out.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
        out
    }

    /// The image rescaled so its minimum is 0 and maximum 1 (a constant image becomes 0): the
    /// display normalisation for normalised inputs, filters and feature maps.
    ///
    /// ```
    /// let img = neuroscope::data::Image::new(1, 1, 2, vec![-2.0, 2.0]).unwrap();
    /// assert_eq!(img.min_max_scaled().data(), &[0.0, 1.0]);
    /// ```
    pub fn min_max_scaled(&self) -> Image {
        let (lo, hi) = self
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let span = hi - lo;
        let data = self
            .data
            .iter()
            .map(|&v| if span > 0.0 { (v - lo) / span } else { 0.0 })
            .collect();
        Image { data, ..*self }
    }

    /// Renders the image inline in an evcxr notebook (PNG, magnified so a 28 x 28 digit is
    /// readable; values shown clamped to `[0, 1]`).
    pub fn evcxr_display(&self) {
        let scale = (112 / self.height.max(self.width).max(1)).max(1);
        match self.to_png(scale) {
            Ok(png) => {
                use crate::display::html::{base64, evcxr_emit};
                evcxr_emit("image/png", &base64(&png))
            }
            Err(e) => eprintln!("cannot display image: {e}"),
        }
    }

    /// PNG bytes of the image as shown by [`to_rgb8`](Image::to_rgb8), upscaled by an integer
    /// `scale` with nearest-neighbour so small digits stay crisp.
    ///
    /// ```
    /// let img = neuroscope::data::Image::new(1, 2, 2, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    /// let png = img.to_png(4).unwrap();
    /// assert_eq!(&png[1..4], b"PNG");
    /// ```
    pub fn to_png(&self, scale: usize) -> Result<Vec<u8>> {
        let scale = scale.max(1);
        let rgb = self.to_rgb8();
        let (h, w) = (self.height * scale, self.width * scale);
        let mut big = vec![0u8; h * w * 3];
        for y in 0..h {
            for x in 0..w {
                let src = ((y / scale) * self.width + x / scale) * 3;
                big[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&rgb[src..src + 3]);
            }
        }
        encode_png(&big, w as u32, h as u32, ::image::ExtendedColorType::Rgb8)
    }

    /// PNG bytes at the image's own size; grey images as 8-bit grey (a third of the RGB size,
    /// which matters when a thousand images are inlined in one page).
    ///
    /// ```
    /// let img = neuroscope::data::Image::new(1, 2, 2, vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    /// assert!(img.to_png_compact().unwrap().len() < img.to_png(1).unwrap().len());
    /// ```
    pub fn to_png_compact(&self) -> Result<Vec<u8>> {
        if self.channels >= 3 {
            return self.to_png(1);
        }
        let grey: Vec<u8> = self.data[..self.height * self.width]
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        encode_png(
            &grey,
            self.width as u32,
            self.height as u32,
            ::image::ExtendedColorType::L8,
        )
    }
}

/// PNG bytes of raw pixels (`Rgb8` or `L8`, row-major): the one encoder behind every PNG the
/// crate writes.
pub(crate) fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: ::image::ExtendedColorType,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc = ::image::codecs::png::PngEncoder::new(&mut out);
    ::image::ImageEncoder::write_image(enc, pixels, width, height, color)
        .map_err(|e| Error::format("<png encoder>", e.to_string()))?;
    Ok(out)
}
