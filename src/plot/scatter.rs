//! Scatter plots of embeddings: by class with a legend, by a value with a colour bar, 2-D or a
//! projected 3-D view.

use super::{
    category_color, draw_colorbar, draw_legend, draw_numeric_axes, padded_range, perr, text_width,
    Area, Axes, Colormap, Ctx, Frame,
};
use crate::analysis::Scalar;
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Integer labels: dataset classes (`usize`) or cluster ids (`i64`, where -1 is noise).
pub trait Label: Copy {
    /// The label as `i64` (negative = noise / unassigned).
    fn to_i64(self) -> i64;
}
macro_rules! label {
    ($($t:ty),*) => {$(impl Label for $t { fn to_i64(self) -> i64 { self as i64 } })*};
}
label!(usize, u8, u16, u32, u64, i8, i16, i32, i64, isize);

/// Per-point colours and the legend entries (name, colour).
pub(crate) type Palette = (Vec<[u8; 3]>, Vec<(String, [u8; 3])>);

#[derive(Clone, Debug)]
pub(crate) enum Colouring {
    Plain,
    Labels {
        labels: Vec<i64>,
        names: Vec<String>,
    },
    Values {
        values: Vec<f64>,
        cmap: Colormap,
        label: String,
    },
}

impl Colouring {
    /// The colour of point `i` and, for labels, the legend.
    pub(crate) fn colors(&self, n: usize) -> Palette {
        match self {
            Colouring::Plain => (vec![category_color(0, 10); n], vec![]),
            Colouring::Labels { labels, names } => label_palette(labels, names, ""),
            Colouring::Values { values, cmap, .. } => {
                let (lo, hi) = finite_range(values);
                let span = if hi > lo { hi - lo } else { 1.0 };
                (
                    values.iter().map(|v| cmap.rgb((v - lo) / span)).collect(),
                    vec![],
                )
            }
        }
    }
}

/// Colours for integer labels (`tab10`/`tab20`, -1 = grey "noise") and the legend entries,
/// named `names[label]`, or `"{prefix}{label}"` where `names` is shorter.
pub(crate) fn label_palette(labels: &[i64], names: &[String], prefix: &str) -> Palette {
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let k = classes.iter().filter(|&&c| c >= 0).count().max(names.len());
    let col = |c: i64| {
        if c < 0 {
            [160, 160, 160]
        } else {
            category_color(c as usize, k)
        }
    };
    let legend = classes
        .iter()
        .map(|&c| {
            let name = match usize::try_from(c) {
                Err(_) => "noise".to_string(),
                Ok(i) => names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("{prefix}{c}")),
            };
            (name, col(c))
        })
        .collect();
    (labels.iter().map(|&c| col(c)).collect(), legend)
}

pub(crate) fn finite_range(v: &[f64]) -> (f64, f64) {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// A scatter plot of points in 2-D, or 3-D shown in matplotlib's default projected view
/// (azimuth -60 degrees, elevation 30), coloured by class labels (legend with class names,
/// `tab10`), by cluster ids (noise grey), or by a continuous value (colour bar).
///
/// ```
/// use neuroscope::plot::Scatter;
/// let xy = ndarray::array![[0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0]];
/// let svg = Scatter::new(&xy)?
///     .labels(&[0usize, 1, 0, 1], &["T-shirt", "Trouser"])?
///     .title("t-SNE of features").xlabel("t-SNE 1").ylabel("t-SNE 2")
///     .figure().to_svg()?;
/// assert!(svg.contains("Trouser") && svg.contains("t-SNE 2"));
/// let redness = Scatter::new(&xy)?.values(&[0.1, 0.5, 0.7, 0.9], "redness")?;
/// assert!(redness.figure().to_svg()?.contains("redness"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Scatter {
    pub(crate) points: Vec<[f64; 3]>,
    pub(crate) dims: usize,
    pub(crate) colouring: Colouring,
    title: String,
    xlabel: String,
    ylabel: String,
    zlabel: String,
    legend_title: String,
    radius: f64,
    alpha: f64,
    view: (f64, f64),
}

