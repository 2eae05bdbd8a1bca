//! torchsummary's table (`summary(model, input_size)`) and workflow 3's state-dict listing.
//!
//! The table follows torchsummary: one row per module call in execution order, containers
//! (`Sequential`) left out, `Param #` counting the module's own weight and bias, and the same
//! size estimates (float32, forward + backward activations, batch of one). A `Name` column
//! adds the dotted name that [`Model::record`](super::Model::record) takes.

use super::{layers::Layer, Model};
use crate::display::{escape, evcxr_emit};
use crate::Result;
use candle_core::{DType, Tensor};
use std::fmt;

/// One module call seen during a traced forward pass.
#[derive(Clone, Debug)]
pub(crate) struct Traced {
    name: String,
    kind: &'static str,
    shape: Vec<usize>,
    params: usize,
}

impl Traced {
    pub(crate) fn new(name: &str, layer: &dyn Layer, y: &Tensor) -> Self {
        let params = layer
            .parameters()
            .iter()
            .filter(|(n, _)| matches!(*n, "weight" | "bias"))
            .map(|(_, t)| t.elem_count())
            .sum();
        Traced {
            name: name.to_string(),
            kind: layer.kind(),
            shape: y.dims().to_vec(),
            params,
        }
    }
}

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// `Conv2d-1`, as torchsummary labels rows.
    pub label: String,
    /// The dotted module name.
    pub name: String,
    /// Output shape with the batch dimension as -1.
    pub output_shape: Vec<i64>,
    /// The module's own weight and bias elements.
    pub params: usize,
}

/// A model summary: rows, totals and memory estimates.
///
/// ```
/// use neuroscope::models::{load, Weights};
/// let net = load("mnist_cnn", &Weights::Random { seed: 1 }, &neuroscope::device::Device::Cpu)?;
/// let s = net.summary()?;
/// assert_eq!(s.total_params, 431_080);
/// assert!(s.to_string().contains("Conv2d-1"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Summary {
    /// The architecture.
    pub arch: String,
    /// Input `(channels, height, width)`.
    pub input: (usize, usize, usize),
    /// The rows.
    pub rows: Vec<Row>,
    /// All parameters (buffers such as batch-norm statistics excluded).
    pub total_params: usize,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// For neuroscope's shipped weights: what trained them and their test accuracy.
    pub weights: Option<String>,
}

const MB: f64 = 1024.0 * 1024.0;

impl Summary {
    /// Input size in MB (float32, batch of one).
    pub fn input_mb(&self) -> f64 {
        (self.input.0 * self.input.1 * self.input.2) as f64 * 4.0 / MB
    }
    /// Forward + backward activation size in MB, as torchsummary estimates it.
    pub fn activations_mb(&self) -> f64 {
        let total: i64 = self
            .rows
            .iter()
            .map(|r| r.output_shape.iter().product::<i64>())
            .sum();
        (2.0 * total as f64 * 4.0 / MB).abs()
    }
    /// Parameter size in MB.
    pub fn params_mb(&self) -> f64 {
        self.total_params as f64 * 4.0 / MB
    }

