//! Figures: every SVG parses as XML with the expected elements, every PNG decodes to the right
//! size and is not blank, a few figures are pinned byte for byte (golden files), the interactive
//! scatter works in headless Chromium, and bad input gives errors.
//!
//! Golden files live in `tests/golden/`; after an intended change to figures, rewrite them with
//! `NEUROSCOPE_BLESS=1 cargo test --test plot` and look at the new ones before committing.

use ndarray::{array, Array2};
use neuroscope::data::{embedded, Dataset};
use neuroscope::plot::{
    Bars, Colormap, Figure, Heatmap, Images, InteractiveScatter, Layout, Lines, Scatter,
};
use std::path::{Path, PathBuf};

/// Seeded points in 4 clusters with labels (no RNG crate needed: a fixed LCG).
fn blobs(n: usize) -> (Array2<f64>, Vec<usize>) {
    let mut s: u64 = 42;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let centres = [(0.0, 0.0), (5.0, 1.0), (1.0, 6.0), (6.0, 6.0)];
    let labels: Vec<usize> = (0..n).map(|i| i % 4).collect();
    let x = Array2::from_shape_fn((n, 2), |(i, j)| {
        let c = centres[labels[i]];
        (if j == 0 { c.0 } else { c.1 }) + 2.0 * next()
    });
    (x, labels)
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG does not parse: {e}"))
}

fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

fn count(doc: &roxmltree::Document, tag: &str) -> usize {
    doc.descendants().filter(|n| n.has_tag_name(tag)).count()
}

/// Decodes a PNG, checks its size, and that it has ink: many non-white pixels and several colours.
fn check_png(png: &[u8], w: u32, h: u32) -> image::RgbImage {
    let img = image::load_from_memory(png).expect("PNG decodes").to_rgb8();
    assert_eq!(img.dimensions(), (w, h));
    let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        non_white > (w * h) as usize / 100,
        "PNG nearly blank ({non_white} non-white pixels)"
    );
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 8, "PNG has only {} colours", colours.len());
    img
}

#[test]
fn scatter_by_class_has_every_point_and_legend_entry() {
    let (x, labels) = blobs(200);
    let names = ["alpha", "beta", "gamma", "delta"];
    let fig = Scatter::new(&x)
        .unwrap()
        .labels(&labels, &names)
        .unwrap()
        .title("Blobs")
        .xlabel("dim 1")
        .ylabel("dim 2")
        .legend_title("class")
        .figure();
    let svg = fig.to_svg().unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    for want in [
        "Blobs", "dim 1", "dim 2", "class", "alpha", "beta", "gamma", "delta",
    ] {
        assert!(
            t.iter().any(|s| s == want),
            "missing text {want:?} in {t:?}"
        );
    }
    // 200 points + 4 legend markers.
    assert_eq!(count(&doc, "circle"), 204);
    check_png(&fig.to_png().unwrap(), 640, 480);
}

#[test]
fn scatter_with_values_draws_a_colour_bar_and_noise_is_grey() {
    let (x, _) = blobs(50);
    let v: Vec<f64> = (0..50).map(|i| i as f64 / 49.0).collect();
    let svg = Scatter::new(&x)
        .unwrap()
        .values(&v, "redness")
        .unwrap()
        .figure()
        .to_svg()
        .unwrap();
    let doc = parse(&svg);
    assert!(texts(&doc).iter().any(|s| s == "redness"));
    assert_eq!(count(&doc, "circle"), 50);
    assert_eq!(
        count(&doc, "image"),
        1,
        "the colour bar is one gradient image"
    );
    // Cluster ids with -1 (noise): a "noise" legend entry in grey.
    let clusters: Vec<i64> = (0..50).map(|i| (i % 3) as i64 - 1).collect();
    let svg = Scatter::new(&x)
        .unwrap()
        .labels(&clusters, &[] as &[&str])
        .unwrap()
        .figure()
        .to_svg()
        .unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    assert!(t.iter().any(|s| s == "noise") && t.iter().any(|s| s == "1"));
    assert!(
        svg.contains("#A0A0A0") || svg.contains("#a0a0a0"),
        "noise is grey"
    );
}

