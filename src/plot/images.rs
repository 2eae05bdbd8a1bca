//! Grids of images: samples with labels, conv filters, feature maps, feature visualisations.

use super::{perr, Area, Colormap, Ctx};
use crate::data::{Dataset, Image};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How pixel values become grey levels or colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scaling {
    /// Values are already in `[0, 1]` (images as loaded); outside values are clamped.
    #[default]
    Clamp,
    /// Each image stretched to its own min..max (filters, normalised inputs, feature maps
    /// compared by pattern).
    PerImage,
    /// One min..max over all images (feature maps compared by strength).
    Shared,
}

/// How [`images_from_tensor`] reads a tensor's axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// `HxW`, `CxHxW` / `HxWxC` (C = 1 or 3), `NxCxHxW` / `NxHxWxC`; otherwise a rank-3 tensor
    /// is `C` single-channel maps and a rank-4 one `N*C` maps.
    #[default]
    Auto,
    /// Channel first (`[N,] C, H, W`).
    ChannelsFirst,
    /// Channel last (`[N,] H, W, C`).
    ChannelsLast,
    /// Every `H x W` plane is its own grey image (feature maps, filters per input channel).
    Maps,
}

/// Splits a tensor into images: byte tensors are divided by 255, float ones taken as they are.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use neuroscope::plot::{images_from_tensor, Layout};
/// let maps = Tensor::zeros((64, 13, 13), candle_core::DType::F32, &Device::Cpu)?;  // one image's feature maps
/// assert_eq!(images_from_tensor(&maps, Layout::Auto)?.len(), 64);
/// let rgb = Tensor::zeros((2, 32, 32, 3), candle_core::DType::U8, &Device::Cpu)?;  // channel-last bytes
/// let imgs = images_from_tensor(&rgb, Layout::Auto)?;
/// assert_eq!((imgs.len(), imgs[0].shape()), (2, (3, 32, 32)));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn images_from_tensor(t: &Tensor, layout: Layout) -> Result<Vec<Image>> {
    let dims = t.dims().to_vec();
    let scale = if t.dtype() == DType::U8 {
        1.0 / 255.0
    } else {
        1.0
    };
    let data: Vec<f32> = t
        .to_device(&candle_core::Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let data: Vec<f32> = if scale == 1.0 {
        data
    } else {
        data.into_iter().map(|v| v * scale).collect()
    };
    let col = |c: usize| c == 1 || c == 3;
    // (n, c, h, w, channels_last)
    let (n, c, h, w, last) = match (dims.len(), layout) {
        (2, _) => (1, 1, dims[0], dims[1], false),
        (3, Layout::ChannelsFirst) => (1, dims[0], dims[1], dims[2], false),
        (3, Layout::ChannelsLast) => (1, dims[2], dims[0], dims[1], true),
        (3, Layout::Maps) => (dims[0], 1, dims[1], dims[2], false),
        (3, Layout::Auto) if col(dims[0]) => (1, dims[0], dims[1], dims[2], false),
        (3, Layout::Auto) if col(dims[2]) => (1, dims[2], dims[0], dims[1], true),
        (3, Layout::Auto) => (dims[0], 1, dims[1], dims[2], false),
        (4, Layout::ChannelsFirst) => (dims[0], dims[1], dims[2], dims[3], false),
        (4, Layout::ChannelsLast) => (dims[0], dims[3], dims[1], dims[2], true),
        (4, Layout::Maps) => (dims[0] * dims[1], 1, dims[2], dims[3], false),
        (4, Layout::Auto) if col(dims[1]) => (dims[0], dims[1], dims[2], dims[3], false),
        (4, Layout::Auto) if col(dims[3]) => (dims[0], dims[3], dims[1], dims[2], true),
        (4, Layout::Auto) => (dims[0] * dims[1], 1, dims[2], dims[3], false),
        _ => {
            return Err(Error::Shape {
                what: "image tensor".into(),
                expected: "H x W, C x H x W, H x W x C, N x C x H x W or N x H x W x C".into(),
                got: format!("{dims:?}"),
            })
        }
    };
    if !matches!(layout, Layout::Maps | Layout::Auto) && !col(c) {
        return Err(Error::Shape {
            what: "image channels".into(),
            expected: "1 or 3 channels (use Layout::Maps for feature maps)".into(),
            got: format!("{c} in {dims:?}"),
        });
    }
    let per = c * h * w;
    (0..n)
        .map(|i| {
            let src = &data[i * per..(i + 1) * per];
            let chw = if last {
                let mut v = vec![0f32; per];
                for p in 0..h * w {
                    for k in 0..c {
                        v[k * h * w + p] = src[p * c + k];
                    }
                }
                v
            } else {
                src.to_vec()
            };
            Image::new(c, h, w, chw)
        })
        .collect()
}