    fn shape_text(shape: &[i64]) -> String {
        format!(
            "[{}]",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The table as HTML, for notebooks and reports.
    pub fn to_html(&self) -> String {
        let mut h = format!(
            "<table class=\"ns-summary\"><caption style=\"font-weight:bold\">{} summary, input {} x {} x {}</caption>\n\
             <tr><th>Layer (type)</th><th>Name</th><th>Output Shape</th><th>Param #</th></tr>\n",
            escape(&self.arch),
            self.input.0,
            self.input.1,
            self.input.2
        );
        for r in &self.rows {
            h.push_str(&format!(
                "<tr><td>{}</td><td style=\"text-align:left\"><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(&r.label),
                escape(&r.name),
                Self::shape_text(&r.output_shape),
                thousands(r.params)
            ));
        }
        h.push_str(&format!(
            "<tr><td colspan=\"4\" style=\"text-align:left\">Total params: {} &middot; Trainable: {} &middot; Non-trainable: {}<br>\
             Input size (MB): {:.2} &middot; Forward/backward pass size (MB): {:.2} &middot; Params size (MB): {:.2} &middot; Estimated Total Size (MB): {:.2}</td></tr></table>\n",
            thousands(self.total_params),
            thousands(self.trainable_params),
            thousands(self.total_params - self.trainable_params),
            self.input_mb(),
            self.activations_mb(),
            self.params_mb(),
            self.input_mb() + self.activations_mb() + self.params_mb()
        ));
        if let Some(w) = &self.weights {
            h.push_str(&format!("<p>Weights: {}</p>\n", escape(w)));
        }
        h
    }

    /// Renders inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.to_html());
    }
}

/// `431080` -> `431,080`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = "-".repeat(96);
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:>20}  {:<32} {:>25} {:>15}",
            "Layer (type)", "Name", "Output Shape", "Param #"
        )?;
        writeln!(f, "{}", "=".repeat(96))?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>20}  {:<32} {:>25} {:>15}",
                r.label,
                r.name,
                Self::shape_text(&r.output_shape),
                thousands(r.params)
            )?;
        }
        writeln!(f, "{}", "=".repeat(96))?;
        writeln!(f, "Total params: {}", thousands(self.total_params))?;
        writeln!(f, "Trainable params: {}", thousands(self.trainable_params))?;
        writeln!(
            f,
            "Non-trainable params: {}",
            thousands(self.total_params - self.trainable_params)
        )?;
        writeln!(f, "{rule}")?;
        writeln!(f, "Input size (MB): {:.2}", self.input_mb())?;
        writeln!(
            f,
            "Forward/backward pass size (MB): {:.2}",
            self.activations_mb()
        )?;
        writeln!(f, "Params size (MB): {:.2}", self.params_mb())?;
        writeln!(
            f,
            "Estimated Total Size (MB): {:.2}",
            self.input_mb() + self.activations_mb() + self.params_mb()
        )?;
        write!(f, "{rule}")?;
        if let Some(w) = &self.weights {
            write!(f, "\nWeights: {w}")?;
        }
        Ok(())
    }
}

/// The state dict as workflow 3 prints it: one `name  [shape]` line per tensor.
///
/// ```
/// use neuroscope::models::{load, Weights};
/// let net = load("mnist_cnn", &Weights::Random { seed: 1 }, &neuroscope::device::Device::Cpu)?;
/// let text = neuroscope::models::summary::state_dict_listing(&net);
/// assert!(text.starts_with("conv1.weight \t [20, 1, 5, 5]"));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn state_dict_listing(model: &Model) -> String {
    model
        .state_dict()
        .iter()
        .map(|(n, t)| format!("{n} \t {:?}", t.dims()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Model {
    /// torchsummary's table for the model's usual input size.
    pub fn summary(&self) -> Result<Summary> {
        let (h, w) = self.input_spec().default_size;
        self.summary_for(self.input_spec().channels, h, w)
    }

    /// torchsummary's table for an input of `channels x height x width`.
    pub fn summary_for(&self, channels: usize, height: usize, width: usize) -> Result<Summary> {
        let x = Tensor::zeros((1, channels, height, width), DType::F32, self.device())?;
        let mut index = 0;
        let rows = self
            .trace(&x)?
            .into_iter()
            .filter(|t| !super::layers::is_sequential(t.kind))
            .map(|t| {
                index += 1;
                let mut shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
                shape[0] = -1;
                Row {
                    label: format!("{}-{index}", t.kind),
                    name: t.name,
                    output_shape: shape,
                    params: t.params,
                }
            })
            .collect();
        let total_params = self
            .state_dict()
            .iter()
            .filter(|(n, _)| {
                !n.ends_with("running_mean")
                    && !n.ends_with("running_var")
                    && !n.ends_with("num_batches_tracked")
            })
            .map(|(_, t)| t.elem_count())
            .sum();
        Ok(Summary {
            arch: self.arch().to_string(),
            input: (channels, height, width),
            rows,
            total_params,
            trainable_params: total_params,
            weights: self.trained().map(|t| t.describe()),
        })
    }
}
