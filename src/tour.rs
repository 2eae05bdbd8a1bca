//! The guided tour: `neuroscope tour --out DIR` writes `DIR/index.html`, a report built from
//! the embedded data alone, so a fresh clone shows real output without a network. It grows as
//! the crate does (models, recordings, analyses).

use crate::data::{embedded, Dataset};
use crate::display::{ImageGrid, Report};
use crate::models::{self, Weights};
use crate::record::{Recorder, Reduce};
use crate::Result;
use std::path::{Path, PathBuf};

/// Examples shown per class in the image grids.
const PER_CLASS: usize = 8;

/// Builds the tour report for the embedded datasets and writes it to `out/index.html`;
/// returns the path written.
///
/// ```
/// let dir = std::env::temp_dir().join("neuroscope-doc-tour");
/// let page = neuroscope::tour::run(&dir).unwrap();
/// assert!(std::fs::read_to_string(page).unwrap().contains("Ankle boot"));
/// ```
pub fn run(out: impl AsRef<Path>) -> Result<PathBuf> {
    let mut report = Report::new("neuroscope tour");
    report.paragraph(&format!(
        "neuroscope {} — device: {}. Everything on this page was computed from the datasets compiled into the crate.",
        env!("CARGO_PKG_VERSION"),
        crate::device::describe(&crate::device::best())
    ));
    for ds in [embedded::mnist(), embedded::fashion_mnist()] {
        dataset_section(&mut report, &*ds)?;
    }
    models_section(&mut report)?;
    let path = out.as_ref().join("index.html");
    report.save(&path)?;
    Ok(path)
}

fn dataset_section<D: Dataset + ?Sized>(report: &mut Report, ds: &D) -> Result<()> {
    let names = ds.class_names();
    let counts = ds.label_counts()?;
    let (img, _) = ds.get(0)?;
    let (c, h, w) = img.shape();
    report.heading(&format!(
        "{} — {} images, {c} x {h} x {w}",
        ds.name(),
        ds.len()
    ));
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (n, k))| vec![i.to_string(), n.clone(), k.to_string()])
        .collect();
    report.table(&["label", "class", "images"], &rows);
    let indices: Vec<usize> = transpose(ds.first_per_class(PER_CLASS)?);
    let grid = ImageGrid::from_dataset(
        ds,
        &indices,
        format!("{}: the first {PER_CLASS} images of each class", ds.name()),
    )?
    .columns(names.len());
    report.raw(&grid.to_html()?);
    Ok(())
}

fn models_section(report: &mut Report) -> Result<()> {
    report.heading("Models: names, summaries, recordings");
    report.paragraph(&format!(
        "Architectures with PyTorch's module names: {}. Below, two of them with seeded random weights \
         (Weights::Random {{ seed: 0 }}); load torchvision weights with Weights::File(\"model.pth\").",
        models::ARCHS.join(", ")
    ));
    let device = crate::device::Device::Cpu;
    for arch in ["mnist_cnn", "alexnet"] {
        let net = models::load(arch, &Weights::Random { seed: 0 }, &device)?;
        report.raw(&net.summary()?.to_html());
    }
    let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &device)?;
    let ds = embedded::mnist().subset(500, 0)?;
    let rec = Recorder::new(&net)
        .layers(&crate::models::mnist_cnn::TAPS)
        .reduce(Reduce::Flatten)
        .progress(false)
        .run(&ds, &models::default_transform("mnist_cnn"))?;
    let rows: Vec<Vec<String>> = rec
        .layers
        .iter()
        .map(|l| {
            let m = rec.matrix(l)?;
            let mean = m.mean().unwrap_or(0.0);
            let active = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len().max(1) as f64;
            Ok(vec![
                l.clone(),
                format!("{} x {}", m.nrows(), m.ncols()),
                format!("{mean:.4}"),
                format!("{:.1}%", 100.0 * active),
            ])
        })
        .collect::<Result<_>>()?;
    report.paragraph(
        "Seed 3's taps h1..h6 recorded for 500 seeded random MNIST digits (untrained network):",
    );
    report.table(&["layer", "recorded", "mean", "positive"], &rows);
    Ok(())
}

/// Rows of examples with one class per column: row r holds the r-th example of every class.
fn transpose(per_class: Vec<Vec<usize>>) -> Vec<usize> {
    let rows = per_class.iter().map(Vec::len).max().unwrap_or(0);
    (0..rows)
        .flat_map(|r| per_class.iter().filter_map(move |v| v.get(r).copied()))
        .collect()
}
