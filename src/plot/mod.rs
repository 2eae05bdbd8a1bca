//! Figures: every plot the workflows draw, as SVG (inline in evcxr, the default) or PNG.
//!
//! A [`Figure`] holds one or more panels ([`Scatter`], [`Heatmap`], [`Lines`], [`Bars`],
//! [`Images`]) in a grid, with an optional title over all of them. Each panel type is a builder
//! that renders on its own as a one-panel figure, so the last expression of a notebook cell can
//! be the plot itself:
//!
//! ```
//! use neuroscope::plot::{Figure, Scatter};
//! let xy = ndarray::array![[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]];
//! let plot = Scatter::new(&xy)?.labels(&[0, 1, 1], &["cat", "dog"])?.title("Embedding");
//! let svg = Figure::from(plot.clone()).to_svg()?;
//! assert!(svg.contains("Embedding") && svg.contains("dog"));
//! let png = Figure::from(plot).to_png()?;          // text drawn with the bundled DejaVu Sans
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), neuroscope::Error>(())
//! ```
//!
//! Figures are drawn with [plotters](https://docs.rs/plotters): SVG text stays text (selectable,
//! small), PNG text is rasterised from the DejaVu Sans bundled in the crate (matplotlib's
//! default font, licence in `assets/fonts/`), so a fresh machine without fonts draws the same
//! pixels. Nothing depends on the clock or the machine: the same input gives the same bytes.
//!
//! Large rasters (heatmaps of 1000 x 1000 matrices, image grids, colour bars) are placed as one
//! embedded image each rather than as thousands of shapes, which keeps SVGs small.
//! [`InteractiveScatter`] writes the self-contained HTML scatter of workflow 1 (hover for the
//! image, a switch between true labels and clusters).

mod bars;
mod colormap;
mod heatmap;
mod images;
mod interactive;
mod lines;
mod raster;
mod rsa;
mod scatter;

pub use bars::Bars;
pub use colormap::{category_color, Colormap};
pub use heatmap::{Aspect, Heatmap};
pub use images::{images_from_tensor, Images, Layout, Scaling};
pub use interactive::InteractiveScatter;
pub use lines::Lines;
pub use rsa::{model_comparison, probe_curve, rdm_grid, rdm_mds};
pub use scatter::{Label, Scatter};

