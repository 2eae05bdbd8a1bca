//! Line plots: variance explained, components per layer, training curves, featvis history.

use super::{
    category_color, draw_legend, draw_numeric_axes, draw_x_name_ticks, padded_range, perr,
    text_width, Area, Axes, Ctx, Frame,
};
use crate::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

#[derive(Clone, Debug)]
struct Series {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
    dashed: bool,
}

/// One or more lines on shared axes (matplotlib's `plot`), colours from `tab10`, a legend when
/// there is more than one named line, optional markers, horizontal reference lines (the 80 %
/// threshold) and categorical x tick labels (layer names, rotated when long).
///
/// ```
/// use neuroscope::plot::Lines;
/// let layers = ["conv1", "conv2", "conv3", "fc6", "fc7"];
/// let fig = Lines::new()
///     .line("PCs for 80%", &[3.0, 9.0, 21.0, 40.0, 12.0])
///     .markers(true).x_ticks(&layers).hline(0.0, "")
///     .title("Components needed for 80 % variance").ylabel("components").figure();
/// let svg = fig.to_svg()?;
/// assert!(svg.contains("fc7") && svg.contains("components"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Lines {
    series: Vec<Series>,
    title: String,
    xlabel: String,
    ylabel: String,
    x_ticks: Vec<String>,
    hlines: Vec<(f64, String)>,
    ylim: Option<(f64, f64)>,
    markers: bool,
}

impl Lines {
    /// Empty axes.
    pub fn new() -> Lines {
        Lines::default()
    }

    /// A line through `(x[i], y[i])`.
    pub fn series(mut self, name: impl Into<String>, x: &[f64], y: &[f64]) -> Result<Self> {
        if x.len() != y.len() {
            return Err(Error::Shape {
                what: "line x and y".into(),
                expected: format!("the same length as x ({})", x.len()),
                got: y.len().to_string(),
            });
        }
        self.series.push(Series {
            name: name.into(),
            x: x.to_vec(),
            y: y.to_vec(),
            dashed: false,
        });
        Ok(self)
    }

    /// A line through the `(x, y)` pairs (infallible: the pairs cannot disagree in length).
    pub fn points(mut self, name: impl Into<String>, xy: &[(f64, f64)]) -> Self {
        self.series.push(Series {
            name: name.into(),
            x: xy.iter().map(|p| p.0).collect(),
            y: xy.iter().map(|p| p.1).collect(),
            dashed: false,
        });
        self
    }

    /// A line through `(i, y[i])` for `i = 0, 1, ...` (or under the [`x_ticks`](Lines::x_ticks)).
    pub fn line(mut self, name: impl Into<String>, y: &[f64]) -> Self {
        self.series.push(Series {
            name: name.into(),
            x: (0..y.len()).map(|i| i as f64).collect(),
            y: y.to_vec(),
            dashed: false,
        });
        self
    }

    /// Draws the last added line dashed (cumulative vs per-component curves).
    pub fn dashed(mut self) -> Self {
        if let Some(s) = self.series.last_mut() {
            s.dashed = true;
        }
        self
    }

    /// Marks each point with a dot.
    pub fn markers(mut self, on: bool) -> Self {
        self.markers = on;
        self
    }

