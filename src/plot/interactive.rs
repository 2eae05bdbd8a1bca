//! Workflow 1's interactive scatter without a server: one self-contained HTML fragment.

use super::scatter::label_palette;
use super::{colormap::hex, nice_ticks, padded_range, tick_label, FAMILY};
use crate::analysis::Scalar;
use crate::data::{Dataset, Image};
use crate::display::{base64, escape};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Ix2};

/// An embedding as an interactive scatter: hovering a point shows that sample's image and
/// label beside the cursor, and a switch recolours the points by true labels or by cluster
/// labels (interdim's figure). One HTML fragment with an inline SVG, a little CSS and a short
/// script: no server, no network, no library. It renders in JupyterLab (trusted output), in a
/// saved `.html` file, and where scripts are blocked it is a static scatter coloured by true
/// label with its legend (each point still has a native tooltip with its label).
///
/// ```
/// use neuroscope::{data::{embedded, Dataset}, plot::InteractiveScatter};
/// let ds = embedded::fashion_mnist().subset(50, 0)?;
/// let xy = ndarray::Array2::from_shape_fn((50, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
/// let clusters: Vec<i64> = (0..50).map(|i| (i % 3) as i64 - 1).collect();   // -1 = noise
/// let html = InteractiveScatter::from_dataset(&xy, &ds)?
///     .clusters(&clusters)?.title("t-SNE of AlexNet features").to_html()?;
/// assert_eq!(html.matches("<circle").count(), 50 + 10 + 3);  // points + both legends
/// assert!(html.contains("Ankle boot") && html.contains("data:image/png;base64,"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct InteractiveScatter {
    xy: Vec<[f64; 2]>,
    labels: Vec<i64>,
    names: Vec<String>,
    clusters: Option<Vec<i64>>,
    images: Vec<Image>,
    title: String,
    xlabel: String,
    ylabel: String,
    size: (u32, u32),
    zoom: usize,
}

impl InteractiveScatter {
    /// Points (`N x 2`) with their true labels and the class names.
    pub fn new<S: Data<Elem = T>, T: Scalar, L: super::scatter::Label, N: AsRef<str>>(
        xy: &ArrayBase<S, Ix2>,
        labels: &[L],
        names: &[N],
    ) -> Result<InteractiveScatter> {
        let (n, d) = xy.dim();
        if d != 2 {
            return Err(Error::Shape {
                what: "interactive scatter points".into(),
                expected: "N x 2".into(),
                got: format!("{n} x {d}"),
            });
        }
        if labels.len() != n {
            return Err(Error::Shape {
                what: "labels".into(),
                expected: format!("one per point ({n})"),
                got: labels.len().to_string(),
            });
        }
        Ok(InteractiveScatter {
            xy: xy
                .rows()
                .into_iter()
                .map(|r| [r[0].to_f64(), r[1].to_f64()])
                .collect(),
            labels: labels.iter().map(|l| l.to_i64()).collect(),
            names: names.iter().map(|s| s.as_ref().to_string()).collect(),
            clusters: None,
            images: Vec::new(),
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            size: (720, 520),
            zoom: 3,
        })
    }

    /// Points of the samples of `dataset` (row `i` is sample `i`): labels, class names and the
    /// images shown on hover all come from the dataset.
    pub fn from_dataset<S: Data<Elem = T>, T: Scalar, D: Dataset + ?Sized>(
        xy: &ArrayBase<S, Ix2>,
        dataset: &D,
    ) -> Result<InteractiveScatter> {
        if dataset.len() != xy.nrows() {
            return Err(Error::Shape {
                what: "dataset for the scatter".into(),
                expected: format!("one sample per point ({})", xy.nrows()),
                got: dataset.len().to_string(),
            });
        }
        let mut labels = Vec::with_capacity(dataset.len());
        let mut images = Vec::with_capacity(dataset.len());
        for i in 0..dataset.len() {
            let (img, l) = dataset.get(i)?;
            labels.push(l);
            images.push(img);
        }
        let mut s = Self::new(xy, &labels, &dataset.class_names())?;
        s.images = images;
        Ok(s)
    }