#[test]
fn scatter_3d_is_projected_with_axis_names() {
    let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * (j + 2) * 7919) % 1009) as f64);
    let fig = Scatter::new(&x)
        .unwrap()
        .xlabel("PC1")
        .ylabel("PC2")
        .zlabel("PC3")
        .figure();
    let doc_s = fig.to_svg().unwrap();
    let doc = parse(&doc_s);
    let t = texts(&doc);
    for want in ["PC1", "PC2", "PC3"] {
        assert!(t.iter().any(|s| s == want));
    }
    assert_eq!(count(&doc, "circle"), 300);
    check_png(&fig.to_png().unwrap(), 640, 480);
}

#[test]
fn small_multiples_have_one_panel_title_each() {
    let (x, labels) = blobs(40);
    let layers = ["h1", "h2", "h3", "h4", "h5", "h6"];
    let panels = layers
        .iter()
        .map(|l| {
            Scatter::new(&x)
                .unwrap()
                .labels(&labels, &["a", "b", "c", "d"])
                .unwrap()
                .title(*l)
                .into()
        })
        .collect();
    let fig = Figure::grid(panels, 3).title("t-SNE per layer");
    let (w, h) = fig.dimensions();
    assert_eq!((w, h), (3 * 384, 2 * 288 + 36));
    let svg = fig.to_svg().unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    for want in layers.iter().chain(&["t-SNE per layer"]) {
        assert_eq!(t.iter().filter(|s| s == want).count(), 1, "{want}");
    }
    assert_eq!(count(&doc, "circle"), 6 * (40 + 4));
    check_png(&fig.to_png().unwrap(), w, h);
}

#[test]
fn heatmap_has_tick_labels_colour_bar_and_separators() {
    let groups = [0usize, 0, 0, 1, 1, 2, 2, 2, 2];
    let m = Array2::from_shape_fn(
        (9, 9),
        |(i, j)| if groups[i] == groups[j] { 0.8 } else { -0.2 },
    );
    let fig = Heatmap::new(&m)
        .unwrap()
        .blocks(&groups, &["cats", "dogs", "cars"])
        .unwrap()
        .cmap(Colormap::RdBuR)
        .title("RDM")
        .colorbar_label("r")
        .figure();
    let svg = fig.to_svg().unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    for want in ["RDM", "r", "cats", "dogs", "cars"] {
        assert!(t.iter().any(|s| s == want), "missing {want:?} in {t:?}");
    }
    // Each class name on both axes.
    assert_eq!(t.iter().filter(|s| *s == "dogs").count(), 2);
    // The matrix and the colour bar are images; separators are white rectangles (2 per axis).
    assert_eq!(count(&doc, "image"), 2);
    let white = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#ffffff"))
        .count();
    assert_eq!(white, 4);
    // Diverging map centred on 0: colour-bar ticks are symmetric.
    assert!(
        t.iter().any(|s| s == "-0.5") && t.iter().any(|s| s == "0.5"),
        "{t:?}"
    );
    // Annotated small matrix writes values; a mismatched label count is an error.
    let layers = ["a", "b"];
    let svg = Heatmap::new(&array![[1.0, 0.25], [0.25, 1.0]])
        .unwrap()
        .labels(&layers)
        .unwrap()
        .annotate(true)
        .figure()
        .to_svg()
        .unwrap();
    assert_eq!(svg.matches(">0.25<").count(), 2);
    let err = Heatmap::new(&m)
        .unwrap()
        .labels(&layers)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 9 names"), "{err}");
    check_png(&fig.to_png().unwrap(), 560, 480);
}

