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
/// let html = std::fs::read_to_string(page).unwrap();
/// assert!(html.contains("Ankle boot") && html.contains("PCs for 80%") && html.contains("adjusted_rand"));
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
    let rec = models_section(&mut report)?;
    analysis_section(&mut report, &rec)?;
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

fn models_section(report: &mut Report) -> Result<crate::record::Recording> {
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
    Ok(rec)
}

/// Seeds 1-3's analyses on the recording above: dimensionality per layer, RSA between layers,
/// interdim's reduce -> cluster -> score chain, and a t-SNE of the last layer.
fn analysis_section(report: &mut Report, rec: &crate::record::Recording) -> Result<()> {
    use crate::analysis::{
        cluster::{KMeans, Method},
        dimensionality,
        embed::Tsne,
        metrics,
        pca::Pca,
        rsa, Analysis, Reducer,
    };
    report.heading("Analysis: dimensionality, RSA, clusters, t-SNE");
    let mut rows = Vec::new();
    for l in &rec.layers {
        let m = rec.matrix(l)?;
        let p = Pca::new().fit(&m)?;
        rows.push(vec![
            l.clone(),
            p.n_components_for(0.8)
                .map_or("-".into(), |k| k.to_string()),
            format!(
                "{:.1}",
                dimensionality::participation_ratio_from(
                    p.explained_variance().as_slice().unwrap_or(&[])
                )?
            ),
            format!("{:.1}", dimensionality::two_nn(&m)?),
        ]);
    }
    report.paragraph("Dimensionality of each layer over the 500 digits: PCA components needed for 80% of the total variance (seed 2), participation ratio, TwoNN intrinsic dimension.");
    report.table(
        &["layer", "PCs for 80%", "participation ratio", "TwoNN"],
        &rows,
    );
    let r = rsa::Rsa::of_recording(rec, rsa::Metric::Pearson, rsa::Correlation::Spearman)?;
    let mut header = vec!["second order"];
    header.extend(r.layers.iter().map(|s| s.as_str()));
    let so_rows: Vec<Vec<String>> = r
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            std::iter::once(l.clone())
                .chain((0..r.layers.len()).map(|j| format!("{:.3}", r.second_order[[i, j]])))
                .collect()
        })
        .collect();
    report.paragraph("RSA (seed 2): Pearson first-order matrices over the digits, Spearman correlation of their lower triangles between layers.");
    report.table(&header, &so_rows);
    let mut a = Analysis::from_recording(rec)?.seed(0);
    a.reduce(Reducer::Pca(10))?
        .cluster(Method::KMeans(KMeans::new(10)))?
        .score()?;
    report.paragraph("interdim's chain (seed 1) per layer: PCA to 10 components, k-means with 10 clusters (seed 0), scores against the digit labels and of the embedding.");
    report.raw(&a.to_html());
    let last = rec.layers.last().cloned().unwrap_or_default();
    let m = rec.matrix(&last)?;
    let t = Tsne::new().seed(0).fit(&m)?;
    let labels = rec.labels.clone().unwrap_or_default();
    report.paragraph(&format!(
        "t-SNE of {last} (perplexity 30, Barnes-Hut, seed 0): final KL {:.3}, trustworthiness (k=10) {:.3}, 5-NN accuracy of the labels {:.3}. (Scatter plots arrive with the figures module.)",
        t.kl_divergence(),
        metrics::trustworthiness(&m, t.embedding(), 10)?,
        metrics::knn_accuracy(t.embedding(), &labels, 5)?
    ));
    Ok(())
}

/// Rows of examples with one class per column: row r holds the r-th example of every class.
fn transpose(per_class: Vec<Vec<usize>>) -> Vec<usize> {
    let rows = per_class.iter().map(Vec::len).max().unwrap_or(0);
    (0..rows)
        .flat_map(|r| per_class.iter().filter_map(move |v| v.get(r).copied()))
        .collect()
}
