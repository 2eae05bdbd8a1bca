//! Writes one of every figure type to a folder (SVG and PNG), from the embedded data:
//! `cargo run --release --example figures -- out/figures`.
use ndarray::Array2;
use neuroscope::analysis::{embed::Tsne, pca::Pca};
use neuroscope::data::{embedded, Dataset};
use neuroscope::plot::{
    Bars, Colormap, Figure, Heatmap, Images, InteractiveScatter, Lines, Scaling, Scatter,
};

fn main() -> neuroscope::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/figures".into());
    let ds = embedded::fashion_mnist().subset(300, 0)?;
    let names = ds.class_names();
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for i in 0..ds.len() {
        let (img, l) = ds.get(i)?;
        x.extend_from_slice(img.data());
        labels.push(l);
    }
    let x = Array2::from_shape_vec((ds.len(), 784), x).unwrap();
    let pcs = Pca::new().n_components(3).fit_transform(&x)?.1;
    let emb = Tsne::new().seed(0).fit(&x)?.into_embedding();
    let save = |name: &str, f: Figure| -> neuroscope::Result<()> {
        f.save(format!("{out}/{name}.svg"))?;
        f.save(format!("{out}/{name}.png"))
    };
    save(
        "scatter_labels",
        Scatter::new(&emb)?
            .labels(&labels, &names)?
            .title("t-SNE of Fashion-MNIST pixels")
            .xlabel("t-SNE 1")
            .ylabel("t-SNE 2")
            .legend_title("class")
            .figure(),
    )?;
    let ink: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|r| r.mean().unwrap() as f64)
        .collect();
    save(
        "scatter_values",
        Scatter::new(&emb)?
            .values(&ink, "mean ink")?
            .title("coloured by mean ink")
            .xlabel("t-SNE 1")
            .ylabel("t-SNE 2")
            .figure(),
    )?;
    save(
        "scatter_3d",
        Scatter::new(&pcs)?
            .labels(&labels, &names)?
            .title("PCA, 3 components")
            .xlabel("PC1")
            .ylabel("PC2")
            .zlabel("PC3")
            .figure(),
    )?;
    let mut order: Vec<usize> = (0..60).collect();
    order.sort_by_key(|&i| labels[i]);
    let sub = x.select(ndarray::Axis(0), &order);
    let corr = neuroscope::analysis::rsa::correlate_rows(
        &sub.mapv(|v| v as f64),
        neuroscope::analysis::rsa::Correlation::Pearson,
    )?;
    let groups: Vec<usize> = order.iter().map(|&i| labels[i]).collect();
    save(
        "heatmap_blocks",
        Heatmap::new(&corr)?
            .blocks(&groups, &names)?
            .cmap(Colormap::RdBuR)
            .title("Pearson r between images, by class")
            .colorbar_label("r")
            .figure(),
    )?;
    let layers = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"];
    let m = Array2::from_shape_fn((7, 7), |(i, j)| 1.0 - (i as f64 - j as f64).abs() / 7.0);
    save(
        "heatmap_layers",
        Heatmap::new(&m)?
            .labels(&layers)?
            .annotate(true)
            .title("Second-order RSA (Spearman)")
            .colorbar_label("rho")
            .figure(),
    )?;
    let fitted = Pca::new().n_components(50).fit(&x)?;
    let ratio = fitted.explained_variance_ratio().to_vec();
    let cum: Vec<f64> = ratio
        .iter()
        .scan(0.0, |s, v| {
            *s += v;
            Some(*s)
        })
        .collect();
    save(
        "lines_variance",
        Lines::new()
            .line("per component", &ratio)
            .line("cumulative", &cum)
            .dashed()
            .hline(0.8, "80 %")
            .title("Variance explained")
            .xlabel("component")
            .ylabel("fraction of variance")
            .figure(),
    )?;
    save(
        "lines_layers",
        Lines::new()
            .line("", &[3.0, 9.0, 21.0, 40.0, 35.0, 12.0, 6.0])
            .markers(true)
            .x_ticks(&[
                "features.0",
                "features.3",
                "features.6",
                "features.8",
                "features.10",
                "classifier.1",
                "classifier.4",
            ])
            .title("Components for 80 %")
            .ylabel("components")
            .figure(),
    )?;
    save(
        "bars",
        Bars::new(&[0.01, 0.02, 0.85, 0.07, 0.0, 0.01, 0.0, 0.02, 0.01, 0.01])
            .names(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])?
            .highlight(2)
            .show_values(true)
            .title("Softmax of a confident prediction")
            .xlabel("class")
            .ylabel("probability")
            .figure(),
    )?;
    save(
        "images",
        Images::from_dataset(&ds, &(0..20).collect::<Vec<_>>())?
            .columns(10)
            .title("Fashion-MNIST sample")
            .figure(),
    )?;
    let maps: Vec<_> = (0..16).map(|i| ds.get(i).unwrap().0).collect();
    save(
        "images_viridis",
        Images::from_images(maps)
            .cmap(Colormap::Viridis)
            .scaling(Scaling::PerImage)
            .title("feature maps")
            .figure(),
    )?;
    let a = Scatter::new(&emb)?
        .labels(&labels, &names)?
        .title("layer A");
    let b = Scatter::new(&emb)?.values(&ink, "ink")?.title("layer B");
    let c = Scatter::new(&pcs.slice(ndarray::s![.., ..2]).to_owned())?
        .labels(&labels, &names)?
        .title("layer C");
    save(
        "small_multiples",
        Figure::grid(vec![a.into(), b.into(), c.into()], 3).title("t-SNE per layer"),
    )?;
    InteractiveScatter::from_dataset(&emb, &ds)?
        .clusters(
            &labels
                .iter()
                .map(|&l| (l % 4) as i64 - 1)
                .collect::<Vec<_>>(),
        )?
        .title("interactive")
        .xlabel("t-SNE 1")
        .ylabel("t-SNE 2")
        .save(format!("{out}/interactive.html"))?;
    println!("wrote {out}");
    Ok(())
}
