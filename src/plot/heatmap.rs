//! A matrix as colours: RSA matrices, second-order layer comparisons, activations per row.

use super::{
    draw_colorbar, draw_x_name_ticks, nice_ticks, perr, scatter::finite_range, text_width, Area,
    Colormap, Ctx, Frame,
};
use crate::analysis::Scalar;
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A heatmap of a matrix (matplotlib's `imshow` with a colour bar): row 0 at the top, square
/// cells, tick labels (layer names, class names at the centre of their block), optional block
/// separators and values written in the cells.
///
/// A diverging colour map ([`Colormap::RdBuR`]) without an explicit range is centred on 0
/// (`-max|v| .. max|v|`), as a correlation matrix should be.
///
/// ```
/// use neuroscope::plot::{Colormap, Heatmap};
/// let m = ndarray::array![[1.0, 0.2, -0.1], [0.2, 1.0, 0.4], [-0.1, 0.4, 1.0]];
/// let layers = ["conv1", "conv2", "fc"];
/// let fig = Heatmap::new(&m)?.labels(&layers)?.cmap(Colormap::RdBuR).annotate(true)
///     .title("Spearman between layers").colorbar_label("rho").figure();
/// let svg = fig.to_svg()?;
/// assert!(svg.contains("conv2") && svg.contains("0.40") && svg.contains("rho"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Heatmap {
    rows: usize,
    cols: usize,
    values: Vec<f64>,
    title: String,
    xlabel: String,
    ylabel: String,
    cbar_label: String,
    cmap: Colormap,
    range: Option<(f64, f64)>,
    row_ticks: Vec<(f64, String)>,
    col_ticks: Vec<(f64, String)>,
    row_seps: Vec<usize>,
    col_seps: Vec<usize>,
    annotate: bool,
    aspect: Aspect,
}

/// The shape of a heatmap's cells, as matplotlib's `imshow(aspect=...)`.
///
/// ```
/// use neuroscope::plot::{Aspect, Heatmap};
/// let wide = ndarray::Array2::<f64>::zeros((16, 500));   // 16 predictions x 500 units
/// let fig = Heatmap::new(&wide)?.aspect(Aspect::Auto).figure().size(900, 420);
/// assert!(fig.to_svg()?.contains("<svg"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aspect {
    /// Square cells (`aspect='equal'`, the default): a 16 x 500 matrix is a thin strip.
    #[default]
    Equal,
    /// Cells stretched to fill the plot area (`aspect='auto'`), for long, thin matrices.
    Auto,
}

fn block_ticks<N: AsRef<str>>(groups: &[i64], names: &[N]) -> (Vec<(f64, String)>, Vec<usize>) {
    let mut ticks = Vec::new();
    let mut seps = Vec::new();
    let mut start = 0;
    for i in 1..=groups.len() {
        if i == groups.len() || groups[i] != groups[start] {
            let g = groups[start];
            let name = usize::try_from(g)
                .ok()
                .and_then(|g| names.get(g))
                .map(|s| s.as_ref().to_string())
                .unwrap_or_else(|| g.to_string());
            ticks.push(((start + i) as f64 / 2.0, name));
            if i < groups.len() {
                seps.push(i);
            }
            start = i;
        }
    }
    (ticks, seps)
}

impl Heatmap {
    /// A heatmap of `matrix` (rows x columns).
    pub fn new<S: Data<Elem = T>, T: Scalar>(matrix: &ArrayBase<S, Ix2>) -> Result<Heatmap> {
        let (rows, cols) = matrix.dim();
        if rows == 0 || cols == 0 {
            return Err(Error::Shape {
                what: "heatmap matrix".into(),
                expected: "at least 1 x 1".into(),
                got: format!("{rows} x {cols}"),
            });
        }
        Ok(Heatmap {
            rows,
            cols,
            values: matrix.iter().map(|v| v.to_f64()).collect(),
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            cbar_label: String::new(),
            cmap: Colormap::Viridis,
            range: None,
            row_ticks: Vec::new(),
            col_ticks: Vec::new(),
            row_seps: Vec::new(),
            col_seps: Vec::new(),
            annotate: false,
            aspect: Aspect::Equal,
        })
    }

