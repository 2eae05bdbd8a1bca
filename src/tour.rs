//! The guided tour: `neuroscope tour --out DIR` writes `DIR/index.html`, a report built from
//! the embedded data alone, so a fresh clone shows real output without a network. It grows as
//! the crate does (models, recordings, analyses).

use crate::data::{embedded, Dataset};
use crate::display::Report;
use crate::models::{self, Weights};
use crate::plot::{
    Bars, Colormap, Figure, Heatmap, Images, InteractiveScatter, Layout, Lines, Scaling, Scatter,
};
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
    let (net, rec) = models_section(&mut report)?;
    let computed = analysis_section(&mut report, &rec)?;
    figures_section(&mut report, &net, &rec, &computed)?;
    let trained = training_section(&mut report)?;
    featvis_section(&mut report, &trained)?;
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
    let counts_f: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    let hist = Bars::new(&counts_f)
        .names(&names)?
        .title(format!("{}: images per class", ds.name()))
        .xlabel("class")
        .ylabel("images");
    report.raw(&hist.figure().to_html()?);
    let indices: Vec<usize> = transpose(ds.first_per_class(PER_CLASS)?);
    let grid = Images::from_dataset(ds, &indices)?
        .columns(names.len())
        .title(format!(
            "{}: the first {PER_CLASS} images of each class",
            ds.name()
        ));
    report.raw(&grid.figure().to_html()?);
    Ok(())
}

/// Workflow 5 on the network trained above: what input makes each conv2 channel fire, then
/// Lucent's regularised recipe on AlexNet (random weights here: pretrained ones cannot be
/// downloaded offline, so the picture shows the method, not ImageNet features).
fn featvis_section(report: &mut Report, trained: &models::Model) -> Result<()> {
    use crate::featvis::{FeatVis, Objective};
    report.heading("Activation maximisation (workflow 5)");
    let vis = FeatVis::channels("conv2", 0..16)
        .lr(0.05)
        .steps(30)
        .seed(0)
        .progress(false)
        .run(trained)?;
    let h = &vis.history[0];
    report.paragraph(&format!(
        "The first 16 channels of conv2 of the network trained above, optimised together in one \
         batch from grey noise (Adam lr 0.05, 30 steps, seed 0). Channel 0's mean activation went \
         from {:.3} to {:.3}; its best image is from step {}.",
        h.mean[0],
        h.mean[h.mean.len() - 1],
        vis.best_step[0] + 1
    ));
    report.raw(&vis.figure().to_html()?);
    report.raw(&vis.history_figure(0)?.to_html()?);
    report.raw(&vis.activations_figure(0)?.to_html()?);
    let alexnet = models::load(
        "alexnet",
        &Weights::Random { seed: 0 },
        &crate::device::Device::Cpu,
    )?;
    let lucent = FeatVis::lucent(Objective::channel("features.10", 0))
        .size(96)
        .steps(48)
        .seed(0)
        .progress(false)
        .run(&alexnet)?;
    report.paragraph(&format!(
        "Lucent's recipe (FFT parameterisation, decorrelated colour, jitter/scale/rotation, lr 0.05) \
         for AlexNet features.10 channel 0, seeded random weights, 96 px, 48 of Lucent's 512 steps: \
         loss {:.4} at step {}.",
        lucent.best_loss[0],
        lucent.best_step[0] + 1
    ));
    report.raw(&lucent.figure().to_html()?);
    Ok(())
}

fn models_section(report: &mut Report) -> Result<(models::Model, crate::record::Recording)> {
    report.heading("Models: names, summaries, recordings");
    report.paragraph(&format!(
        "Architectures with PyTorch's module names: {}. Below, three of them with seeded random weights \
         (Weights::Random {{ seed: 0 }}): a small CNN, AlexNet and a vision transformer, whose every block's \
         attention probabilities are recordable too (encoder.layers.encoder_layer_K.self_attention.attn_weights); \
         load torchvision weights with Weights::File(\"model.pth\").",
        models::ARCHS.join(", ")
    ));
    let device = crate::device::Device::Cpu;
    for arch in ["mnist_cnn", "alexnet", "vit_b_16"] {
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
        "Workflow 3's taps h1..h6 recorded for 500 seeded random MNIST digits (untrained network):",
    );
    report.table(&["layer", "recorded", "mean", "positive"], &rows);
    Ok((net, rec))
}

/// Workflows 1-3's analyses on the recording above: dimensionality per layer, RSA between layers,
/// interdim's reduce -> cluster -> score chain, and a t-SNE of the last layer.
/// What the analysis section computed that the figures draw again (not computed twice).
struct Computed {
    /// Per recorded layer: PCA's explained variance ratios and the components for 80 %.
    pca: Vec<(Vec<f64>, Option<usize>)>,
    /// RSA over all recorded layers (first-order matrices and the second order).
    rsa: crate::analysis::rsa::Rsa,
    /// t-SNE of the last recorded layer (seed 0).
    last_tsne: ndarray::Array2<f64>,
}

