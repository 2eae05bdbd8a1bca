//! Figures of representational comparisons: rsatoolbox's model-comparison bar plot, a grid of
//! RDMs, an MDS map of RDMs, and the accuracy of linear probes over layers.

use super::{Bars, Figure, Heatmap, Lines, Panel, Scatter};
use crate::analysis::probe::ProbeScore;
use crate::analysis::reduce::Mds;
use crate::analysis::rsa::{compare, Comparison, ModelComparison, Rdms};
use crate::{Error, Result};
use ndarray::Array2;

/// rsatoolbox's `plot_model_comparison`: one bar per model (its mean evaluation), an error bar
/// for the `level` confidence interval (t-based, as rsatoolbox's default) and the noise ceiling
/// as a grey band from its lower to its upper bound.
///
/// ```
/// use ndarray::Array2;
/// use neuroscope::analysis::rsa::{Bootstrap, Comparison, Rdms};
/// let group = |i: usize| i / 3;
/// let truth = Array2::from_shape_fn((6, 6), |(i, j)| if group(i) == group(j) { 0.0 } else { 1.0 });
/// let data: Vec<Array2<f64>> = (1..4).map(|s| Array2::from_shape_fn((6, 6), |(i, j)| {
///     if i == j { 0.0 } else { truth[[i, j]] + 0.2 * (((i + j) * s % 5) as f64) }
/// })).collect();
/// let models = [("groups", Rdms::from_matrices(&[truth])?)];
/// let result = Bootstrap::new(Comparison::Corr).samples(100).fit(&models, &Rdms::from_matrices(&data)?)?;
/// let svg = neuroscope::plot::model_comparison(&result, 0.95)?.figure().to_svg()?;
/// assert!(svg.contains("groups") && svg.contains("noise ceiling"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn model_comparison(result: &ModelComparison, level: f64) -> Result<Bars> {
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::InvalidArgument(format!(
            "confidence level must be between 0 and 1 (0.95 for 95 %), got {level}"
        )));
    }
    let mut bars = Bars::new(&result.means())
        .names(result.models())?
        .errors(&result.ci(level))?
        .title(format!(
            "Model comparison ({}, {:.0} % CI over {} bootstrap samples)",
            result.method().name(),
            level * 100.0,
            result.evaluations().nrows()
        ))
        .ylabel(format!("RDM {}", result.method().name()));
    let (lo, hi) = result.noise_ceiling();
    if lo.is_finite() && hi.is_finite() {
        bars = bars.band(lo, hi, "noise ceiling");
    }
    Ok(bars)
}

/// Every RDM of a set as a heatmap, `columns` per row, each titled (rsatoolbox's `show_rdm`):
/// the conditions' names label the axes when there are at most 30.
///
/// ```
/// use neuroscope::analysis::rsa::Rdms;
/// let r = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])?;
/// let fig = neuroscope::plot::rdm_grid(&r, &["conv1", "fc7"], 2)?;
/// assert!(fig.to_svg()?.contains("fc7"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn rdm_grid<N: AsRef<str>>(rdms: &Rdms, titles: &[N], columns: usize) -> Result<Figure> {
    if titles.len() != rdms.len() {
        return Err(Error::Shape {
            what: "RDM titles".into(),
            expected: format!("one per RDM ({})", rdms.len()),
            got: titles.len().to_string(),
        });
    }
    let mut panels = Vec::with_capacity(rdms.len());
    for (i, t) in titles.iter().enumerate() {
        let mut h = Heatmap::new(&rdms.matrix(i))?
            .title(t.as_ref())
            .colorbar_label(rdms.measure());
        if rdms.n_conditions() <= 30 {
            h = h.labels(rdms.conditions())?;
        }
        panels.push(Panel::from(h));
    }
    Ok(Figure::grid(panels, columns.max(1)))
}

/// An MDS map of RDMs (rsatoolbox's `rdm_comparison_scatterplot` idea): each RDM a point, placed
/// so that distances follow `1 - comparison` between the RDMs. Layers that represent the
/// conditions alike land close together.
///
/// ```
/// use neuroscope::analysis::rsa::{Comparison, Rdms};
/// let r = Rdms::from_vectors(ndarray::array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
///                                           [1.0, 2.0, 3.5, 4.0, 5.0, 6.5],
///                                           [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])?;
/// let s = neuroscope::plot::rdm_mds(&r, &["a", "a'", "reversed"], Comparison::Spearman)?;
/// assert!(s.figure().to_svg()?.contains("reversed"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn rdm_mds<N: AsRef<str>>(rdms: &Rdms, names: &[N], method: Comparison) -> Result<Scatter> {
    if names.len() != rdms.len() || rdms.len() < 3 {
        return Err(Error::InvalidArgument(format!(
            "an MDS map needs 3 or more RDMs and one name per RDM (got {} RDMs, {} names)",
            rdms.len(),
            names.len()
        )));
    }
    let sim = compare(rdms, rdms, method)?;
    let d: Array2<f64> = sim.mapv(|s| (1.0 - s).max(0.0));
    let d = (&d + &d.t()) / 2.0;
    let d = Array2::from_shape_fn(d.dim(), |(i, j)| if i == j { 0.0 } else { d[[i, j]] });
    let emb = Mds::new().fit_dissimilarities(&d)?;
    let labels: Vec<usize> = (0..rdms.len()).collect();
    Ok(Scatter::new(emb.embedding())?
        .labels(&labels, names)?
        .title(format!("RDMs placed by 1 - {}", method.name()))
        .point_size(6.0))
}

/// Held-out accuracy of a linear probe per layer ([`Probe::layers`](crate::analysis::probe::Probe::layers)),
/// with the fold standard deviation as two dashed lines and chance level as a reference line.
///
/// ```
/// use neuroscope::analysis::probe::ProbeScore;
/// let s = |a: f64| ProbeScore { fold_accuracies: vec![a, a + 0.02], not_converged: 0 };
/// let layers = vec![("conv1".to_string(), s(0.4)), ("fc7".to_string(), s(0.9))];
/// let svg = neuroscope::plot::probe_curve(&layers, Some(0.1))?.figure().to_svg()?;
/// assert!(svg.contains("conv1") && svg.contains("chance"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn probe_curve(layers: &[(String, ProbeScore)], chance: Option<f64>) -> Result<Lines> {
    if layers.is_empty() {
        return Err(Error::InvalidArgument("no probe scores to plot".into()));
    }
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    let mean: Vec<f64> = layers.iter().map(|(_, s)| s.mean()).collect();
    let up: Vec<f64> = layers.iter().map(|(_, s)| s.mean() + s.std()).collect();
    let down: Vec<f64> = layers.iter().map(|(_, s)| s.mean() - s.std()).collect();
    let mut l = Lines::new()
        .line("held-out accuracy", &mean)
        .line("± 1 SD over folds", &up)
        .dashed()
        .line("", &down)
        .dashed()
        .markers(true)
        .x_ticks(&names)
        .ylim(0.0, 1.0)
        .title("Linear probe accuracy per layer")
        .ylabel("accuracy");
    if let Some(c) = chance {
        l = l.hline(c, "chance");
    }
    Ok(l)
}
