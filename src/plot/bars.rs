//! Bar plots: fully-connected activations of one example, class probabilities.

use super::{
    category_color, draw_numeric_axes, draw_x_name_ticks, padded_range, perr, text_width, Area,
    Axes, Ctx, Frame,
};
use crate::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Vertical bars from 0 (negative values hang below the axis), optionally named, optionally
/// with each value printed above its bar (workflow 4's activations of a confident and an unsure
/// prediction; class probabilities).
///
/// ```
/// use neuroscope::plot::Bars;
/// let p = [0.01, 0.02, 0.9, 0.07];
/// let fig = Bars::new(&p).names(&["0", "1", "2", "3"])?.show_values(true)
///     .title("P(class)").xlabel("class").ylabel("probability").figure();
/// assert!(fig.to_svg()?.contains("0.90"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Bars {
    values: Vec<f64>,
    names: Vec<String>,
    highlight: Option<usize>,
    title: String,
    xlabel: String,
    ylabel: String,
    show_values: bool,
    errors: Vec<(f64, f64)>,
    band: Option<(f64, f64, String)>,
}

impl Bars {
    /// One bar per value.
    pub fn new(values: &[f64]) -> Bars {
        Bars {
            values: values.to_vec(),
            names: Vec::new(),
            highlight: None,
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            show_values: false,
            errors: Vec::new(),
            band: None,
        }
    }
    /// A name under each bar.
    pub fn names<N: AsRef<str>>(mut self, names: &[N]) -> Result<Self> {
        if names.len() != self.values.len() {
            return Err(Error::Shape {
                what: "bar names".into(),
                expected: format!("one per bar ({})", self.values.len()),
                got: names.len().to_string(),
            });
        }
        self.names = names.iter().map(|s| s.as_ref().to_string()).collect();
        Ok(self)
    }
    /// Draws bar `i` in a second colour (the predicted class).
    pub fn highlight(mut self, i: usize) -> Self {
        self.highlight = Some(i);
        self
    }
    /// Prints each value (2 decimals) above its bar (below for negative values).
    pub fn show_values(mut self, on: bool) -> Self {
        self.show_values = on;
        self
    }
    /// An error bar per bar, from `low` to `high` (absolute values, e.g. a confidence
    /// interval; rsatoolbox's `plot_model_comparison` error bars).
    ///
    /// ```
    /// use neuroscope::plot::Bars;
    /// let fig = Bars::new(&[0.6, 0.1]).errors(&[(0.4, 0.8), (-0.2, 0.4)])?
    ///     .band(0.55, 0.7, "noise ceiling").figure();
    /// assert!(fig.to_svg()?.contains("noise ceiling"));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn errors(mut self, intervals: &[(f64, f64)]) -> Result<Self> {
        if intervals.len() != self.values.len() {
            return Err(Error::Shape {
                what: "error bars".into(),
                expected: format!("one (low, high) per bar ({})", self.values.len()),
                got: intervals.len().to_string(),
            });
        }
        self.errors = intervals.to_vec();
        Ok(self)
    }
    /// A grey horizontal band from `low` to `high` behind the bars, labelled at its right end
    /// (the noise ceiling of a model comparison).
    pub fn band(mut self, low: f64, high: f64, label: impl Into<String>) -> Self {
        self.band = Some((low.min(high), low.max(high), label.into()));
        self
    }
    super::axis_label_setters!();

    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        let n = self.values.len();
        let longest = self
            .names
            .iter()
            .map(|s| text_width(s, 10.5))
            .fold(0.0, f64::max);
        let rotate = longest * n as f64 > 0.8 * area.dim_in_pixel().0 as f64 / ctx.s;
        let frame = Frame {
            title: self.title.clone(),
            xlabel: self.xlabel.clone(),
            ylabel: self.ylabel.clone(),
            right: 0.0,
            bottom_extra: if rotate {
                (longest - 10.0).max(0.0)
            } else {
                0.0
            },
            left_extra: 0.0,
        };
        let (x0, y0, x1, y1) = frame.place(area, ctx)?;
        let extra = self
            .errors
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .chain(self.band.iter().flat_map(|b| [b.0, b.1]))
            .filter(|v| v.is_finite());
        let (lo, hi) = padded_range(self.values.iter().copied().chain([0.0]).chain(extra));
        let ax = Axes {
            x0,
            y0,
            x1,
            y1,
            xr: (-0.6, n.max(1) as f64 - 0.4),
            yr: (lo.min(0.0), hi.max(0.0)),
        };
        let (bx, by) = area.get_base_pixel();
        let base = category_color(0, 10);
        let hi_c = category_color(1, 10);
        if let Some((b_lo, b_hi, label)) = &self.band {
            if b_lo.is_finite() && b_hi.is_finite() {
                let (xa, ya) = ax.map(-0.6, *b_hi);
                let (xb, yb) = ax.map(n.max(1) as f64 - 0.4, *b_lo);
                area.draw(&Rectangle::new(
                    [(xa - bx, ya - by), (xb - bx, (yb - by).max(ya - by + 1))],
                    RGBColor(215, 215, 215).filled(),
                ))
                .map_err(perr)?;
                area.draw_text(
                    label,
                    &ctx.font(9.0).pos(Pos::new(HPos::Right, VPos::Bottom)),
                    (xb - bx - ctx.pxi(2.0), ya - by - ctx.pxi(1.0)),
                )
                .map_err(perr)?;
            }
        }
        for (i, &v) in self.values.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let c = if self.highlight == Some(i) {
                hi_c
            } else {
                base
            };
            let (xa, ya) = ax.map(i as f64 - 0.4, 0.0);
            let (xb, yb) = ax.map(i as f64 + 0.4, v);
            area.draw(&Rectangle::new(
                [(xa - bx, ya - by), ((xb - bx).max(xa - bx + 1), yb - by)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(perr)?;
            if self.show_values && n <= 40 {
                let (anchor, dy) = if v >= 0.0 {
                    (VPos::Bottom, -ctx.pxi(2.0))
                } else {
                    (VPos::Top, ctx.pxi(2.0))
                };
                area.draw_text(
                    &format!("{v:.2}"),
                    &ctx.font(9.5).pos(Pos::new(HPos::Center, anchor)),
                    ((xa + xb) / 2 - bx, yb - by + dy),
                )
                .map_err(perr)?;
            }
        }
        let stroke = ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.2).max(1));
        for (i, &(a, b)) in self.errors.iter().enumerate() {
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            let (xc, ya) = ax.map(i as f64, a);
            let (_, yb) = ax.map(i as f64, b);
            let cap = ctx.pxi(4.0);
            for seg in [
                vec![(xc - bx, ya - by), (xc - bx, yb - by)],
                vec![(xc - cap - bx, ya - by), (xc + cap - bx, ya - by)],
                vec![(xc - cap - bx, yb - by), (xc + cap - bx, yb - by)],
            ] {
                area.draw(&PathElement::new(seg, stroke)).map_err(perr)?;
            }
        }
        let (_, zero) = ax.map(0.0, 0.0);
        area.draw(&PathElement::new(
            vec![(x0 - bx, zero - by), (x1 - bx, zero - by)],
            ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.0).max(1)),
        ))
        .map_err(perr)?;
        draw_numeric_axes(area, &ax, ctx, self.names.is_empty(), true)?;
        let step = n.div_ceil(50).max(1);
        draw_x_name_ticks(
            area,
            ctx,
            self.names
                .iter()
                .enumerate()
                .step_by(step)
                .map(|(i, name)| (ax.map(i as f64, 0.0).0, name.as_str())),
            y1,
            rotate,
        )?;
        Ok(())
    }
}