#[test]
fn lines_and_bars_show_their_names() {
    let layers = ["features.0", "features.3", "features.6", "classifier.1"];
    let fig = Lines::new()
        .line("PCs for 80%", &[3.0, 9.0, 20.0, 7.0])
        .line("PCs for 90%", &[5.0, 14.0, 31.0, 11.0])
        .markers(true)
        .x_ticks(&layers)
        .hline(10.0, "ten")
        .title("Components")
        .ylabel("components")
        .figure();
    let svg = fig.to_svg().unwrap();
    let doc = parse(&svg);
    let t = texts(&doc);
    for want in layers.iter().chain(&[
        "Components",
        "components",
        "ten",
        "PCs for 80%",
        "PCs for 90%",
    ]) {
        assert!(t.iter().any(|s| s == want), "missing {want:?}");
    }
    assert_eq!(count(&doc, "circle"), 8, "one marker per point");
    check_png(&fig.to_png().unwrap(), 640, 420);

    let bars = Bars::new(&[0.1, -0.4, 2.5])
        .names(&["u0", "u1", "u2"])
        .unwrap()
        .show_values(true)
        .title("fc2")
        .figure();
    let svg = bars.to_svg().unwrap();
    let t = texts(&parse(&svg));
    for want in ["u0", "u1", "u2", "fc2", "2.50", "-0.40"] {
        assert!(t.iter().any(|s| s == want), "missing {want:?} in {t:?}");
    }
    check_png(&bars.to_png().unwrap(), 640, 420);
    assert!(Bars::new(&[1.0]).names(&["a", "b"]).is_err());
    assert!(Lines::new().series("x", &[1.0, 2.0], &[1.0]).is_err());
}

#[test]
fn image_grids_from_datasets_and_tensors() {
    let ds = embedded::mnist();
    let grid = Images::from_dataset(&*ds, &[0, 1, 2, 3, 4, 5])
        .unwrap()
        .title("Digits");
    let svg = grid.figure().to_svg().unwrap();
    let doc = parse(&svg);
    assert_eq!(count(&doc, "image"), 6);
    let t = texts(&doc);
    let names = ds.class_names();
    for i in 0..6 {
        let (_, l) = ds.get(i).unwrap();
        assert!(t.contains(&names[l]), "caption {} missing", names[l]);
    }
    let (w, h) = grid.figure().dimensions();
    check_png(&grid.figure().to_png().unwrap(), w, h);

    // 64 feature maps of one image: an 8 x 8 grid; channel-last bytes; wrong rank is an error.
    let maps = candle_core::Tensor::arange(0f32, 64.0 * 25.0, &candle_core::Device::Cpu)
        .unwrap()
        .reshape((64, 5, 5))
        .unwrap();
    let g = Images::from_tensor(&maps, Layout::Auto)
        .unwrap()
        .scaling(neuroscope::plot::Scaling::PerImage);
    assert_eq!(g.len(), 64);
    let svg = g.figure().to_svg().unwrap();
    assert_eq!(count(&parse(&svg), "image"), 64);
    let bad = candle_core::Tensor::zeros(
        (2, 2, 2, 2, 2),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let err = Images::from_tensor(&bad, Layout::Auto)
        .unwrap_err()
        .to_string();
    assert!(err.contains("N x C x H x W"), "{err}");
}

#[test]
fn same_input_same_bytes_and_png_scale() {
    let (x, labels) = blobs(100);
    let make = || {
        Scatter::new(&x)
            .unwrap()
            .labels(&labels, &["a", "b", "c", "d"])
            .unwrap()
            .title("t")
            .figure()
    };
    assert_eq!(make().to_svg().unwrap(), make().to_svg().unwrap());
    assert_eq!(make().to_png().unwrap(), make().to_png().unwrap());
    let big = make().png_scale(2.0).to_png().unwrap();
    check_png(&big, 1280, 960);
}

#[test]
fn save_picks_the_format_from_the_extension() {
    let dir = std::env::temp_dir().join(format!("ns-plot-{}", std::process::id()));
    let fig = Lines::new().line("y", &[1.0, 2.0]).title("saved").figure();
    fig.save(dir.join("a.svg")).unwrap();
    fig.save(dir.join("a.png")).unwrap();
    fig.save(dir.join("a.html")).unwrap();
    assert!(std::fs::read_to_string(dir.join("a.svg"))
        .unwrap()
        .starts_with("<svg"));
    assert_eq!(&std::fs::read(dir.join("a.png")).unwrap()[1..4], b"PNG");
    assert!(std::fs::read_to_string(dir.join("a.html"))
        .unwrap()
        .contains("<svg"));
    let err = fig.save(dir.join("a.jpg")).unwrap_err().to_string();
    assert!(err.contains(".svg, .png or .html"), "{err}");
    assert!(Scatter::new(&Array2::<f64>::zeros((3, 4)))
        .unwrap_err()
        .to_string()
        .contains("N x 2 or N x 3"));
    let _ = std::fs::remove_dir_all(dir);
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `bytes` with the golden file `name`, or rewrites it under NEUROSCOPE_BLESS=1.
fn golden(name: &str, bytes: &[u8]) {
    let path = golden_dir().join(name);
    if std::env::var_os("NEUROSCOPE_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with NEUROSCOPE_BLESS=1)",
            path.display()
        )
    });
    if want != bytes {
        let got = std::env::temp_dir().join(format!("got-{name}"));
        std::fs::write(&got, bytes).unwrap();
        panic!(
            "{name} changed: {} bytes now vs {} pinned; the new figure is at {}. If the change is \
             intended, rewrite with NEUROSCOPE_BLESS=1 and look at it before committing.",
            bytes.len(),
            want.len(),
            got.display()
        );
    }
}