use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The font family every figure names in SVG, so a browser picks DejaVu Sans (the font PNG text
/// is drawn with, bundled) where installed and any sans-serif otherwise.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";

pub(crate) fn perr(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// One panel of a figure.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Panel {
    /// A scatter plot.
    Scatter(Scatter),
    /// A matrix as colours.
    Heatmap(Heatmap),
    /// Line plots.
    Lines(Lines),
    /// A bar plot.
    Bars(Bars),
    /// A grid of images.
    Images(Images),
}

/// The `title`, `xlabel` and `ylabel` builder methods every x/y panel has.
macro_rules! axis_label_setters {
    () => {
        /// Title above the plot.
        pub fn title(mut self, t: impl Into<String>) -> Self {
            self.title = t.into();
            self
        }
        /// Label of the x axis.
        pub fn xlabel(mut self, t: impl Into<String>) -> Self {
            self.xlabel = t.into();
            self
        }
        /// Label of the y axis.
        pub fn ylabel(mut self, t: impl Into<String>) -> Self {
            self.ylabel = t.into();
            self
        }
    };
}
pub(crate) use axis_label_setters;

macro_rules! panel_type {
    ($t:ident) => {
        impl From<$t> for Panel {
            fn from(p: $t) -> Panel {
                Panel::$t(p)
            }
        }
        impl From<$t> for Figure {
            fn from(p: $t) -> Figure {
                Figure::single(Panel::$t(p))
            }
        }
        impl $t {
            /// This plot as a one-panel [`Figure`] (to save it, change its size, or show PNG).
            pub fn figure(&self) -> Figure {
                Figure::from(self.clone())
            }
            /// Renders inline in an evcxr notebook as SVG (the cell's last expression).
            pub fn evcxr_display(&self) {
                self.figure().evcxr_display()
            }
        }
    };
}
panel_type!(Scatter);
panel_type!(Heatmap);
panel_type!(Lines);
panel_type!(Bars);
panel_type!(Images);

impl Panel {
    fn default_size(&self) -> (u32, u32) {
        match self {
            // matplotlib's 6.4 x 4.8 in at 100 dpi; heatmaps narrower (square cells + colour
            // bar), line and bar plots flatter.
            Panel::Scatter(_) => (640, 480),
            Panel::Heatmap(_) => (560, 480),
            Panel::Lines(_) | Panel::Bars(_) => (640, 420),
            Panel::Images(p) => p.natural_size(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        match self {
            Panel::Scatter(p) => p.draw(area, ctx),
            Panel::Heatmap(p) => p.draw(area, ctx),
            Panel::Lines(p) => p.draw(area, ctx),
            Panel::Bars(p) => p.draw(area, ctx),
            Panel::Images(p) => p.draw(area, ctx),
        }
    }
}

/// How a figure shows itself in a notebook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// `image/svg+xml`: sharp at any zoom, text selectable (the default).
    #[default]
    Svg,
    /// `image/png`.
    Png,
}

/// A figure: panels in a grid, an optional title, a size in pixels.
///
/// ```
/// use neuroscope::plot::{Figure, Lines};
/// let a = Lines::new().series("train", &[1.0, 2.0, 3.0], &[0.9, 0.5, 0.3])?.title("loss");
/// let b = Lines::new().series("test", &[1.0, 2.0, 3.0], &[0.8, 0.9, 0.95])?.title("accuracy");
/// let fig = Figure::grid(vec![a.into(), b.into()], 2).title("Training").size(900, 360);
/// let svg = fig.to_svg()?;
/// assert!(svg.starts_with("<svg") && svg.contains("Training") && svg.contains("accuracy"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Figure {
    title: String,
    panels: Vec<Panel>,
    columns: usize,
    size: Option<(u32, u32)>,
    format: Format,
    png_scale: f64,
}

impl Figure {
    /// A figure of one panel, at that panel's default size (640 x 480 for most, as matplotlib).
    pub fn single(panel: Panel) -> Figure {
        Figure {
            title: String::new(),
            panels: vec![panel],
            columns: 1,
            size: None,
            format: Format::Svg,
            png_scale: 1.0,
        }
    }

    /// Small multiples: `panels` in rows of `columns` (workflow 3's t-SNE per layer, workflow 2's one
    /// matrix per layer in a row). Each cell gets its panel type's default size, scaled to 60 %
    /// beyond two columns.
    pub fn grid(panels: Vec<Panel>, columns: usize) -> Figure {
        Figure {
            title: String::new(),
            columns: columns.max(1),
            panels,
            size: None,
            format: Format::Svg,
            png_scale: 1.0,
        }
    }

    /// The title above all panels.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Size in pixels (SVG user units; PNG pixels before [`png_scale`](Figure::png_scale)).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width.max(50), height.max(50)));
        self
    }

    /// Shows as PNG in a notebook instead of SVG.
    pub fn png(mut self) -> Self {
        self.format = Format::Png;
        self
    }

    /// PNG resolution multiplier (2.0 for a print-quality 200-dpi-like image); lines and text
    /// scale with it, so the figure looks the same, only sharper.
    pub fn png_scale(mut self, scale: f64) -> Self {
        self.png_scale = scale.clamp(0.25, 8.0);
        self
    }

    /// The panels.
    pub fn panels(&self) -> &[Panel] {
        &self.panels
    }

    /// Width and height in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        if let Some(s) = self.size {
            return s;
        }
        let n = self.panels.len().max(1);
        let cols = self.columns.min(n);
        let rows = n.div_ceil(cols);
        let (w, h) = self
            .panels
            .iter()
            .map(|p| p.default_size())
            .fold((0, 0), |(a, b), (w, h)| (a.max(w), b.max(h)));
        let f = if cols > 2 {
            0.6
        } else if cols == 2 {
            0.8
        } else {
            1.0
        };
        let title = if self.title.is_empty() { 0 } else { 36 };
        (
            ((w as f64 * f) as u32) * cols as u32,
            ((h as f64 * f) as u32) * rows as u32 + title,
        )
    }

    fn render<DB: DrawingBackend>(&self, root: Area<DB>, ctx: &mut Ctx) -> Result<()> {
        root.fill(&WHITE).map_err(perr)?;
        let mut area = root;
        if !self.title.is_empty() {
            let (top, rest) = area.split_vertically(ctx.px(36.0));
            let (w, _) = top.dim_in_pixel();
            top.draw_text(
                &self.title,
                &ctx.font(17.0).pos(Pos::new(HPos::Center, VPos::Center)),
                (w as i32 / 2, ctx.pxi(20.0)),
            )
            .map_err(perr)?;
            area = rest;
        }
        let n = self.panels.len();
        if n == 0 {
            return Ok(());
        }
        let cols = self.columns.min(n);
        let rows = n.div_ceil(cols);
        let cells = area.split_evenly((rows, cols));
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            panel.draw(cell, ctx)?;
        }
        Ok(())
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let (w, h) = self.dimensions();
        let mut ctx = Ctx::new(1.0);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            self.render(root.clone(), &mut ctx)?;
            root.present().map_err(perr)?;
        }
        let end = svg
            .rfind("</svg>")
            .ok_or_else(|| perr("SVG backend wrote no </svg>"))?;
        let mut tail = String::new();
        for o in &ctx.overlays {
            tail.push_str(&o.to_svg()?);
        }
        svg.insert_str(end, &tail);
        Ok(svg)
    }

    /// The figure as RGB pixels (`width x height x 3`, row-major), with its pixel size.
    pub fn to_rgb(&self) -> Result<(Vec<u8>, u32, u32)> {
        let (w, h) = self.dimensions();
        let s = self.png_scale;
        let (pw, ph) = ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32);
        let mut buf = vec![255u8; pw as usize * ph as usize * 3];
        let mut ctx = Ctx::new(s);
        {
            let root = raster::PngBackend {
                inner: BitMapBackend::with_buffer(&mut buf, (pw, ph)),
            }
            .into_drawing_area();
            self.render(root.clone(), &mut ctx)?;
            root.present().map_err(perr)?;
        }
        for o in &ctx.overlays {
            o.blit(&mut buf, pw as usize, ph as usize);
        }
        if ctx
            .overlays
            .iter()
            .any(|o| matches!(o, Overlay::Text { .. }))
        {
            // Text over rasters: a second plotters pass on the same pixels.
            let root = raster::PngBackend {
                inner: BitMapBackend::with_buffer(&mut buf, (pw, ph)),
            }
            .into_drawing_area();
            for o in &ctx.overlays {
                if let Overlay::Text {
                    x,
                    y,
                    size,
                    rgb,
                    text,
                } = o
                {
                    let ink = RGBColor(rgb[0], rgb[1], rgb[2]);
                    let style = TextStyle::from((FAMILY, *size).into_font())
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw_text(text, &style, (*x, *y)).map_err(perr)?;
                }
            }
            root.present().map_err(perr)?;
        }
        Ok((buf, pw, ph))
    }

    /// The figure as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let (buf, w, h) = self.to_rgb()?;
        encode_png(&buf, w, h)
    }

    /// An HTML fragment: the SVG inline (for reports and `text/html` outputs).
    pub fn to_html(&self) -> Result<String> {
        Ok(format!(
            "<div class=\"ns-figure\" style=\"margin:1em 0\">{}</div>\n",
            self.to_svg()?
        ))
    }

    /// Writes the figure; the format follows the extension: `.svg`, `.png` or `.html`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = match ext.as_str() {
            "svg" => self.to_svg()?.into_bytes(),
            "png" => self.to_png()?,
            "html" => {
                let mut r = crate::display::Report::new(if self.title.is_empty() {
                    "Figure"
                } else {
                    &self.title
                });
                r.raw(&self.to_html()?);
                r.to_html().into_bytes()
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "cannot tell the figure format of {}: use a .svg, .png or .html file name",
                    path.display()
                )))
            }
        };
        crate::io::output::write_atomic(path, &bytes)
    }

    /// Renders inline in an evcxr notebook: `image/svg+xml`, or `image/png` after
    /// [`png`](Figure::png).
    pub fn evcxr_display(&self) {
        let out = match self.format {
            Format::Svg => self.to_svg().map(|s| ("image/svg+xml", s)),
            Format::Png => self
                .to_png()
                .map(|p| ("image/png", crate::display::base64(&p))),
        };
        match out {
            Ok((mime, body)) => crate::display::evcxr_emit(mime, &body),
            Err(e) => eprintln!("cannot display figure: {e}"),
        }
    }
}

