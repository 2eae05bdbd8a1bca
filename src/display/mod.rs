//! Showing results: in an evcxr notebook cell, in a browser, on disk.
//!
//! evcxr renders a value inline when its type has an `evcxr_display` method that prints a
//! MIME block. Every displayable neuroscope type has one; it also has `to_html` so that the
//! same object can go into a stand-alone report (what `neuroscope tour` writes).

use crate::data::{Dataset, Image};
use crate::Result;
use std::path::Path;

pub(crate) mod html;

pub(crate) use html::evcxr_emit;
pub use html::{base64, escape};

/// A titled grid of images, each with a caption (a class name, a prediction): workflow 2's
/// `plot_images_grid` as HTML, crisp at any zoom.
///
/// ```
/// use neuroscope::{data::embedded, display::ImageGrid};
/// let grid = ImageGrid::from_dataset(&*embedded::mnist(), &[0, 1, 2], "Digits").unwrap();
/// let html = grid.to_html().unwrap();
/// assert!(html.contains("Digits") && html.contains("data:image/png;base64,"));
/// ```
#[derive(Clone, Debug)]
pub struct ImageGrid {
    title: String,
    columns: usize,
    scale: usize,
    cells: Vec<(Image, String)>,
}

impl ImageGrid {
    /// An empty grid with a title, 10 columns, images shown at 3x their pixel size.
    pub fn new(title: impl Into<String>) -> Self {
        ImageGrid {
            title: title.into(),
            columns: 10,
            scale: 3,
            cells: Vec::new(),
        }
    }

    /// Number of columns.
    pub fn columns(mut self, columns: usize) -> Self {
        self.columns = columns.max(1);
        self
    }

    /// Integer magnification of each image (nearest neighbour).
    pub fn scale(mut self, scale: usize) -> Self {
        self.scale = scale.max(1);
        self
    }

    /// Adds an image with its caption. Values are shown clamped to `[0, 1]`; pass
    /// `img.min_max_scaled()` for normalised data.
    pub fn push(&mut self, image: Image, caption: impl Into<String>) {
        self.cells.push((image, caption.into()));
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The samples at `indices`, captioned with their class names.
    pub fn from_dataset<D: Dataset + ?Sized>(
        dataset: &D,
        indices: &[usize],
        title: impl Into<String>,
    ) -> Result<Self> {
        let names = dataset.class_names();
        let mut grid = ImageGrid::new(title);
        for &i in indices {
            let (img, label) = dataset.get(i)?;
            let caption = names
                .get(label)
                .cloned()
                .unwrap_or_else(|| label.to_string());
            grid.push(img, caption);
        }
        Ok(grid)
    }

    /// A self-contained HTML fragment (images inlined as PNG).
    pub fn to_html(&self) -> Result<String> {
        let mut html = format!(
            "<figure class=\"ns-grid\" style=\"margin:1em 0\">\n<figcaption style=\"font:bold 15px sans-serif;margin-bottom:6px\">{}</figcaption>\n\
             <div style=\"display:grid;grid-template-columns:repeat({},max-content);gap:8px 10px\">\n",
            escape(&self.title),
            self.columns
        );
        for (img, caption) in &self.cells {
            let png = img.to_png(self.scale)?;
            html.push_str(&format!(
                "<div style=\"text-align:center;font:12px sans-serif\"><img alt=\"{c}\" title=\"{c}\" \
                 style=\"image-rendering:pixelated;display:block;border:1px solid #ccc\" \
                 src=\"data:image/png;base64,{b}\"/>{c}</div>\n",
                c = escape(caption),
                b = base64(&png),
            ));
        }
        html.push_str("</div>\n</figure>\n");
        Ok(html)
    }

    /// Renders inline in an evcxr notebook (the cell's last expression).
    pub fn evcxr_display(&self) {
        match self.to_html() {
            Ok(h) => evcxr_emit("text/html", &h),
            Err(e) => eprintln!("cannot display image grid: {e}"),
        }
    }
}

/// A stand-alone HTML page assembled from sections, written with [`Report::save`].
///
/// ```
/// let mut r = neuroscope::display::Report::new("Tour");
/// r.heading("Data");
/// r.paragraph("Some <text>.");
/// assert!(r.to_html().contains("&lt;text&gt;"));
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    title: String,
    body: String,
}

impl Report {
    /// An empty page.
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            body: String::new(),
        }
    }
    /// A section heading.
    pub fn heading(&mut self, text: &str) {
        self.body.push_str(&format!("<h2>{}</h2>\n", escape(text)));
    }
    /// A paragraph of plain text.
    pub fn paragraph(&mut self, text: &str) {
        self.body.push_str(&format!("<p>{}</p>\n", escape(text)));
    }
    /// Raw HTML (from `to_html` of a displayable value).
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }
    /// A table with a header row.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let th: String = header
            .iter()
            .map(|h| format!("<th>{}</th>", escape(h)))
            .collect();
        let trs: String = rows
            .iter()
            .map(|r| {
                format!(
                    "<tr>{}</tr>",
                    r.iter()
                        .map(|c| format!("<td>{}</td>", escape(c)))
                        .collect::<String>()
                )
            })
            .collect();
        self.body
            .push_str(&format!("<table>\n<tr>{th}</tr>\n{trs}\n</table>\n"));
    }
    /// The whole page.
    pub fn to_html(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
             body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\
             table{{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
             </style></head><body>\n<h1>{t}</h1>\n{b}</body></html>\n",
            t = escape(&self.title),
            b = self.body
        )
    }
    /// Writes the page to `path`, creating its folder.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::io::output::write_atomic(path, self.to_html().as_bytes())
    }
}