impl Scatter {
    /// Points as rows of a `N x 2` or `N x 3` array (an embedding).
    pub fn new<S: Data<Elem = T>, T: Scalar>(points: &ArrayBase<S, Ix2>) -> Result<Scatter> {
        let (n, d) = points.dim();
        if d != 2 && d != 3 {
            return Err(Error::Shape {
                what: "scatter points".into(),
                expected: "N x 2 or N x 3".into(),
                got: format!("{n} x {d}"),
            });
        }
        let points = points
            .rows()
            .into_iter()
            .map(|r| {
                [
                    r[0].to_f64(),
                    r[1].to_f64(),
                    if d == 3 { r[2].to_f64() } else { 0.0 },
                ]
            })
            .collect();
        Ok(Scatter {
            points,
            dims: d,
            colouring: Colouring::Plain,
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            zlabel: String::new(),
            legend_title: String::new(),
            radius: 2.5,
            alpha: 0.8,
            view: (-60.0, 30.0),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn check_len(&self, what: &str, n: usize) -> Result<()> {
        if n != self.points.len() {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!("one per point ({})", self.points.len()),
                got: n.to_string(),
            });
        }
        Ok(())
    }

    /// Colours by integer labels (classes, or cluster ids with -1 as noise) with a legend of
    /// `names[label]` (the label's number where `names` is shorter).
    pub fn labels<L: Label, N: AsRef<str>>(mut self, labels: &[L], names: &[N]) -> Result<Self> {
        self.check_len("labels", labels.len())?;
        self.colouring = Colouring::Labels {
            labels: labels.iter().map(|l| l.to_i64()).collect(),
            names: names.iter().map(|s| s.as_ref().to_string()).collect(),
        };
        Ok(self)
    }

    /// Colours by a continuous value (viridis) with a colour bar titled `label`.
    pub fn values(mut self, values: &[f64], label: impl Into<String>) -> Result<Self> {
        self.check_len("values", values.len())?;
        self.colouring = Colouring::Values {
            values: values.to_vec(),
            cmap: Colormap::Viridis,
            label: label.into(),
        };
        Ok(self)
    }

    /// The colour map for [`values`](Scatter::values).
    pub fn cmap(mut self, cmap: Colormap) -> Self {
        if let Colouring::Values { cmap: c, .. } = &mut self.colouring {
            *c = cmap;
        }
        self
    }

    super::axis_label_setters!();
    /// Label of the z axis (3-D).
    pub fn zlabel(mut self, t: impl Into<String>) -> Self {
        self.zlabel = t.into();
        self
    }
    /// Title of the legend (e.g. "class", "cluster").
    pub fn legend_title(mut self, t: impl Into<String>) -> Self {
        self.legend_title = t.into();
        self
    }
    /// Marker radius in pixels (default 2.5).
    pub fn point_size(mut self, r: f64) -> Self {
        self.radius = r.clamp(0.5, 20.0);
        self
    }
    /// Marker opacity (default 0.8).
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a.clamp(0.0, 1.0);
        self
    }
    /// 3-D view angles in degrees (matplotlib's `view_init(elev, azim)` order reversed:
    /// azimuth first), default (-60, 30).
    pub fn view(mut self, azimuth: f64, elevation: f64) -> Self {
        self.view = (azimuth, elevation);
        self
    }