pub(crate) fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    crate::data::image::encode_png(rgb, w, h, ::image::ExtendedColorType::Rgb8)
}

pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

/// What is drawn on top of the plotters layer: rasters (placed as one image each) and the
/// rectangles that must lie over them (frames, block separators).
#[derive(Clone, Debug)]
pub(crate) enum Overlay {
    Image {
        x: i32,
        y: i32,
        w: u32,
        h: u32,
        img_w: usize,
        img_h: usize,
        rgb: Vec<u8>,
    },
    Rect {
        x: i32,
        y: i32,
        w: u32,
        h: u32,
        rgb: [u8; 3],
    },
    /// Centred text over the rasters (values written in heatmap cells).
    Text {
        x: i32,
        y: i32,
        size: f64,
        rgb: [u8; 3],
        text: String,
    },
}

impl Overlay {
    fn to_svg(&self) -> Result<String> {
        Ok(match self {
            Overlay::Image {
                x,
                y,
                w,
                h,
                img_w,
                img_h,
                rgb,
            } => format!(
                "<image x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" \
                 style=\"image-rendering:pixelated;image-rendering:crisp-edges\" \
                 href=\"data:image/png;base64,{}\"/>\n",
                crate::display::base64(&encode_png(rgb, *img_w as u32, *img_h as u32)?)
            ),
            Overlay::Rect { x, y, w, h, rgb } => format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{}\"/>\n",
                colormap::hex(*rgb)
            ),
            Overlay::Text {
                x,
                y,
                size,
                rgb,
                text,
            } => format!(
                "<text x=\"{x}\" y=\"{y}\" dy=\"0.5ex\" text-anchor=\"middle\" font-family=\"{FAMILY}\" \
                 font-size=\"{}\" fill=\"{}\">{}</text>\n",
                size / 1.24,
                colormap::hex(*rgb),
                crate::display::escape(text)
            ),
        })
    }

    fn blit(&self, buf: &mut [u8], bw: usize, bh: usize) {
        match self {
            Overlay::Image {
                x,
                y,
                w,
                h,
                img_w,
                img_h,
                rgb,
            } => {
                for dy in 0..*h as usize {
                    let ty = *y as i64 + dy as i64;
                    if ty < 0 || ty >= bh as i64 {
                        continue;
                    }
                    let sy = (dy * img_h / *h as usize).min(img_h - 1);
                    for dx in 0..*w as usize {
                        let tx = *x as i64 + dx as i64;
                        if tx < 0 || tx >= bw as i64 {
                            continue;
                        }
                        let sx = (dx * img_w / *w as usize).min(img_w - 1);
                        let s = (sy * img_w + sx) * 3;
                        let t = (ty as usize * bw + tx as usize) * 3;
                        buf[t..t + 3].copy_from_slice(&rgb[s..s + 3]);
                    }
                }
            }
            Overlay::Text { .. } => {}
            Overlay::Rect { x, y, w, h, rgb } => {
                for ty in (*y).max(0)..(*y + *h as i32).min(bh as i32) {
                    for tx in (*x).max(0)..(*x + *w as i32).min(bw as i32) {
                        let t = (ty as usize * bw + tx as usize) * 3;
                        buf[t..t + 3].copy_from_slice(rgb);
                    }
                }
            }
        }
    }
}