    /// The image shown when hovering each point (values in `[0, 1]`).
    pub fn images(mut self, images: Vec<Image>) -> Result<Self> {
        if images.len() != self.xy.len() {
            return Err(Error::Shape {
                what: "hover images".into(),
                expected: format!("one per point ({})", self.xy.len()),
                got: images.len().to_string(),
            });
        }
        self.images = images;
        Ok(self)
    }

    /// Cluster labels (DBSCAN, k-means; -1 = noise) for the switch.
    pub fn clusters<L: super::scatter::Label>(mut self, clusters: &[L]) -> Result<Self> {
        if clusters.len() != self.xy.len() {
            return Err(Error::Shape {
                what: "cluster labels".into(),
                expected: format!("one per point ({})", self.xy.len()),
                got: clusters.len().to_string(),
            });
        }
        self.clusters = Some(clusters.iter().map(|l| l.to_i64()).collect());
        Ok(self)
    }

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
    /// Size of the SVG in pixels (default 720 x 520).
    pub fn size(mut self, w: u32, h: u32) -> Self {
        self.size = (w.max(200), h.max(150));
        self
    }
    /// Magnification of the hover image (default 3).
    pub fn zoom(mut self, z: usize) -> Self {
        self.zoom = z.clamp(1, 16);
        self
    }

    /// A deterministic id from the content, so two scatters on one page never clash and the
    /// same input gives the same bytes.
    fn id(&self) -> String {
        let mut h: u64 = 0xcbf29ce484222325;
        let mut eat = |b: u64| {
            h ^= b;
            h = h.wrapping_mul(0x100000001b3);
        };
        for p in &self.xy {
            eat(p[0].to_bits());
            eat(p[1].to_bits());
        }
        for &l in &self.labels {
            eat(l as u64);
        }
        for &c in self.clusters.iter().flatten() {
            eat(c as u64 ^ 0x5555);
        }
        for b in self.title.bytes() {
            eat(b as u64);
        }
        format!("nsis{:012x}", h & 0xffff_ffff_ffff)
    }