    /// Names under x = 0, 1, ... instead of numbers (layers).
    pub fn x_ticks<N: AsRef<str>>(mut self, names: &[N]) -> Self {
        self.x_ticks = names.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// A dotted horizontal reference line, labelled at its right end.
    pub fn hline(mut self, y: f64, label: impl Into<String>) -> Self {
        self.hlines.push((y, label.into()));
        self
    }

    /// Fixed y limits.
    pub fn ylim(mut self, lo: f64, hi: f64) -> Self {
        self.ylim = Some((lo, hi));
        self
    }

    super::axis_label_setters!();

    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        let longest = self
            .x_ticks
            .iter()
            .map(|s| text_width(s, 10.5))
            .fold(0.0, f64::max);
        let rotate = !self.x_ticks.is_empty()
            && (longest * self.x_ticks.len() as f64 > 0.8 * area.dim_in_pixel().0 as f64 / ctx.s);
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
        let xs = self.series.iter().flat_map(|s| s.x.iter().copied());
        let mut xr = padded_range(xs);
        if !self.x_ticks.is_empty() {
            let n = self.x_ticks.len() as f64;
            xr = (xr.0.min(-0.5), xr.1.max(n - 0.5));
        }
        let yr = self.ylim.unwrap_or_else(|| {
            padded_range(
                self.series
                    .iter()
                    .flat_map(|s| s.y.iter().copied())
                    .chain(self.hlines.iter().map(|h| h.0)),
            )
        });
        let ax = Axes {
            x0,
            y0,
            x1,
            y1,
            xr,
            yr,
        };
        let (bx, by) = area.get_base_pixel();
        let inside = |x: f64, y: f64| x.is_finite() && y.is_finite();
        for (h, label) in &self.hlines {
            let (_, y) = ax.map(xr.0, *h);
            let grey = RGBColor(110, 110, 110);
            let dash = ctx.pxi(4.0).max(1);
            let mut x = x0;
            while x < x1 {
                area.draw(&PathElement::new(
                    vec![(x - bx, y - by), ((x + dash).min(x1) - bx, y - by)],
                    ShapeStyle::from(&grey).stroke_width(ctx.px(1.0).max(1)),
                ))
                .map_err(perr)?;
                x += 2 * dash;
            }
            if !label.is_empty() {
                area.draw_text(
                    label,
                    &ctx.font(10.5)
                        .color(&grey)
                        .pos(Pos::new(HPos::Right, VPos::Bottom)),
                    (x1 - bx - ctx.pxi(4.0), y - by - ctx.pxi(2.0)),
                )
                .map_err(perr)?;
            }
        }
        for (k, s) in self.series.iter().enumerate() {
            let c = category_color(k, self.series.len());
            let color = RGBColor(c[0], c[1], c[2]);
            let style = ShapeStyle::from(&color).stroke_width(ctx.px(1.8).max(1));
            // Runs of finite points are drawn as one path each (NaN breaks the line).
            let mut run: Vec<(i32, i32)> = Vec::new();
            let flush = |run: &mut Vec<(i32, i32)>| -> Result<()> {
                if run.len() > 1 {
                    if s.dashed {
                        for pair in run.windows(2).step_by(2) {
                            area.draw(&PathElement::new(pair.to_vec(), style))
                                .map_err(perr)?;
                        }
                    } else {
                        area.draw(&PathElement::new(std::mem::take(run), style))
                            .map_err(perr)?;
                    }
                }
                run.clear();
                Ok(())
            };
            for (&x, &y) in s.x.iter().zip(&s.y) {
                if inside(x, y) {
                    let (px, py) = ax.map(x, y);
                    run.push((px - bx, py - by));
                } else {
                    flush(&mut run)?;
                }
            }
            flush(&mut run)?;
            if self.markers || s.x.len() == 1 {
                for (&x, &y) in s.x.iter().zip(&s.y).filter(|(x, y)| inside(**x, **y)) {
                    let (px, py) = ax.map(x, y);
                    area.draw(&Circle::new(
                        (px - bx, py - by),
                        ctx.px(3.0).max(1),
                        color.filled(),
                    ))
                    .map_err(perr)?;
                }
            }
        }
        draw_numeric_axes(area, &ax, ctx, self.x_ticks.is_empty(), true)?;
        let step = self.x_ticks.len().div_ceil(40).max(1);
        draw_x_name_ticks(
            area,
            ctx,
            self.x_ticks
                .iter()
                .enumerate()
                .step_by(step)
                .map(|(i, name)| (ax.map(i as f64, yr.0).0, name.as_str())),
            y1,
            rotate,
        )?;
        let named: Vec<(String, [u8; 3])> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .map(|(k, s)| (s.name.clone(), category_color(k, self.series.len())))
            .collect();
        if named.len() > 1 {
            let w = named
                .iter()
                .map(|(n, _)| text_width(n, 11.0))
                .fold(0.0, f64::max)
                + 34.0;
            // matplotlib's loc="best": the corner whose box covers the fewest data points
            // (ties in the order upper right, upper left, lower left, lower right).
            let bg_h = ctx.px(17.0 * named.len() as f64 + 4.0);
            let (bw, m) = (ctx.pxi(w), ctx.pxi(6.0));
            let corners = [
                (x1 - bw - m, y0 + m),
                (x0 + m + ctx.pxi(4.0), y0 + m),
                (x0 + m + ctx.pxi(4.0), y1 - m - bg_h as i32),
                (x1 - bw - m, y1 - m - bg_h as i32),
            ];
            let pts: Vec<(i32, i32)> = self
                .series
                .iter()
                .flat_map(|s| s.x.iter().zip(&s.y))
                .filter(|(x, y)| inside(**x, **y))
                .map(|(&x, &y)| ax.map(x, y))
                .collect();
            let (lx, ly) = corners
                .iter()
                .copied()
                .min_by_key(|&(cx, cy)| {
                    pts.iter()
                        .filter(|&&(px, py)| {
                            px >= cx - m
                                && px <= cx + bw + m
                                && py >= cy - m
                                && py <= cy + bg_h as i32 + m
                        })
                        .count()
                })
                .unwrap_or(corners[0]);
            area.draw(&Rectangle::new(
                [
                    (lx - bx - ctx.pxi(4.0), ly - by - ctx.pxi(2.0)),
                    (lx - bx + bw - ctx.pxi(4.0) + m, ly - by + bg_h as i32),
                ],
                ShapeStyle::from(&RGBAColor(255, 255, 255, 0.8)).filled(),
            ))
            .map_err(perr)?;
            draw_legend(area, ctx, (lx, ly), "", &named, true)?;
        }
        Ok(())
    }
}