/// Drawing state shared by the panels: the pixel scale (PNG hi-dpi) and the overlays.
pub(crate) struct Ctx {
    pub s: f64,
    pub overlays: Vec<Overlay>,
}

impl Ctx {
    fn new(s: f64) -> Ctx {
        Ctx {
            s,
            overlays: Vec::new(),
        }
    }
    /// A length in figure units, in backend pixels.
    pub fn px(&self, v: f64) -> u32 {
        (v * self.s).round().max(0.0) as u32
    }
    pub fn pxi(&self, v: f64) -> i32 {
        (v * self.s).round() as i32
    }
    /// The figure font at `size` figure units (matplotlib's 10 pt at 100 dpi is ~14 px).
    pub fn font(&self, size: f64) -> TextStyle<'static> {
        TextStyle::from((FAMILY, size * self.s).into_font()).color(&BLACK)
    }
    #[allow(clippy::too_many_arguments)]
    pub fn image(
        &mut self,
        x: i32,
        y: i32,
        w: u32,
        h: u32,
        img_w: usize,
        img_h: usize,
        rgb: Vec<u8>,
    ) {
        if w > 0 && h > 0 && img_w > 0 && img_h > 0 {
            self.overlays.push(Overlay::Image {
                x,
                y,
                w,
                h,
                img_w,
                img_h,
                rgb,
            });
        }
    }
    /// Centred text drawn over the rasters; `size` in figure units.
    pub fn text(&mut self, x: i32, y: i32, size: f64, rgb: [u8; 3], text: String) {
        let size = size * self.s;
        self.overlays.push(Overlay::Text {
            x,
            y,
            size,
            rgb,
            text,
        });
    }
    pub fn rect(&mut self, x: i32, y: i32, w: u32, h: u32, rgb: [u8; 3]) {
        self.overlays.push(Overlay::Rect { x, y, w, h, rgb });
    }
    /// An unfilled one-unit-wide frame as four overlay rectangles.
    pub fn frame(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, rgb: [u8; 3]) {
        let t = self.px(1.0).max(1);
        let (w, h) = ((x1 - x0).max(0) as u32, (y1 - y0).max(0) as u32);
        self.rect(x0, y0, w + t, t, rgb);
        self.rect(x0, y1, w + t, t, rgb);
        self.rect(x0, y0, t, h + t, rgb);
        self.rect(x1, y0, t, h + t, rgb);
    }
}