#[test]
fn golden_figures() {
    let (x, labels) = blobs(120);
    let scatter = Scatter::new(&x)
        .unwrap()
        .labels(&labels, &["alpha", "beta", "gamma", "delta"])
        .unwrap()
        .title("Golden scatter")
        .xlabel("x")
        .ylabel("y")
        .figure();
    golden("scatter.svg", scatter.to_svg().unwrap().as_bytes());
    golden("scatter.png", &scatter.to_png().unwrap());
    let m = Array2::from_shape_fn((6, 6), |(i, j)| 1.0 - (i as f64 - j as f64).abs() / 6.0);
    let heat = Heatmap::new(&m)
        .unwrap()
        .labels(&["c1", "c2", "c3", "c4", "fc1", "fc2"])
        .unwrap()
        .annotate(true)
        .title("Golden heatmap")
        .colorbar_label("rho")
        .figure();
    golden("heatmap.svg", heat.to_svg().unwrap().as_bytes());
    golden("heatmap.png", &heat.to_png().unwrap());
    let lines = Lines::new()
        .line("loss", &[2.3, 1.1, 0.6, 0.4, 0.35])
        .line("accuracy", &[0.1, 0.6, 0.85, 0.9, 0.93])
        .markers(true)
        .title("Golden lines")
        .xlabel("epoch")
        .figure();
    golden("lines.svg", lines.to_svg().unwrap().as_bytes());
    golden("lines.png", &lines.to_png().unwrap());
}

#[test]
fn interactive_scatter_static_content() {
    let ds = embedded::fashion_mnist().subset(40, 1).unwrap();
    let (x, _) = blobs(40);
    let clusters: Vec<i64> = (0..40).map(|i| (i % 5) as i64 - 1).collect();
    let s = InteractiveScatter::from_dataset(&x, &ds)
        .unwrap()
        .clusters(&clusters)
        .unwrap()
        .title("hover me");
    let html = s.to_html().unwrap();
    assert_eq!(html, s.to_html().unwrap(), "same bytes twice");
    // The SVG inside parses, with one circle per point plus both legends.
    let start = html.find("<svg").unwrap();
    let end = html.find("</svg>").unwrap() + 6;
    let doc = parse(&html[start..end]);
    let points = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("data-i").is_some())
        .count();
    assert_eq!(points, 40);
    assert_eq!(html.matches("data:image/png;base64,").count(), 40);
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no network resources"
    );
    // Wrong lengths are errors.
    assert!(s.clone().clusters(&[1i64, 2]).is_err());
    assert!(
        InteractiveScatter::from_dataset(&x, &embedded::mnist().subset(3, 0).unwrap()).is_err()
    );
}

