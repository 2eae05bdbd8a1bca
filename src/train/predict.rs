//! Predictions: class probabilities, predicted vs true labels, top-k with class names, and the
//! confident-correct / unsure-wrong examples workflow 4 compares.

use crate::data::{loader::make_batch, Dataset};
use crate::models::{self, Model};
use crate::{Error, Result};
use candle_core::DType;

/// The 1000 ImageNet-1k class names in torchvision's order (`weights.meta["categories"]`).
///
/// ```
/// let names = neuroscope::train::predict::imagenet_classes();
/// assert_eq!((names.len(), names[0], names[999]), (1000, "tench", "toilet tissue"));
/// ```
pub fn imagenet_classes() -> Vec<&'static str> {
    include_str!("../data/imagenet_classes.txt")
        .lines()
        .collect()
}

/// Class names for a model's outputs: the dataset's when it has them, ImageNet's for
/// 1000-way torchvision networks, numbers otherwise.
pub fn class_names_for(model: &Model, dataset_names: &[String]) -> Vec<String> {
    if !dataset_names.is_empty() {
        return dataset_names.to_vec();
    }
    match model.arch() {
        "mnist_cnn" => crate::data::embedded::MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "fashion_cnn" => crate::data::embedded::FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "cifar_cnn" => crate::data::cifar::CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        _ => imagenet_classes().into_iter().map(String::from).collect(),
    }
}

/// One sample's prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Index of the sample in the dataset.
    pub index: usize,
    /// The true label.
    pub label: usize,
    /// The most probable class.
    pub predicted: usize,
    /// Its probability.
    pub confidence: f64,
    /// Every class's probability (softmax of the output).
    pub probabilities: Vec<f64>,
}

impl Prediction {
    /// True when the prediction is the label.
    pub fn correct(&self) -> bool {
        self.predicted == self.label
    }
    /// The `k` most probable classes with their probabilities, best first.
    pub fn top_k(&self, k: usize) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self.probabilities.iter().copied().enumerate().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

/// Predictions for a dataset, with the class names to print them.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// One per sample, in dataset order.
    pub items: Vec<Prediction>,
    /// Names of the classes.
    pub class_names: Vec<String>,
}

impl Predictions {
    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        self.items.iter().filter(|p| p.correct()).count() as f64 / self.items.len().max(1) as f64
    }

    /// The `n` correct predictions with the highest confidence (workflow 4's "confident").
    pub fn confident_correct(&self, n: usize) -> Vec<&Prediction> {
        let mut v: Vec<&Prediction> = self.items.iter().filter(|p| p.correct()).collect();
        v.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.index.cmp(&b.index))
        });
        v.truncate(n);
        v
    }

    /// The `n` wrong predictions with the lowest confidence (workflow 4's "unsure"); when the
    /// model makes fewer mistakes, the least confident predictions overall fill the list.
    pub fn unsure_wrong(&self, n: usize) -> Vec<&Prediction> {
        let mut wrong: Vec<&Prediction> = self.items.iter().filter(|p| !p.correct()).collect();
        wrong.sort_by(|a, b| {
            a.confidence
                .total_cmp(&b.confidence)
                .then(a.index.cmp(&b.index))
        });
        if wrong.len() < n {
            let mut rest: Vec<&Prediction> = self.items.iter().filter(|p| p.correct()).collect();
            rest.sort_by(|a, b| {
                a.confidence
                    .total_cmp(&b.confidence)
                    .then(a.index.cmp(&b.index))
            });
            wrong.extend(rest);
        }
        wrong.truncate(n);
        wrong
    }

    /// `"Ankle boot (0.93), Sneaker (0.05), Sandal (0.01)"` for sample `i`.
    pub fn describe(&self, i: usize, k: usize) -> String {
        let Some(p) = self.items.get(i) else {
            return String::new();
        };
        p.top_k(k)
            .iter()
            .map(|(c, pr)| {
                format!(
                    "{} ({pr:.2})",
                    self.class_names
                        .get(*c)
                        .cloned()
                        .unwrap_or_else(|| c.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The confusion matrix (rows: true label, columns: predicted).
    pub fn confusion(&self) -> ndarray::Array2<f64> {
        let k = self.class_names.len().max(
            self.items
                .iter()
                .map(|p| p.label.max(p.predicted) + 1)
                .max()
                .unwrap_or(0),
        );
        let mut m = ndarray::Array2::zeros((k, k));
        for p in &self.items {
            m[[p.label, p.predicted]] += 1.0;
        }
        m
    }
}

/// Runs `model` (eval mode, its default transform) over `dataset` and turns its outputs into
/// probabilities (softmax; a model that ends in log-softmax gives the same numbers).
///
/// ```
/// use neuroscope::{data::{embedded, Dataset}, models::{self, Weights}, train::predict};
/// let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// let p = predict(&net, &embedded::mnist().take(20), 10)?;
/// assert_eq!(p.items.len(), 20);
/// assert!((p.items[0].probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-4);
/// assert_eq!(p.confident_correct(3).len().max(p.unsure_wrong(3).len()), 3);
/// println!("{}", p.describe(0, 3));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn predict<D: Dataset + ?Sized>(
    model: &Model,
    dataset: &D,
    batch_size: usize,
) -> Result<Predictions> {
    if dataset.is_empty() {
        return Err(Error::InvalidArgument(
            "cannot predict on an empty dataset".into(),
        ));
    }
    let tf = models::default_transform(model.arch());
    let mut items = Vec::with_capacity(dataset.len());
    let n = dataset.len();
    for start in (0..n).step_by(batch_size.max(1)) {
        let batch = make_batch(
            dataset,
            &tf,
            start..(start + batch_size.max(1)).min(n),
            model.device(),
        )?;
        let out = model.forward(&batch.images)?;
        let p = candle_nn::ops::softmax(&out, candle_core::D::Minus1)?
            .to_dtype(DType::F64)?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec2::<f64>()?;
        for ((row, &label), &index) in p.into_iter().zip(&batch.labels).zip(&batch.indices) {
            let (predicted, confidence) =
                row.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (k, v)| if v > b.1 { (k, v) } else { b },
                    );
            items.push(Prediction {
                index,
                label,
                predicted,
                confidence,
                probabilities: row,
            });
        }
    }
    Ok(Predictions {
        items,
        class_names: class_names_for(model, &dataset.class_names()),
    })
}