/// A tick label: up to 4 significant decimals, no trailing zeros, scientific when large or tiny.
///
/// ```
/// # use neuroscope::plot::tick_label;
/// assert_eq!(tick_label(0.30000000000000004), "0.3");
/// assert_eq!(tick_label(-0.0), "0");
/// assert_eq!(tick_label(25000.0), "2.5e4");
/// assert_eq!(tick_label(12.0), "12");
/// ```
pub fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v == 0.0 {
            "0".into()
        } else {
            format!("{v}")
        };
    }
    let a = v.abs();
    if !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Evenly spaced "nice" tick values covering `[lo, hi]` (about `n` of them), as matplotlib's
/// `MaxNLocator` picks steps of 1, 2, 2.5, 5 x 10^k.
pub(crate) fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil();
    let mut out = Vec::new();
    let mut k = first;
    while k * step <= hi + step * 1e-9 {
        let v = k * step;
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    out
}

/// Data range with matplotlib's 5 % margins; a constant range gets +-0.5 (or +-5 % of it).
pub(crate) fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        let d = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
        return (lo - d, hi + d);
    }
    let m = (hi - lo) * 0.05;
    (lo - m, hi + m)
}

/// Axes shared by the x/y panels: where the plotting rectangle lies (absolute pixels) and the
/// data ranges, with helpers to map data to pixels and to draw ticks, labels and a frame the way
/// matplotlib does (ticks outside, a full box).
pub(crate) struct Axes {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
    pub xr: (f64, f64),
    pub yr: (f64, f64),
}

impl Axes {
    pub fn map(&self, x: f64, y: f64) -> (i32, i32) {
        let fx = (x - self.xr.0) / (self.xr.1 - self.xr.0);
        let fy = (y - self.yr.0) / (self.yr.1 - self.yr.0);
        (
            self.x0 + (fx * (self.x1 - self.x0) as f64).round() as i32,
            self.y1 - (fy * (self.y1 - self.y0) as f64).round() as i32,
        )
    }
}

/// The margins of a panel: title on top, axis labels, ticks; `right` reserved for a legend or
/// colour bar. Returns the plotting rectangle in absolute pixels.
pub(crate) struct Frame {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub right: f64,
    pub bottom_extra: f64,
    pub left_extra: f64,
}