/// A titled grid of images with captions (workflow 2's `plot_images_grid`, workflow 4's 8 x 8 filters
/// and feature maps, workflow 5's 64 visualised channels). Grey images use a colour map (grey by
/// default, any [`Colormap`] for feature maps); RGB images are shown as they are.
///
/// ```
/// use neuroscope::{data::embedded, plot::Images};
/// let grid = Images::from_dataset(&*embedded::mnist(), &[0, 1, 2, 3])?.title("Digits");
/// let svg = grid.figure().to_svg()?;
/// assert_eq!(svg.matches("<image").count(), 4);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Images {
    cells: Vec<(Image, String)>,
    columns: Option<usize>,
    title: String,
    scaling: Scaling,
    cmap: Colormap,
    row_bars: Vec<(Colormap, (f64, f64), String)>,
}

impl Images {
    /// An empty grid.
    pub fn new() -> Images {
        Images {
            cmap: Colormap::Gray,
            ..Default::default()
        }
    }

    /// The images, without captions.
    pub fn from_images(images: Vec<Image>) -> Images {
        let mut g = Images::new();
        g.cells = images.into_iter().map(|i| (i, String::new())).collect();
        g
    }

    /// The images of a tensor (see [`images_from_tensor`]).
    pub fn from_tensor(t: &Tensor, layout: Layout) -> Result<Images> {
        Ok(Images::from_images(images_from_tensor(t, layout)?))
    }

    /// Samples of a dataset, captioned with their class names.
    pub fn from_dataset<D: Dataset + ?Sized>(dataset: &D, indices: &[usize]) -> Result<Images> {
        let names = dataset.class_names();
        let mut g = Images::new();
        for &i in indices {
            let (img, label) = dataset.get(i)?;
            let caption = names
                .get(label)
                .cloned()
                .unwrap_or_else(|| label.to_string());
            g.cells.push((img, caption));
        }
        Ok(g)
    }

    /// Adds an image with a caption.
    pub fn push(mut self, image: Image, caption: impl Into<String>) -> Self {
        self.cells.push((image, caption.into()));
        self
    }

    /// Replaces the captions (one per image: labels, predictions, channel numbers).
    pub fn captions<N: AsRef<str>>(mut self, captions: &[N]) -> Result<Self> {
        if captions.len() != self.cells.len() {
            return Err(Error::Shape {
                what: "captions".into(),
                expected: format!("one per image ({})", self.cells.len()),
                got: captions.len().to_string(),
            });
        }
        for (cell, c) in self.cells.iter_mut().zip(captions) {
            cell.1 = c.as_ref().to_string();
        }
        Ok(self)
    }