fn analysis_section(report: &mut Report, rec: &crate::record::Recording) -> Result<Computed> {
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
    let mut pca = Vec::new();
    for l in &rec.layers {
        let m = rec.matrix(l)?;
        let p = Pca::new().fit(&m)?;
        pca.push((
            p.explained_variance_ratio().to_vec(),
            p.n_components_for(0.8),
        ));
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
    report.paragraph("Dimensionality of each layer over the 500 digits: PCA components needed for 80% of the total variance (workflow 2), participation ratio, TwoNN intrinsic dimension.");
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
    report.paragraph("RSA (workflow 2): Pearson first-order matrices over the digits, Spearman correlation of their lower triangles between layers.");
    report.table(&header, &so_rows);
    let mut a = Analysis::from_recording(rec)?.seed(0);
    a.reduce(Reducer::pca(10))?
        .cluster(Method::KMeans(KMeans::new(10)))?
        .score()?;
    report.paragraph("interdim's chain (workflow 1) per layer: PCA to 10 components, k-means with 10 clusters (seed 0), scores against the digit labels and of the embedding.");
    report.raw(&a.to_html());
    let last = rec.layers.last().cloned().unwrap_or_default();
    let m = rec.matrix(&last)?;
    let t = Tsne::new().seed(0).fit(&m)?;
    let labels = rec.labels.clone().unwrap_or_default();
    report.paragraph(&format!(
        "t-SNE of {last} (perplexity 30, Barnes-Hut, seed 0): final KL {:.3}, trustworthiness (k=10) {:.3}, 5-NN accuracy of the labels {:.3}. Its scatter, and every layer's, follow in the figures section.",
        t.kl_divergence(),
        metrics::trustworthiness(&m, t.embedding(), 10)?,
        metrics::knn_accuracy(t.embedding(), &labels, 5)?
    ));
    Ok(Computed {
        pca,
        rsa: r,
        last_tsne: t.into_embedding(),
    })
}

/// The workflows' figures on the recording: workflow 3's t-SNE of the input and every layer, workflow 1's
/// interactive scatter with clusters, workflow 2's variance curves, components for 80 %, per-layer
/// matrices ordered by class and the second-order matrix, workflow 4's filters, feature maps and
/// fully-connected activations of a confident and an unsure prediction.
fn figures_section(
    report: &mut Report,
    net: &models::Model,
    rec: &crate::record::Recording,
    computed: &Computed,
) -> Result<()> {
    use crate::analysis::{cluster::KMeans, embed::Tsne, pca::Pca};
    use ndarray::{Array2, Axis};
    report.heading("Figures");
    let ds = embedded::mnist().subset(500, 0)?;
    let names = ds.class_names();
    let labels = rec.labels.clone().unwrap_or_default();
    let mut pixels = Vec::with_capacity(ds.len() * 784);
    for i in 0..ds.len() {
        pixels.extend_from_slice(ds.get(i)?.0.data());
    }
    let input = Array2::from_shape_vec((ds.len(), 784), pixels)
        .map_err(|e| crate::Error::InvalidArgument(e.to_string()))?;
    let mut layers: Vec<(String, Array2<f32>)> = vec![("input".into(), input)];
    for l in &rec.layers {
        layers.push((l.clone(), rec.matrix(l)?));
    }

    // Workflow 3: t-SNE of the input and of every hidden layer, one panel each (the last layer's
    // from the analysis section).
    let mut panels = Vec::new();
    let mut embeddings = Vec::new();
    for (i, (name, m)) in layers.iter().enumerate() {
        let e = if i + 1 == layers.len() {
            computed.last_tsne.clone()
        } else {
            Tsne::new().seed(0).fit(m)?.into_embedding()
        };
        panels.push(
            Scatter::new(&e)?
                .labels(&labels, &names)?
                .title(name.clone())
                .point_size(2.0)
                .into(),
        );
        embeddings.push(e);
    }
    report.raw(
        &Figure::grid(panels, 4)
            .size(1100, 640)
            .title("t-SNE of the input and of h1..h6 (500 digits, untrained network, seed 0)")
            .to_html()?,
    );

    // Workflow 1: the interactive scatter of the last layer, switchable to k-means clusters.
    if let (Some(e), Some((_, h6))) = (embeddings.last(), layers.last()) {
        let clusters = KMeans::new(10).seed(0).fit(h6)?.labels().to_vec();
        report.paragraph("Hover a point to see its digit; the switch recolours by k-means clusters of h6 (k = 10, seed 0).");
        report.raw(
            &InteractiveScatter::from_dataset(e, &ds)?
                .clusters(&clusters)?
                .title("t-SNE of h6: hover for the image")
                .xlabel("t-SNE 1")
                .ylabel("t-SNE 2")
                .to_html()?,
        );
    }

    // Workflow 2: variance explained per layer and components for 80 %.
    let mut curves = Lines::new();
    let mut needed = Vec::new();
    let input_pca = Pca::new().fit(&layers[0].1)?;
    let per_layer = std::iter::once((
        input_pca.explained_variance_ratio().to_vec(),
        input_pca.n_components_for(0.8),
    ))
    .chain(computed.pca.iter().cloned());
    for ((name, _), (ratio, k80)) in layers.iter().zip(per_layer) {
        let cum: Vec<(f64, f64)> = ratio
            .iter()
            .take(50)
            .scan(0.0, |s, v| {
                *s += v;
                Some(*s)
            })
            .enumerate()
            .map(|(k, c)| (k as f64 + 1.0, c))
            .collect();
        curves = curves.points(name.clone(), &cum);
        needed.push(k80.map_or(f64::NAN, |k| k as f64));
    }
    let layer_names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    let curves = curves
        .hline(0.8, "80 %")
        .title("Cumulative variance explained")
        .xlabel("components")
        .ylabel("fraction of total variance");
    let needed = Lines::new()
        .line("", &needed)
        .markers(true)
        .x_ticks(&layer_names)
        .title("Components for 80 % of the variance")
        .ylabel("components");
    report.raw(
        &Figure::grid(vec![curves.into(), needed.into()], 2)
            .size(1100, 420)
            .to_html()?,
    );

    // Workflow 2: first-order matrices over 100 digits ordered by class, then the second order.
    let mut order: Vec<usize> = (0..100.min(labels.len())).collect();
    order.sort_by_key(|&i| (labels[i], i));
    let groups: Vec<usize> = order.iter().map(|&i| labels[i]).collect();
    let mut heat = Vec::new();
    let r = &computed.rsa;
    for (name, full) in r.layers.iter().zip(&r.first_order) {
        // Pearson between two digits does not depend on the others: the 100 x 100 block of
        // the analysis section's 500 x 500 matrix.
        let c = full.select(Axis(0), &order).select(Axis(1), &order);
        heat.push(
            Heatmap::new(&c)?
                .blocks(&groups, &names)?
                .cmap(Colormap::RdBuR)
                .range(-1.0, 1.0)
                .title(name.clone())
                .colorbar_label("Pearson r")
                .into(),
        );
    }
    report.raw(
        &Figure::grid(heat, 3)
            .size(1100, 780)
            .title("Correlation between digits, ordered by class, per layer")
            .to_html()?,
    );
    report.raw(
        &Heatmap::new(&r.second_order)?
            .labels(&r.layers)?
            .annotate(true)
            .title("Second-order RSA: Spearman between layers' matrices")
            .colorbar_label("Spearman rho")
            .figure()
            .to_html()?,
    );

    // Workflow 4: conv1's filters and feature maps of one digit.
    let weights = net
        .state_dict()
        .into_iter()
        .find(|(k, _)| k == "conv1.weight")
        .map(|(_, t)| t);
    if let Some(w) = weights {
        let captions: Vec<String> = (0..w.dims()[0]).map(|i| i.to_string()).collect();
        report.raw(
            &Images::from_tensor(&w, Layout::Auto)?
                .captions(&captions)?
                .scaling(Scaling::PerImage)
                .columns(10)
                .title("conv1 filters (random init, each scaled to its range)")
                .figure()
                .to_html()?,
        );
    }
    let one = embedded::mnist().subset(1, 0)?;
    let maps = crate::record::Recorder::new(net)
        .layers(&["h1"])
        .reduce(crate::record::Reduce::None)
        .progress(false)
        .run(&one, &models::default_transform("mnist_cnn"))?;
    let a = maps
        .data
        .get("h1")
        .ok_or_else(|| crate::Error::InvalidArgument("no h1 recorded".into()))?;
    let t = candle_core::Tensor::from_vec(
        a.iter().copied().collect::<Vec<f32>>(),
        a.shape(),
        &candle_core::Device::Cpu,
    )?;
    report.raw(
        &Images::from_tensor(&t, Layout::Maps)?
            .cmap(Colormap::Viridis)
            .scaling(Scaling::Shared)
            .columns(10)
            .title(format!(
                "h1 feature maps of one '{}' (shared colour scale)",
                names[one.get(0)?.1]
            ))
            .figure()
            .to_html()?,
    );

    // Workflow 4: h5 (fully connected) for the most and least confident predictions.
    let layer = |n: &str| layers.iter().find(|(name, _)| name == n).map(|(_, m)| m);
    if let (Some(h5), Some(h6)) = (layer("h5"), layer("h6")) {
        let conf: Vec<(f64, usize)> = h6
            .rows()
            .into_iter()
            .map(|r| {
                let (k, lp) = r
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (k, &v)| if v > b.1 { (k, v) } else { b },
                    );
                ((lp as f64).exp(), k)
            })
            .collect();
        let idx: Vec<usize> = (0..conf.len()).collect();
        let sure = *idx
            .iter()
            .max_by(|&&a, &&b| conf[a].0.total_cmp(&conf[b].0))
            .unwrap_or(&0);
        let unsure = *idx
            .iter()
            .min_by(|&&a, &&b| conf[a].0.total_cmp(&conf[b].0))
            .unwrap_or(&0);
        let rows = h5.select(Axis(0), &[sure, unsure]).mapv(|v| v as f64);
        let row_names = [
            format!(
                "confident #{sure}: p={:.2} for {}",
                conf[sure].0, conf[sure].1
            ),
            format!(
                "unsure #{unsure}: p={:.2} for {}",
                conf[unsure].0, conf[unsure].1
            ),
        ];
        let act = Heatmap::new(&rows)?
            .row_labels(&row_names)?
            .title("h5 activations (500 units)")
            .xlabel("unit")
            .colorbar_label("activation");
        let probs =
            |i: usize| -> Vec<f64> { h6.row(i).iter().map(|&v| (v as f64).exp()).collect() };
        let b1 = Bars::new(&probs(sure))
            .names(&names)?
            .highlight(conf[sure].1)
            .title(format!("P(class), confident #{sure}"))
            .ylabel("probability");
        let b2 = Bars::new(&probs(unsure))
            .names(&names)?
            .highlight(conf[unsure].1)
            .title(format!("P(class), unsure #{unsure}"))
            .ylabel("probability");
        report.raw(&Figure::single(act.into()).size(1100, 260).to_html()?);
        report.raw(
            &Figure::grid(vec![b1.into(), b2.into()], 2)
                .size(1100, 340)
                .to_html()?,
        );
    }
    Ok(())
}