impl Frame {
    /// Draws title and axis labels, returns the plotting rectangle (absolute pixels).
    pub fn place<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        ctx: &Ctx,
    ) -> Result<(i32, i32, i32, i32)> {
        let (w, h) = area.dim_in_pixel();
        let (bx, by) = area.get_base_pixel();
        let top = if self.title.is_empty() { 12.0 } else { 32.0 };
        let left = 14.0 + if self.ylabel.is_empty() { 34.0 } else { 54.0 } + self.left_extra;
        let bottom = if self.xlabel.is_empty() { 26.0 } else { 46.0 } + self.bottom_extra;
        let right = 14.0 + self.right;
        let x0 = ctx.pxi(left);
        let x1 = w as i32 - ctx.pxi(right);
        let y0 = ctx.pxi(top);
        let y1 = h as i32 - ctx.pxi(bottom);
        if !self.title.is_empty() {
            area.draw_text(
                &self.title,
                &ctx.font(14.0).pos(Pos::new(HPos::Center, VPos::Center)),
                ((x0 + x1) / 2, ctx.pxi(16.0)),
            )
            .map_err(perr)?;
        }
        if !self.xlabel.is_empty() {
            area.draw_text(
                &self.xlabel,
                &ctx.font(12.5).pos(Pos::new(HPos::Center, VPos::Bottom)),
                ((x0 + x1) / 2, h as i32 - ctx.pxi(6.0)),
            )
            .map_err(perr)?;
        }
        if !self.ylabel.is_empty() {
            area.draw_text(
                &self.ylabel,
                &ctx.font(12.5)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
                (ctx.pxi(6.0), (y0 + y1) / 2),
            )
            .map_err(perr)?;
        }
        Ok((x0 + bx, y0 + by, x1.max(x0 + 10) + bx, y1.max(y0 + 10) + by))
    }
}

/// Draws numeric ticks (outside, 3.5 px) with labels on the bottom and left of `ax`, and the
/// box around it.
pub(crate) fn draw_numeric_axes<DB: DrawingBackend>(
    area: &Area<DB>,
    ax: &Axes,
    ctx: &mut Ctx,
    x_ticks: bool,
    y_ticks: bool,
) -> Result<()> {
    let (bx, by) = area.get_base_pixel();
    let tick = ctx.pxi(3.5);
    let line = ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.0).max(1));
    if x_ticks {
        for v in nice_ticks(ax.xr.0, ax.xr.1, 6) {
            let (x, _) = ax.map(v, ax.yr.0);
            area.draw(&PathElement::new(
                vec![(x - bx, ax.y1 - by), (x - bx, ax.y1 - by + tick)],
                line,
            ))
            .map_err(perr)?;
            area.draw_text(
                &tick_label(v),
                &ctx.font(11.0).pos(Pos::new(HPos::Center, VPos::Top)),
                (x - bx, ax.y1 - by + tick + ctx.pxi(2.0)),
            )
            .map_err(perr)?;
        }
    }
    if y_ticks {
        for v in nice_ticks(ax.yr.0, ax.yr.1, 6) {
            let (_, y) = ax.map(ax.xr.0, v);
            area.draw(&PathElement::new(
                vec![(ax.x0 - bx - tick, y - by), (ax.x0 - bx, y - by)],
                line,
            ))
            .map_err(perr)?;
            area.draw_text(
                &tick_label(v),
                &ctx.font(11.0).pos(Pos::new(HPos::Right, VPos::Center)),
                (ax.x0 - bx - tick - ctx.pxi(2.0), y - by),
            )
            .map_err(perr)?;
        }
    }
    ctx.frame(ax.x0, ax.y0, ax.x1, ax.y1, [0, 0, 0]);
    Ok(())
}

/// Named ticks under the x axis at `y1` (absolute pixels): a tick mark and a label per
/// `(absolute x, name)`, the labels rotated to read upwards when `rotate`.
pub(crate) fn draw_x_name_ticks<'a, DB: DrawingBackend>(
    area: &Area<DB>,
    ctx: &Ctx,
    ticks: impl IntoIterator<Item = (i32, &'a str)>,
    y1: i32,
    rotate: bool,
) -> Result<()> {
    let (bx, by) = area.get_base_pixel();
    let line = ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.0).max(1));
    let tick = ctx.pxi(3.5);
    let style = if rotate {
        ctx.font(10.5)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center))
    } else {
        ctx.font(10.5).pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (x, name) in ticks {
        let (x, y) = (x - bx, y1 - by);
        area.draw(&PathElement::new(vec![(x, y), (x, y + tick)], line))
            .map_err(perr)?;
        area.draw_text(name, &style, (x, y + tick + ctx.pxi(2.0)))
            .map_err(perr)?;
    }
    Ok(())
}