    /// Projected 2-D coordinates and depth (3-D), or the points themselves (2-D).
    fn projected(&self) -> (Vec<[f64; 2]>, Vec<f64>) {
        if self.dims == 2 {
            return (
                self.points.iter().map(|p| [p[0], p[1]]).collect(),
                vec![0.0; self.points.len()],
            );
        }
        // Each axis scaled to [-1, 1] (matplotlib's cube box), then the view rotation.
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in &self.points {
            for k in 0..3 {
                if p[k].is_finite() {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        }
        let norm = |p: &[f64; 3]| -> [f64; 3] {
            std::array::from_fn(|k| {
                let s = hi[k] - lo[k];
                if s > 0.0 && s.is_finite() {
                    2.0 * (p[k] - lo[k]) / s - 1.0
                } else {
                    0.0
                }
            })
        };
        let (az, el) = (self.view.0.to_radians(), self.view.1.to_radians());
        let proj = |q: [f64; 3]| {
            let a = az.cos() * q[0] + az.sin() * q[1];
            let sx = -az.sin() * q[0] + az.cos() * q[1];
            let sy = -el.sin() * a + el.cos() * q[2];
            let depth = el.cos() * a + el.sin() * q[2];
            ([sx, sy], depth)
        };
        let mut xy = Vec::with_capacity(self.points.len());
        let mut depth = Vec::with_capacity(self.points.len());
        for p in &self.points {
            let (s, d) = proj(norm(p));
            xy.push(s);
            depth.push(d);
        }
        (xy, depth)
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        let (colors, legend) = self.colouring.colors(self.points.len());
        let right = match &self.colouring {
            Colouring::Plain => 0.0,
            Colouring::Labels { .. } => {
                let w = legend
                    .iter()
                    .map(|(n, _)| text_width(n, 11.0))
                    .chain([text_width(&self.legend_title, 11.5) - 24.0])
                    .fold(0.0, f64::max);
                (w + 34.0).min(220.0)
            }
            Colouring::Values { .. } => 78.0,
        };
        let three = self.dims == 3;
        let frame = Frame {
            title: self.title.clone(),
            xlabel: if three {
                String::new()
            } else {
                self.xlabel.clone()
            },
            ylabel: if three {
                String::new()
            } else {
                self.ylabel.clone()
            },
            right,
            bottom_extra: 0.0,
            left_extra: 0.0,
        };
        let (x0, y0, x1, y1) = frame.place(area, ctx)?;
        let (xy, depth) = self.projected();
        let xr = padded_range(xy.iter().map(|p| p[0]));
        let yr = padded_range(xy.iter().map(|p| p[1]));
        let (xr, yr) = if three {
            ((-1.9, 1.9), (-1.6, 1.6))
        } else {
            (xr, yr)
        };
        let ax = Axes {
            x0,
            y0,
            x1,
            y1,
            xr,
            yr,
        };
        let (bx, by) = area.get_base_pixel();
        if three {
            self.draw_3d_box(area, &ax, ctx)?;
        }
        let mut order: Vec<usize> = (0..xy.len()).collect();
        if three {
            order.sort_by(|&a, &b| depth[a].total_cmp(&depth[b]).then(a.cmp(&b)));
        }
        let r = ctx.px(self.radius).max(1);
        let alpha = self.alpha;
        for &i in &order {
            let p = xy[i];
            if !(p[0].is_finite() && p[1].is_finite()) {
                continue;
            }
            let (x, y) = ax.map(p[0], p[1]);
            let c = colors[i];
            area.draw(&Circle::new(
                (x - bx, y - by),
                r,
                RGBAColor(c[0], c[1], c[2], alpha).filled(),
            ))
            .map_err(perr)?;
        }
        if !three {
            draw_numeric_axes(area, &ax, ctx, true, true)?;
        }
        match &self.colouring {
            Colouring::Labels { .. } => draw_legend(
                area,
                ctx,
                (x1 + ctx.pxi(12.0), y0),
                &self.legend_title,
                &legend,
                false,
            )?,
            Colouring::Values {
                values,
                cmap,
                label,
            } => draw_colorbar(
                area,
                ctx,
                (x1 + ctx.pxi(12.0), y0, x1 + ctx.pxi(26.0), y1),
                *cmap,
                finite_range(values),
                label,
            )?,
            Colouring::Plain => {}
        }
        Ok(())
    }

    /// The three back edges of the unit cube through the far corner, with axis labels.
    fn draw_3d_box<DB: DrawingBackend>(&self, area: &Area<DB>, ax: &Axes, ctx: &Ctx) -> Result<()> {
        let (bx, by) = area.get_base_pixel();
        let (az, el) = (self.view.0.to_radians(), self.view.1.to_radians());
        let proj = |q: [f64; 3]| {
            let a = az.cos() * q[0] + az.sin() * q[1];
            let sx = -az.sin() * q[0] + az.cos() * q[1];
            let sy = -el.sin() * a + el.cos() * q[2];
            let (x, y) = ax.map(sx, sy);
            (x - bx, y - by)
        };
        let grey = ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(ctx.px(1.0).max(1));
        let corner = [-1.0, -1.0, -1.0];
        let names = [
            if self.xlabel.is_empty() {
                "x"
            } else {
                &self.xlabel
            },
            if self.ylabel.is_empty() {
                "y"
            } else {
                &self.ylabel
            },
            if self.zlabel.is_empty() {
                "z"
            } else {
                &self.zlabel
            },
        ];
        for k in 0..3 {
            let mut end = corner;
            end[k] = 1.0;
            area.draw(&PathElement::new(vec![proj(corner), proj(end)], grey))
                .map_err(perr)?;
            let mut lab = corner;
            lab[k] = 1.15;
            area.draw_text(
                names[k],
                &ctx.font(12.0).pos(Pos::new(HPos::Center, VPos::Center)),
                proj(lab),
            )
            .map_err(perr)?;
        }
        Ok(())
    }
}