    /// Number of columns (default: up to 10 in a row, a square grid beyond).
    pub fn columns(mut self, c: usize) -> Self {
        self.columns = Some(c.max(1));
        self
    }
    /// Title above the grid.
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = t.into();
        self
    }
    /// How values become intensities (default [`Scaling::Clamp`]).
    pub fn scaling(mut self, s: Scaling) -> Self {
        self.scaling = s;
        self
    }
    /// Colour map for single-channel images (default grey).
    pub fn cmap(mut self, c: Colormap) -> Self {
        self.cmap = c;
        self
    }
    /// Number of images.
    pub fn len(&self) -> usize {
        self.cells.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn grid(&self) -> (usize, usize) {
        let n = self.cells.len().max(1);
        let cols = self.columns.unwrap_or(if n <= 10 {
            n
        } else {
            (n as f64).sqrt().ceil() as usize
        });
        (n.div_ceil(cols), cols)
    }

    pub(crate) fn natural_size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        let (h, w) = self
            .cells
            .iter()
            .map(|(i, _)| (i.height(), i.width()))
            .fold((1, 1), |(a, b), (h, w)| (a.max(h), b.max(w)));
        let zoom = (84.0 / h.max(w) as f64).max(1.0).round();
        let captions = self.cells.iter().any(|c| !c.1.is_empty());
        let cw = (w as f64 * zoom) as u32 + 8;
        let ch = (h as f64 * zoom) as u32 + 8 + if captions { 16 } else { 0 };
        let title = if self.title.is_empty() { 8 } else { 34 };
        (
            (cols as u32 * cw + 16).max(200),
            rows as u32 * ch + title + 8,
        )
    }

    /// The RGB bytes of image `i` after scaling and colour mapping.
    fn rgb(&self, i: usize, shared: (f32, f32)) -> Vec<u8> {
        let img = &self.cells[i].0;
        let (lo, hi) = match self.scaling {
            Scaling::Clamp => (0.0, 1.0),
            Scaling::PerImage => min_max(img.data()),
            Scaling::Shared => shared,
        };
        let span = if hi > lo { hi - lo } else { 1.0 };
        let plane = img.height() * img.width();
        if img.channels() >= 3 {
            (0..plane)
                .flat_map(|p| {
                    (0..3).map(move |c| {
                        let v = (img.data()[c * plane + p] - lo) / span;
                        (v.clamp(0.0, 1.0) * 255.0).round() as u8
                    })
                })
                .collect()
        } else {
            img.data()[..plane]
                .iter()
                .flat_map(|&v| self.cmap.rgb(((v - lo) / span) as f64))
                .collect()
        }
    }

    /// One colour bar per row, on the right: its colour map, the values its ends stand for,
    /// and a label (attribution maps: each method's scale). Rows without an entry get none.
    ///
    /// ```
    /// use neuroscope::data::Image;
    /// use neuroscope::plot::{Colormap, Images};
    /// let img = Image::new(3, 4, 4, vec![0.5; 48])?;
    /// let grid = Images::from_images(vec![img.clone(), img]).columns(1)
    ///     .row_colorbars(vec![(Colormap::Magma, (0.0, 1.0), "size".into()),
    ///                         (Colormap::RdBuR, (-1.0, 1.0), "sign".into())]);
    /// assert!(grid.figure().to_svg()?.contains("sign"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn row_colorbars(mut self, bars: Vec<(Colormap, (f64, f64), String)>) -> Self {
        self.row_bars = bars;
        self
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        let (w_all, h) = area.dim_in_pixel();
        // Room on the right for the rows' colour bars (none: the grid as before).
        let bars_w = if self.row_bars.is_empty() {
            0
        } else {
            ctx.pxi(84.0) as u32
        };
        let w = w_all.saturating_sub(bars_w);
        let (bx, by) = area.get_base_pixel();
        let top = if self.title.is_empty() {
            ctx.pxi(8.0)
        } else {
            ctx.pxi(34.0)
        };
        if !self.title.is_empty() {
            area.draw_text(
                &self.title,
                &ctx.font(14.0).pos(Pos::new(HPos::Center, VPos::Center)),
                (w as i32 / 2, ctx.pxi(16.0)),
            )
            .map_err(perr)?;
        }
        if self.cells.is_empty() {
            return Ok(());
        }
        let (rows, cols) = self.grid();
        let captions = self.cells.iter().any(|c| !c.1.is_empty());
        let cap_h = if captions { ctx.pxi(16.0) } else { 0 };
        let pad = ctx.pxi(8.0);
        let cell_w = ((w as i32 - ctx.pxi(16.0)) / cols as i32).max(4);
        let cell_h = ((h as i32 - top - ctx.pxi(8.0)) / rows as i32).max(4);
        let shared = if self.scaling == Scaling::Shared {
            self.cells
                .iter()
                .map(|(i, _)| min_max(i.data()))
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (l, h)| {
                    (a.min(l), b.max(h))
                })
        } else {
            (0.0, 1.0)
        };
        let left = (w as i32 - cell_w * cols as i32) / 2;
        for (i, (img, caption)) in self.cells.iter().enumerate() {
            let (r, c) = (i / cols, i % cols);
            let box_w = (cell_w - pad).max(2);
            let box_h = (cell_h - pad - cap_h).max(2);
            let zoom = (box_w as f64 / img.width() as f64).min(box_h as f64 / img.height() as f64);
            let (iw, ih) = (
                ((img.width() as f64 * zoom).floor() as i32).max(1),
                ((img.height() as f64 * zoom).floor() as i32).max(1),
            );
            let cx = left + c as i32 * cell_w + cell_w / 2;
            let y = top + r as i32 * cell_h + pad / 2;
            let x = cx - iw / 2;
            ctx.image(
                x + bx,
                y + by,
                iw as u32,
                ih as u32,
                img.width(),
                img.height(),
                self.rgb(i, shared),
            );
            if !caption.is_empty() {
                area.draw_text(
                    caption,
                    &ctx.font(10.5).pos(Pos::new(HPos::Center, VPos::Top)),
                    (cx, y + ih + ctx.pxi(3.0)),
                )
                .map_err(perr)?;
            }
        }
        for (r, (cmap, range, label)) in self.row_bars.iter().enumerate().take(rows) {
            // As tall as the row's first image is drawn.
            let Some((img, _)) = self.cells.get(r * cols) else {
                continue;
            };
            let (box_w, box_h) = ((cell_w - pad).max(2), (cell_h - pad - cap_h).max(2));
            let zoom = (box_w as f64 / img.width() as f64).min(box_h as f64 / img.height() as f64);
            let box_h = ((img.height() as f64 * zoom).floor() as i32).max(1);
            let x0 = w as i32 + ctx.pxi(8.0) + bx;
            let y0 = top + r as i32 * cell_h + pad / 2 + by;
            super::draw_colorbar(
                area,
                ctx,
                (x0, y0, x0 + ctx.pxi(12.0), y0 + box_h),
                *cmap,
                *range,
                label,
            )?;
        }
        Ok(())
    }
}

fn min_max(v: &[f32]) -> (f32, f32) {
    v.iter()
        .filter(|x| x.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        })
}