/// Workflow 3's training on the embedded digits: one epoch, the curves, the trained filters, and
/// workflow 4's confident and unsure predictions.
fn training_section(report: &mut Report) -> Result<models::Model> {
    use crate::train::{predict, split, Optimizer, Train};
    report.heading("Training the seed-3 network on the embedded digits");
    let device = crate::device::Device::Cpu;
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &device)?;
    // 500 held out, as the >= 95 % test in tests/train.rs (one epoch is then 148 steps)
    let (train, test) = split(embedded::mnist(), 500, 0)?;
    let trained = Train::new()
        .optimizer(Optimizer::sgd(0.9))
        .lr(0.01)
        .epochs(1)
        .batch_size(64)
        .seed(1)
        .progress(false)
        .fit(&net, &train, Some(&test))?;
    let e = &trained.history().epochs[0];
    report.paragraph(&format!(
        "SGD (lr 0.01, momentum 0.9), batch 64, one epoch over {} digits, seed 1: train loss {:.4}, \
         test loss {:.4}, test accuracy {:.2}% on {} held-out digits ({:.1} s on this CPU).",
        train.len(),
        e.train_loss,
        e.test_loss.unwrap_or(f64::NAN),
        100.0 * e.test_accuracy.unwrap_or(f64::NAN),
        test.len(),
        e.seconds
    ));
    report.raw(&trained.history().figure().to_html()?);
    if let Some((_, w)) = trained
        .model
        .state_dict()
        .into_iter()
        .find(|(k, _)| k == "conv1.weight")
    {
        report.raw(
            &Images::from_tensor(&w, Layout::Auto)?
                .scaling(Scaling::PerImage)
                .columns(10)
                .title("conv1 filters after one epoch")
                .figure()
                .to_html()?,
        );
    }
    let p = predict(&trained.model, &test, 500)?;
    let mut grid = Images::new().columns(8).title(format!(
        "Confident and correct (top row) vs unsure or wrong (bottom row), test accuracy {:.1}%",
        100.0 * p.accuracy()
    ));
    for q in p.confident_correct(8).into_iter().chain(p.unsure_wrong(8)) {
        let (img, _) = test.get(q.index)?;
        grid = grid.push(
            img,
            format!("{} as {} ({:.2})", q.label, q.predicted, q.confidence),
        );
    }
    report.raw(&grid.figure().to_html()?);
    Ok(trained.model)
}

/// Rows of examples with one class per column: row r holds the r-th example of every class.
fn transpose(per_class: Vec<Vec<usize>>) -> Vec<usize> {
    let rows = per_class.iter().map(Vec::len).max().unwrap_or(0);
    (0..rows)
        .flat_map(|r| per_class.iter().filter_map(move |v| v.get(r).copied()))
        .collect()
}