/// Runs scripts/browser_check.py; `None` when Chromium is missing and not required.
fn browser(args: &[&str]) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/browser_check.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .output();
    let required = std::env::var_os("NEUROSCOPE_REQUIRE_BROWSER").is_some();
    let out = match out {
        Ok(o) => o,
        Err(e) if !required => {
            eprintln!("SKIPPED browser test: cannot run python3 ({e})");
            return None;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    if out.status.code() == Some(2) && !required {
        eprintln!(
            "SKIPPED browser test: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "browser check printed {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser check failed: {v}");
    Some(v)
}

#[test]
fn interactive_scatter_in_headless_chromium() {
    let ds = embedded::fashion_mnist().subset(200, 3).unwrap();
    let (x, _) = blobs(200);
    let clusters: Vec<i64> = (0..200).map(|i| (i % 4) as i64).collect();
    let dir = std::env::temp_dir().join(format!("ns-browser-{}", std::process::id()));
    let page = dir.join("scatter.html");
    InteractiveScatter::from_dataset(&x, &ds)
        .unwrap()
        .clusters(&clusters)
        .unwrap()
        .title("browser test")
        .save(&page)
        .unwrap();
    let idx = 17;
    let label = ds.class_names()[ds.get(idx).unwrap().1].clone();
    let Some(seen) = browser(&["scatter", page.to_str().unwrap(), &idx.to_string(), &label]) else {
        return;
    };
    assert_eq!(seen["ok"], true, "{seen}");
    assert_eq!(seen["tip_after"], "block");
    assert!(seen["tip_label"]
        .as_str()
        .unwrap()
        .starts_with(&format!("#{idx}: {label}")));
    assert_ne!(seen["fill_before"], seen["fill_after"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tour_page_renders_in_chromium() {
    let dir = std::env::temp_dir().join(format!("ns-tour-shot-{}", std::process::id()));
    let page = neuroscope::tour::run(&dir).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    // Every figure kind of the seeds is on the page.
    for want in [
        "t-SNE of the input and of h1..h6",
        "Cumulative variance explained",
        "Components for 80 %",
        "Correlation between digits, ordered by class",
        "Second-order RSA",
        "conv1 filters",
        "h1 feature maps",
        "h5 activations",
        "ns-iscatter",
        "images per class",
        "Training the seed-3 network",
        "Training history",
        "conv1 filters after one epoch",
        "Confident and correct",
    ] {
        assert!(html.contains(want), "tour lacks {want:?}");
    }
    let shot = dir.join("shot.png");
    let Some(seen) = browser(&[
        "screenshot",
        page.to_str().unwrap(),
        shot.to_str().unwrap(),
        "1150",
        "1000",
    ]) else {
        return;
    };
    let img = image::open(&shot).expect("screenshot decodes").to_rgb8();
    let (w, h) = img.dimensions();
    assert!(w <= 1200, "page wider than its layout: {w} px");
    assert!(
        h > 5000 && seen["page_height"].as_u64().unwrap() > 5000,
        "page too short: {h}"
    );
    // Rendered figures: plenty of non-white pixels and many colours, in the lower half too
    // (where the figures are).
    let lower = image::imageops::crop_imm(&img, 0, h / 2, w, h / 2).to_image();
    let ink = lower.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        ink > (w * h / 2) as usize / 20,
        "lower half nearly blank ({ink} px)"
    );
    let mut colours: Vec<[u8; 3]> = lower.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 200, "only {} colours", colours.len());
    let _ = std::fs::remove_dir_all(dir);
}