/// A vertical colour bar in `[x0, x1] x [y0, y1]` (absolute pixels) for values `lo..hi`, with
/// ticks on the right and an optional label.
pub(crate) fn draw_colorbar<DB: DrawingBackend>(
    area: &Area<DB>,
    ctx: &mut Ctx,
    rect: (i32, i32, i32, i32),
    cmap: Colormap,
    (lo, hi): (f64, f64),
    label: &str,
) -> Result<()> {
    let (bx, by) = area.get_base_pixel();
    let (x0, y0, x1, y1) = rect;
    let rgb: Vec<u8> = (0..256)
        .rev()
        .flat_map(|i| cmap.rgb(i as f64 / 255.0))
        .collect();
    ctx.image(x0, y0, (x1 - x0) as u32, (y1 - y0) as u32, 1, 256, rgb);
    ctx.frame(x0, y0, x1, y1, [0, 0, 0]);
    let line = ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.0).max(1));
    let span = if hi > lo { hi - lo } else { 1.0 };
    for v in nice_ticks(lo, hi, 5) {
        let y = y1 - (((v - lo) / span) * (y1 - y0) as f64).round() as i32;
        area.draw(&PathElement::new(
            vec![(x1 - bx, y - by), (x1 - bx + ctx.pxi(3.5), y - by)],
            line,
        ))
        .map_err(perr)?;
        area.draw_text(
            &tick_label(v),
            &ctx.font(10.5).pos(Pos::new(HPos::Left, VPos::Center)),
            (x1 - bx + ctx.pxi(6.0), y - by),
        )
        .map_err(perr)?;
    }
    if !label.is_empty() {
        area.draw_text(
            label,
            &ctx.font(11.5)
                .transform(FontTransform::Rotate90)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (x1 - bx + ctx.pxi(52.0), (y0 + y1) / 2 - by),
        )
        .map_err(perr)?;
    }
    Ok(())
}

/// A legend: a coloured marker and a name per entry, from `(x, y)` (absolute) downwards.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &Area<DB>,
    ctx: &Ctx,
    (x, y): (i32, i32),
    title: &str,
    entries: &[(String, [u8; 3])],
    as_line: bool,
) -> Result<()> {
    let (bx, by) = area.get_base_pixel();
    let (x, mut y) = (x - bx, y - by);
    let row = ctx.pxi(17.0);
    if !title.is_empty() {
        area.draw_text(
            title,
            &ctx.font(11.5).pos(Pos::new(HPos::Left, VPos::Center)),
            (x, y + row / 2),
        )
        .map_err(perr)?;
        y += row;
    }
    for (name, c) in entries {
        let col = RGBColor(c[0], c[1], c[2]);
        let cy = y + row / 2;
        if as_line {
            area.draw(&PathElement::new(
                vec![(x, cy), (x + ctx.pxi(18.0), cy)],
                ShapeStyle::from(&col).stroke_width(ctx.px(2.0).max(1)),
            ))
            .map_err(perr)?;
        } else {
            area.draw(&Circle::new(
                (x + ctx.pxi(6.0), cy),
                ctx.px(4.5),
                col.filled(),
            ))
            .map_err(perr)?;
        }
        area.draw_text(
            name,
            &ctx.font(11.0).pos(Pos::new(HPos::Left, VPos::Center)),
            (x + ctx.pxi(24.0), cy),
        )
        .map_err(perr)?;
        y += row;
    }
    Ok(())
}

/// Width in figure units of `text` at font size `size`, from the bundled font's advances.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    raster::measure(text, size).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_font_parses_and_draws_text() {
        assert!(
            raster::font().is_some(),
            "the bundled DejaVu Sans must parse"
        );
        let fig = Figure::from(Lines::new().title("Wxyz").xlabel("step")).size(200, 120);
        let (buf, w, _) = fig.to_rgb().unwrap();
        // The title row must contain dark pixels (text), not only white.
        let dark = buf[..(w as usize * 30 * 3)]
            .iter()
            .filter(|&&v| v < 100)
            .count();
        assert!(dark > 20, "title text not rasterised ({dark} dark values)");
    }

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_ticks(-3.0, 7.0, 5), vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
        assert_eq!(padded_range([1.0, 1.0].into_iter()), (0.95, 1.05));
        assert_eq!(padded_range(std::iter::empty()), (0.0, 1.0));
    }
}