    /// Title above the plot.
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = t.into();
        self
    }
    /// Label under the columns.
    pub fn xlabel(mut self, t: impl Into<String>) -> Self {
        self.xlabel = t.into();
        self
    }
    /// Label beside the rows.
    pub fn ylabel(mut self, t: impl Into<String>) -> Self {
        self.ylabel = t.into();
        self
    }
    /// Label of the colour bar.
    pub fn colorbar_label(mut self, t: impl Into<String>) -> Self {
        self.cbar_label = t.into();
        self
    }
    /// Colour map (default viridis).
    pub fn cmap(mut self, cmap: Colormap) -> Self {
        self.cmap = cmap;
        self
    }
    /// The values mapped to the ends of the colour map (default: the data's range, or
    /// symmetric around 0 for a diverging map).
    pub fn range(mut self, vmin: f64, vmax: f64) -> Self {
        self.range = Some((vmin, vmax));
        self
    }
    /// Writes each value (2 decimals) in its cell; for small matrices (up to 30 x 30).
    pub fn annotate(mut self, on: bool) -> Self {
        self.annotate = on;
        self
    }

    fn names<N: AsRef<str>>(n: usize, what: &str, names: &[N]) -> Result<Vec<(f64, String)>> {
        if names.len() != n {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!("{n} names"),
                got: names.len().to_string(),
            });
        }
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64 + 0.5, s.as_ref().to_string()))
            .collect())
    }

    /// Names of the rows.
    pub fn row_labels<N: AsRef<str>>(mut self, names: &[N]) -> Result<Self> {
        self.row_ticks = Self::names(self.rows, "row labels", names)?;
        Ok(self)
    }
    /// Names of the columns.
    pub fn col_labels<N: AsRef<str>>(mut self, names: &[N]) -> Result<Self> {
        self.col_ticks = Self::names(self.cols, "column labels", names)?;
        Ok(self)
    }
    /// Square cells (the default) or cells that fill the area ([`Aspect::Auto`]).
    pub fn aspect(mut self, aspect: Aspect) -> Self {
        self.aspect = aspect;
        self
    }
    /// The same names for rows and columns (a square layer-by-layer matrix).
    pub fn labels<N: AsRef<str>>(self, names: &[N]) -> Result<Self> {
        self.row_labels(names)?.col_labels(names)
    }

    /// Stimuli ordered by group (class): one tick per block at its centre named
    /// `names[group]`, and a separator line between blocks, on both axes of a square matrix
    /// (workflow 2's matrices ordered by class).
    pub fn blocks<L: super::scatter::Label, N: AsRef<str>>(
        mut self,
        groups: &[L],
        names: &[N],
    ) -> Result<Self> {
        let g: Vec<i64> = groups.iter().map(|l| l.to_i64()).collect();
        if g.len() != self.rows || g.len() != self.cols {
            return Err(Error::Shape {
                what: "block groups".into(),
                expected: format!("one per row and column ({} x {})", self.rows, self.cols),
                got: g.len().to_string(),
            });
        }
        let (ticks, seps) = block_ticks(&g, names);
        self.row_ticks = ticks.clone();
        self.col_ticks = ticks;
        self.row_seps = seps.clone();
        self.col_seps = seps;
        Ok(self)
    }

    /// Groups of rows only (a rows-by-units activation matrix ordered by class).
    pub fn row_blocks<L: super::scatter::Label, N: AsRef<str>>(
        mut self,
        groups: &[L],
        names: &[N],
    ) -> Result<Self> {
        let g: Vec<i64> = groups.iter().map(|l| l.to_i64()).collect();
        if g.len() != self.rows {
            return Err(Error::Shape {
                what: "row groups".into(),
                expected: format!("one per row ({})", self.rows),
                got: g.len().to_string(),
            });
        }
        let (ticks, seps) = block_ticks(&g, names);
        self.row_ticks = ticks;
        self.row_seps = seps;
        Ok(self)
    }

    /// Separator lines before the given row/column indices.
    pub fn separators(mut self, rows: &[usize], cols: &[usize]) -> Self {
        self.row_seps = rows.to_vec();
        self.col_seps = cols.to_vec();
        self
    }

    /// The values mapped to the colour map's ends.
    pub fn color_range(&self) -> (f64, f64) {
        if let Some(r) = self.range {
            return r;
        }
        let (lo, hi) = finite_range(&self.values);
        if self.cmap.is_diverging() {
            let m = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
            (-m, m)
        } else {
            (lo, hi)
        }
    }

    fn default_ticks(n: usize) -> Vec<(f64, String)> {
        nice_ticks(0.0, (n - 1) as f64, 6)
            .into_iter()
            .filter(|v| v.fract() == 0.0)
            .map(|v| (v + 0.5, format!("{}", v as i64)))
            .collect()
    }

    pub(crate) fn draw<DB: DrawingBackend>(&self, area: &Area<DB>, ctx: &mut Ctx) -> Result<()> {
        let col_ticks = if self.col_ticks.is_empty() {
            Self::default_ticks(self.cols)
        } else {
            thin(&self.col_ticks, 40)
        };
        let row_ticks = if self.row_ticks.is_empty() {
            Self::default_ticks(self.rows)
        } else {
            thin(&self.row_ticks, 40)
        };
        let longest_col = col_ticks
            .iter()
            .map(|(_, s)| text_width(s, 10.5))
            .fold(0.0, f64::max);
        let rotate = col_ticks.iter().any(|(_, s)| s.chars().count() > 3) && longest_col > 18.0;
        let frame = Frame {
            title: self.title.clone(),
            xlabel: self.xlabel.clone(),
            ylabel: self.ylabel.clone(),
            right: 80.0,
            bottom_extra: if rotate {
                (longest_col - 10.0).max(0.0)
            } else {
                0.0
            },
            left_extra: row_ticks
                .iter()
                .map(|(_, s)| text_width(s, 10.5))
                .fold(0.0, f64::max)
                .min(160.0)
                - 20.0,
        };
        let (mut x0, mut y0, mut x1, mut y1) = frame.place(area, ctx)?;
        // Square cells: shrink the longer side and centre (or, `Aspect::Auto`, fill the area).
        let (aw, ah) = ((x1 - x0) as f64, (y1 - y0) as f64);
        let cell = (aw / self.cols as f64).min(ah / self.rows as f64);
        let (cw, ch) = match self.aspect {
            Aspect::Equal => (cell, cell),
            Aspect::Auto => (aw / self.cols as f64, ah / self.rows as f64),
        };
        let (w, h) = (
            (cw * self.cols as f64).round() as i32,
            (ch * self.rows as f64).round() as i32,
        );
        x0 += ((aw as i32) - w) / 2;
        y0 += ((ah as i32) - h) / 2;
        x1 = x0 + w;
        y1 = y0 + h;

        let (lo, hi) = self.color_range();
        let span = if hi > lo { hi - lo } else { 1.0 };
        let rgb: Vec<u8> = self
            .values
            .iter()
            .flat_map(|v| self.cmap.rgb((v - lo) / span))
            .collect();
        ctx.image(x0, y0, w as u32, h as u32, self.cols, self.rows, rgb);

        let t = ctx.px(1.0).max(1);
        for &r in &self.row_seps {
            let y = y0 + (r as f64 * ch).round() as i32;
            ctx.rect(x0, y, w as u32, t, [255, 255, 255]);
        }
        for &c in &self.col_seps {
            let x = x0 + (c as f64 * cw).round() as i32;
            ctx.rect(x, y0, t, h as u32, [255, 255, 255]);
        }
        if self.annotate && self.rows <= 30 && self.cols <= 30 {
            let size = (cw.min(ch) / ctx.s * 0.3).clamp(6.0, 12.0);
            for r in 0..self.rows {
                for c in 0..self.cols {
                    let v = self.values[r * self.cols + c];
                    let col = self.cmap.rgb((v - lo) / span);
                    let lum = 0.299 * col[0] as f64 + 0.587 * col[1] as f64 + 0.114 * col[2] as f64;
                    let ink = if lum < 128.0 {
                        [255, 255, 255]
                    } else {
                        [0, 0, 0]
                    };
                    ctx.text(
                        x0 + ((c as f64 + 0.5) * cw).round() as i32,
                        y0 + ((r as f64 + 0.5) * ch).round() as i32,
                        size,
                        ink,
                        format!("{v:.2}"),
                    );
                }
            }
        }
        ctx.frame(x0, y0, x1, y1, [0, 0, 0]);

        let (bx, by) = area.get_base_pixel();
        let line = ShapeStyle::from(&BLACK).stroke_width(ctx.px(1.0).max(1));
        let tick = ctx.pxi(3.5);
        draw_x_name_ticks(
            area,
            ctx,
            col_ticks
                .iter()
                .map(|(pos, name)| (x0 + (pos * cw).round() as i32, name.as_str())),
            y1,
            rotate,
        )?;
        for (pos, name) in &row_ticks {
            let y = y0 + (pos * ch).round() as i32 - by;
            area.draw(&PathElement::new(
                vec![(x0 - bx - tick, y), (x0 - bx, y)],
                line,
            ))
            .map_err(perr)?;
            area.draw_text(
                name,
                &ctx.font(10.5).pos(Pos::new(HPos::Right, VPos::Center)),
                (x0 - bx - tick - ctx.pxi(2.0), y),
            )
            .map_err(perr)?;
        }
        draw_colorbar(
            area,
            ctx,
            (x1 + ctx.pxi(14.0), y0, x1 + ctx.pxi(28.0), y1),
            self.cmap,
            (lo, hi),
            &self.cbar_label,
        )
    }
}

/// At most `max` ticks: every k-th one.
fn thin(ticks: &[(f64, String)], max: usize) -> Vec<(f64, String)> {
    let k = ticks.len().div_ceil(max).max(1);
    ticks.iter().step_by(k).cloned().collect()
}