    /// The self-contained HTML fragment.
    pub fn to_html(&self) -> Result<String> {
        let id = self.id();
        let (w, h) = self.size;
        let (true_cols, true_legend) = label_palette(&self.labels, &self.names, "class ");
        let clusters = self.clusters.as_ref();
        let (clu_cols, clu_legend) = match clusters {
            Some(c) => label_palette(c, &[], "cluster "),
            None => (Vec::new(), Vec::new()),
        };
        let legend_w = true_legend
            .iter()
            .chain(&clu_legend)
            .map(|(n, _)| n.chars().count() as f64 * 6.6 + 30.0)
            .fold(90.0, f64::max)
            .min(200.0);
        let (x0, y0) = (58.0, if self.title.is_empty() { 14.0 } else { 38.0 });
        let x1 = w as f64 - legend_w - 20.0;
        let y1 = h as f64 - if self.xlabel.is_empty() { 30.0 } else { 46.0 };
        let xr = padded_range(self.xy.iter().map(|p| p[0]));
        let yr = padded_range(self.xy.iter().map(|p| p[1]));
        let mx = |x: f64| x0 + (x - xr.0) / (xr.1 - xr.0) * (x1 - x0);
        let my = |y: f64| y1 - (y - yr.0) / (yr.1 - yr.0) * (y1 - y0);
        let font = format!("font-family=\"{FAMILY}\"");
        let mut svg = format!(
            "<svg class=\"ns-plot\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             xmlns=\"http://www.w3.org/2000/svg\" {font}>\n<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\n"
        );
        if !self.title.is_empty() {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
                (x0 + x1) / 2.0,
                escape(&self.title)
            ));
        }
        // Ticks and labels.
        for v in nice_ticks(xr.0, xr.1, 6) {
            let x = mx(v);
            svg.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#000\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10.5\">{}</text>\n",
                y1 + 3.5,
                y1 + 16.0,
                tick_label(v)
            ));
        }
        for v in nice_ticks(yr.0, yr.1, 6) {
            let y = my(v);
            svg.push_str(&format!(
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{x0:.1}\" y2=\"{y:.1}\" stroke=\"#000\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10.5\">{}</text>\n",
                x0 - 3.5,
                x0 - 6.0,
                y + 3.5,
                tick_label(v)
            ));
        }
        if !self.xlabel.is_empty() {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12.5\">{}</text>\n",
                (x0 + x1) / 2.0,
                h as f64 - 8.0,
                escape(&self.xlabel)
            ));
        }
        if !self.ylabel.is_empty() {
            svg.push_str(&format!(
                "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12.5\">{}</text>\n",
                (y0 + y1) / 2.0,
                escape(&self.ylabel)
            ));
        }
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#000\"/>\n<g class=\"ns-points\">\n",
            x1 - x0,
            y1 - y0
        ));
        for (i, p) in self.xy.iter().enumerate() {
            if !(p[0].is_finite() && p[1].is_finite()) {
                continue;
            }
            let name = self.label_name(i);
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.8\" data-i=\"{i}\"><title>#{i}: {}</title></circle>\n",
                mx(p[0]),
                my(p[1]),
                hex(true_cols[i]),
                escape(&name)
            ));
        }
        svg.push_str("</g>\n");
        let legend = |entries: &[(String, [u8; 3])], class: &str, title: &str, hidden: bool| {
            let mut g = format!(
                "<g class=\"{class}\"{}>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\">{}</text>\n",
                if hidden { " display=\"none\"" } else { "" },
                x1 + 14.0,
                y0 + 10.0,
                title
            );
            for (k, (name, c)) in entries.iter().enumerate() {
                let y = y0 + 28.0 + 17.0 * k as f64;
                g.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>\n",
                    x1 + 20.0,
                    hex(*c),
                    x1 + 30.0,
                    y + 4.0,
                    escape(name)
                ));
            }
            g.push_str("</g>\n");
            g
        };
        svg.push_str(&legend(
            &true_legend,
            "ns-legend-labels",
            "true label",
            false,
        ));
        if clusters.is_some() {
            svg.push_str(&legend(&clu_legend, "ns-legend-clusters", "cluster", true));
        }
        svg.push_str("</svg>");

        let js_cols = |cols: &[[u8; 3]]| {
            let v: Vec<String> = cols.iter().map(|c| format!("\"{}\"", hex(*c))).collect();
            format!("[{}]", v.join(","))
        };
        let mut imgs = Vec::with_capacity(self.images.len());
        for img in &self.images {
            imgs.push(format!(
                "\"data:image/png;base64,{}\"",
                base64(&img.to_png_compact()?)
            ));
        }
        let names: Vec<String> = (0..self.xy.len())
            .map(|i| format!("\"{}\"", js_escape(&self.label_name(i))))
            .collect();
        let clu: Vec<String> = clusters
            .map(|c| c.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default();
        let img_px = self
            .images
            .first()
            .map(|i| i.width().max(i.height()) * self.zoom)
            .unwrap_or(0);
        let switch = if clusters.is_some() {
            "<span>colour by</span> <button type=\"button\" data-mode=\"labels\" aria-pressed=\"true\">true labels</button>\
             <button type=\"button\" data-mode=\"clusters\" aria-pressed=\"false\">clusters</button>"
        } else {
            ""
        };
        Ok(format!(
            "<div id=\"{id}\" class=\"ns-iscatter\" style=\"position:relative;display:inline-block;font:12px {FAMILY}\">\n\
<style>#{id} .ns-controls{{display:none;margin:4px 0}} #{id}.ns-live .ns-controls{{display:block}}\
 #{id} button{{font:12px sans-serif;margin-left:4px;padding:2px 8px;border:1px solid #888;background:#f4f4f4;border-radius:3px;cursor:pointer}}\
 #{id} button[aria-pressed=true]{{background:#1f77b4;color:#fff;border-color:#1f77b4}}\
 #{id} .ns-tip{{position:absolute;display:none;pointer-events:none;background:#fff;border:1px solid #999;\
 border-radius:3px;padding:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);text-align:center;z-index:10}}\
 #{id} .ns-tip img{{display:block;image-rendering:pixelated;width:{img_px}px;margin:0 auto}}\
 #{id} circle.ns-hot{{stroke:#000;stroke-width:1.5}}</style>\n\
<div class=\"ns-controls\">{switch}</div>\n{svg}\n\
<div class=\"ns-tip\"><img alt=\"\"/><div class=\"ns-tip-label\"></div></div>\n\
<script>(function(){{\
var root=document.getElementById(\"{id}\");if(!root)return;root.classList.add(\"ns-live\");\
var svg=root.querySelector(\"svg\"),tip=root.querySelector(\".ns-tip\"),timg=tip.querySelector(\"img\"),tlab=tip.querySelector(\".ns-tip-label\");\
var pts=Array.prototype.slice.call(svg.querySelectorAll(\"g.ns-points circle\"));\
var IM=[{imgs}],NM=[{names}],CL=[{clu}],TC={tc},CC={cc},hot=null,mode=\"labels\";\
var P=pts.map(function(c){{return [+c.getAttribute(\"cx\"),+c.getAttribute(\"cy\"),+c.dataset.i];}});\
function show(k,ev){{if(hot)hot.classList.remove(\"ns-hot\");hot=pts[k];hot.classList.add(\"ns-hot\");var i=P[k][2];\
if(IM.length){{timg.src=IM[i];timg.style.display=\"block\";}}else timg.style.display=\"none\";\
tlab.textContent=\"#\"+i+\": \"+NM[i]+(CL.length?\" \\u00b7 cluster \"+(CL[i]<0?\"noise\":CL[i]):\"\");\
var r=root.getBoundingClientRect();tip.style.display=\"block\";\
var x=ev.clientX-r.left+14,y=ev.clientY-r.top+14;if(x+tip.offsetWidth>r.width)x=ev.clientX-r.left-tip.offsetWidth-14;\
tip.style.left=x+\"px\";tip.style.top=y+\"px\";}}\
function hide(){{tip.style.display=\"none\";if(hot)hot.classList.remove(\"ns-hot\");hot=null;}}\
svg.addEventListener(\"mousemove\",function(ev){{var m=svg.getScreenCTM();if(!m)return;var pt=svg.createSVGPoint();pt.x=ev.clientX;pt.y=ev.clientY;\
var q=pt.matrixTransform(m.inverse()),best=-1,bd=144;for(var k=0;k<P.length;k++){{var dx=P[k][0]-q.x,dy=P[k][1]-q.y,d=dx*dx+dy*dy;if(d<bd){{bd=d;best=k;}}}}\
if(best<0)hide();else show(best,ev);}});svg.addEventListener(\"mouseleave\",hide);\
root.querySelectorAll(\"button[data-mode]\").forEach(function(b){{b.addEventListener(\"click\",function(){{mode=b.dataset.mode;\
root.querySelectorAll(\"button[data-mode]\").forEach(function(o){{o.setAttribute(\"aria-pressed\",o===b?\"true\":\"false\");}});\
var cols=mode===\"clusters\"?CC:TC;pts.forEach(function(c,k){{c.setAttribute(\"fill\",cols[P[k][2]]);}});\
var lc=svg.querySelector(\".ns-legend-clusters\"),ll=svg.querySelector(\".ns-legend-labels\");\
if(lc)lc.setAttribute(\"display\",mode===\"clusters\"?\"inline\":\"none\");ll.setAttribute(\"display\",mode===\"clusters\"?\"none\":\"inline\");}});}});\
}})();</script>\n</div>\n",
            imgs = imgs.join(","),
            names = names.join(","),
            clu = clu.join(","),
            tc = js_cols(&true_cols),
            cc = js_cols(&clu_cols),
        ))
    }

    fn label_name(&self, i: usize) -> String {
        let l = self.labels[i];
        usize::try_from(l)
            .ok()
            .and_then(|l| self.names.get(l))
            .cloned()
            .unwrap_or_else(|| l.to_string())
    }

    /// Writes a stand-alone HTML page with the scatter.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let mut r = crate::display::Report::new(if self.title.is_empty() {
            "Interactive scatter"
        } else {
            &self.title
        });
        r.raw(&self.to_html()?);
        r.save(path)
    }

    /// Renders inline in an evcxr notebook as `text/html`.
    pub fn evcxr_display(&self) {
        match self.to_html() {
            Ok(h) => crate::display::evcxr_emit("text/html", &h),
            Err(e) => eprintln!("cannot display interactive scatter: {e}"),
        }
    }
}

fn js_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('<', "\\u003c")
        .replace('\n', "\\n")
}
