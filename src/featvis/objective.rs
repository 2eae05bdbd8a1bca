//! What an optimised image should excite: a neuron, a channel, a whole layer, a class logit, a
//! direction in a layer's space, or a weighted sum of these (Lucent's `objectives`).

use crate::{Error, Result};
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;

/// One objective, scored per image of a batch; the loss is its negative (workflow 5's `VisLoss`).
///
/// Layer names are the model's module names (`Model::layer_names`); channel indices count
/// from 0. Convolutional outputs are `N x C x H x W`, fully-connected ones `N x F` (there a
/// "channel" or "neuron" is one feature).
///
/// ```
/// use neuroscope::featvis::Objective;
/// let o = Objective::parse("neuron:3:5:7", "conv2").unwrap();
/// assert_eq!(o, Objective::Neuron { layer: "conv2".into(), channel: 3, at: Some((5, 7)) });
/// assert_eq!(Objective::parse("dream", "h4").unwrap().to_string(), "h4 dream");
/// assert!(Objective::parse("channel:x", "h4").unwrap_err().to_string().contains("channel:K"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// One unit: channel `channel` at `at = (row, column)` of the layer's grid, the centre
    /// (`H / 2`, `W / 2`) when `None`, as workflow 5 and Lucent choose it.
    Neuron {
        /// Module name.
        layer: String,
        /// Channel (or feature) index.
        channel: usize,
        /// Position `(row, column)`; the centre when `None`.
        at: Option<(usize, usize)>,
    },
    /// The mean of one channel over all positions (workflow 5's default).
    Channel {
        /// Module name.
        layer: String,
        /// Channel index.
        channel: usize,
    },
    /// The mean of the whole layer (`squared: false`, workflow 5's `layer`) or the mean of its
    /// squares (`squared: true`, DeepDream as Lucid defines it).
    Layer {
        /// Module name.
        layer: String,
        /// Mean of squares rather than mean.
        squared: bool,
    },
    /// One entry of the network's output (a class logit).
    Class {
        /// Output index.
        index: usize,
    },
    /// The cosine similarity between `direction` and the activation vector at each position,
    /// averaged over positions (Lucent's `direction`).
    Direction {
        /// Module name.
        layer: String,
        /// One value per channel.
        direction: Vec<f32>,
    },
    /// A weighted sum of objectives (Lucent's `a + 0.5 * b`).
    Sum(Vec<(f32, Objective)>),
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Objective::Neuron {
                layer,
                channel,
                at: None,
            } => write!(f, "{layer} neuron {channel}"),
            Objective::Neuron {
                layer,
                channel,
                at: Some((y, x)),
            } => write!(f, "{layer} neuron {channel} at ({y}, {x})"),
            Objective::Channel { layer, channel } => write!(f, "{layer} channel {channel}"),
            Objective::Layer {
                layer,
                squared: false,
            } => write!(f, "{layer} layer"),
            Objective::Layer {
                layer,
                squared: true,
            } => write!(f, "{layer} dream"),
            Objective::Class { index } => write!(f, "class {index}"),
            Objective::Direction { layer, .. } => write!(f, "{layer} direction"),
            Objective::Sum(terms) => {
                let parts: Vec<String> = terms.iter().map(|(w, o)| format!("{w} * {o}")).collect();
                write!(f, "{}", parts.join(" + "))
            }
        }
    }
}

impl Objective {
    /// The neuron objective at the centre.
    ///
    /// ```
    /// let o = neuroscope::featvis::Objective::neuron("features.10", 3);
    /// assert_eq!(o.to_string(), "features.10 neuron 3");
    /// ```
    pub fn neuron(layer: &str, channel: usize) -> Objective {
        Objective::Neuron {
            layer: layer.into(),
            channel,
            at: None,
        }
    }

    /// The channel objective (workflow 5's default).
    ///
    /// ```
    /// let o = neuroscope::featvis::Objective::channel("layer2.0.conv3", 0);
    /// assert_eq!(o.to_string(), "layer2.0.conv3 channel 0");
    /// ```
    pub fn channel(layer: &str, channel: usize) -> Objective {
        Objective::Channel {
            layer: layer.into(),
            channel,
        }
    }

    /// The whole-layer mean (workflow 5's `layer`).
    ///
    /// ```
    /// assert_eq!(neuroscope::featvis::Objective::layer("h2").to_string(), "h2 layer");
    /// ```
    pub fn layer(layer: &str) -> Objective {
        Objective::Layer {
            layer: layer.into(),
            squared: false,
        }
    }

    /// DeepDream: the mean of the layer's squares.
    ///
    /// ```
    /// assert_eq!(neuroscope::featvis::Objective::dream("h2").to_string(), "h2 dream");
    /// ```
    pub fn dream(layer: &str) -> Objective {
        Objective::Layer {
            layer: layer.into(),
            squared: true,
        }
    }

    /// A class logit of the network's output.
    ///
    /// ```
    /// assert_eq!(neuroscope::featvis::Objective::class(7).to_string(), "class 7");
    /// ```
    pub fn class(index: usize) -> Objective {
        Objective::Class { index }
    }

    /// `weight * self + other`-style sums: `a.plus(0.5, b)` adds `0.5 * b` to `a`.
    ///
    /// ```
    /// use neuroscope::featvis::Objective;
    /// let o = Objective::channel("h2", 1).plus(0.5, Objective::channel("h2", 2));
    /// assert_eq!(o.to_string(), "1 * h2 channel 1 + 0.5 * h2 channel 2");
    /// ```
    pub fn plus(self, weight: f32, other: Objective) -> Objective {
        let mut terms = match self {
            Objective::Sum(t) => t,
            o => vec![(1.0, o)],
        };
        terms.push((weight, other));
        Objective::Sum(terms)
    }

    /// Parses the CLI's `channel:K`, `neuron:K[:X:Y]`, `layer`, `dream` or `class:K` for `layer`.
    pub fn parse(spec: &str, layer: &str) -> Result<Objective> {
        let bad = || {
            Error::InvalidArgument(format!(
                "objective {spec:?}: expected channel:K, neuron:K, neuron:K:X:Y, layer, dream or class:K"
            ))
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let num = |s: &str| s.parse::<usize>().map_err(|_| bad());
        Ok(match parts.as_slice() {
            ["channel", k] => Objective::channel(layer, num(k)?),
            ["neuron", k] => Objective::neuron(layer, num(k)?),
            ["neuron", k, x, y] => Objective::Neuron {
                layer: layer.into(),
                channel: num(k)?,
                at: Some((num(x)?, num(y)?)),
            },
            ["layer"] => Objective::layer(layer),
            ["dream"] | ["deepdream"] => Objective::dream(layer),
            ["class", k] => Objective::class(num(k)?),
            _ => return Err(bad()),
        })
    }

    /// Like [`parse`](Self::parse), plus the CLI's `channel:A-B`: channels `A` to `B - 1`, one
    /// objective each (one image each, optimised in one batch).
    ///
    /// ```
    /// use neuroscope::featvis::Objective;
    /// let os = Objective::parse_many("channel:0-8", "layer2.0.conv3")?;
    /// assert_eq!(os.len(), 8);
    /// assert_eq!(os[7], Objective::channel("layer2.0.conv3", 7));
    /// assert_eq!(Objective::parse_many("dream", "h4")?.len(), 1);
    /// let e = Objective::parse_many("channel:8-8", "h4").unwrap_err().to_string();
    /// assert!(e.contains("B must be larger than A"), "{e}");
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn parse_many(spec: &str, layer: &str) -> Result<Vec<Objective>> {
        let Some((a, b)) = spec
            .strip_prefix("channel:")
            .and_then(|r| r.split_once('-'))
        else {
            return Ok(vec![Objective::parse(spec, layer)?]);
        };
        let num = |v: &str| {
            v.parse::<usize>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "objective {spec}: expected channel:A-B with numbers"
                ))
            })
        };
        let (a, b) = (num(a)?, num(b)?);
        if b <= a {
            return Err(Error::InvalidArgument(format!(
                "objective {spec}: the range {a}-{b} holds no channel; channel:A-B optimises \
                 channels A to B-1, so B must be larger than A (channel:0-8 is channels 0 to 7)"
            )));
        }
        Ok((a..b).map(|c| Objective::channel(layer, c)).collect())
    }

    /// The module names this objective reads (empty for a class objective).
    pub fn layers(&self) -> Vec<String> {
        match self {
            Objective::Neuron { layer, .. }
            | Objective::Channel { layer, .. }
            | Objective::Layer { layer, .. }
            | Objective::Direction { layer, .. } => vec![layer.clone()],
            Objective::Class { .. } => vec![],
            Objective::Sum(t) => t.iter().flat_map(|(_, o)| o.layers()).collect(),
        }
    }

    /// True when the network's output is needed (the whole forward pass runs).
    pub fn needs_output(&self) -> bool {
        match self {
            Objective::Class { .. } => true,
            Objective::Sum(t) => t.iter().any(|(_, o)| o.needs_output()),
            _ => false,
        }
    }

    /// The activation this objective looks at for image `i` (for a sum, its first term's):
    /// a channel map, a layer, a single unit or a logit. The history's mean/max/min and the
    /// start/end maps are taken from it.
    fn target(
        &self,
        acts: &BTreeMap<String, Tensor>,
        output: Option<&Tensor>,
        i: usize,
    ) -> Result<Tensor> {
        match self {
            Objective::Neuron { layer, channel, at } => {
                let a = image_act(acts, layer, i)?;
                let c = pick_channel(&a, layer, *channel)?;
                if c.rank() == 0 {
                    return Ok(c);
                }
                let (h, w) = c.dims2()?;
                let (y, x) = at.unwrap_or((h / 2, w / 2));
                if y >= h || x >= w {
                    return Err(Error::InvalidArgument(format!(
                        "neuron position ({y}, {x}) is outside {layer}'s {h} x {w} grid (rows 0..{h}, columns 0..{w})"
                    )));
                }
                Ok(c.get(y)?.get(x)?)
            }
            Objective::Channel { layer, channel } => {
                pick_channel(&image_act(acts, layer, i)?, layer, *channel)
            }
            Objective::Layer { layer, .. } => image_act(acts, layer, i),
            Objective::Direction { layer, direction } => {
                let a = image_act(acts, layer, i)?;
                let c = a.dim(0)?;
                if direction.len() != c {
                    return Err(Error::Shape {
                        what: format!("direction for {layer}"),
                        expected: format!("{c} values (one per channel)"),
                        got: format!("{} values", direction.len()),
                    });
                }
                let a = if a.rank() == 1 {
                    a.unsqueeze(1)?
                } else {
                    a.flatten_from(1)?
                };
                let d = Tensor::from_slice(direction, (c, 1), a.device())?.to_dtype(a.dtype())?;
                // Cosine similarity per position (PyTorch's eps 1e-8 on each norm).
                let dot = a.broadcast_mul(&d)?.sum(0)?;
                let na = a.sqr()?.sum(0)?.sqrt()?.clamp(1e-8, f64::MAX)?;
                let nd = d.sqr()?.sum_all()?.sqrt()?.clamp(1e-8, f64::MAX)?;
                Ok(dot.div(&na)?.broadcast_div(&nd)?)
            }
            Objective::Class { index } => {
                let Some(y) = output else {
                    return Err(Error::InvalidArgument(
                        "class objective without output".into(),
                    ));
                };
                let y = y.get(i)?.flatten_all()?;
                let n = y.dim(0)?;
                if *index >= n {
                    return Err(Error::InvalidArgument(format!(
                        "class {index} is out of range: the network has {n} outputs (0..{n})"
                    )));
                }
                Ok(y.get(*index)?)
            }
            Objective::Sum(t) => match t.first() {
                Some((_, o)) => o.target(acts, output, i),
                None => Err(Error::InvalidArgument("an empty sum of objectives".into())),
            },
        }
    }

    /// For image `i`: the score the optimisation maximises (a scalar tensor) and the target
    /// activation the history reads, from one evaluation (the target is the score's input:
    /// computing them separately would do the target's work twice per step).
    pub(crate) fn evaluate(
        &self,
        acts: &BTreeMap<String, Tensor>,
        output: Option<&Tensor>,
        i: usize,
    ) -> Result<(Tensor, Tensor)> {
        if let Objective::Sum(t) = self {
            let mut total: Option<Tensor> = None;
            let mut first: Option<Tensor> = None;
            for (w, o) in t {
                let (s, target) = o.evaluate(acts, output, i)?;
                first.get_or_insert(target);
                let s = (s * *w as f64)?;
                total = Some(match total {
                    Some(acc) => (acc + s)?,
                    None => s,
                });
            }
            return match (total, first) {
                (Some(s), Some(target)) => Ok((s, target)),
                _ => Err(Error::InvalidArgument("an empty sum of objectives".into())),
            };
        }
        let target = self.target(acts, output, i)?;
        let score = match self {
            Objective::Layer { squared: true, .. } => target.sqr()?.mean_all()?,
            _ => target.mean_all()?,
        };
        Ok((score, target))
    }
}

/// Image `i` of a recorded layer.
fn image_act(acts: &BTreeMap<String, Tensor>, layer: &str, i: usize) -> Result<Tensor> {
    let a = acts
        .get(layer)
        .ok_or_else(|| Error::InvalidArgument(format!("layer {layer} was not recorded")))?;
    let a = a.get(i)?.to_dtype(DType::F32)?;
    Ok(patch_map(a)?)
}

/// A vision transformer's tokens (`tokens x dim`, a class token and a square grid of patches)
/// as the `dim x g x g` map of its patches, so that a channel objective means one feature over
/// the patches and a neuron objective one feature at one patch, as for a convolutional layer.
/// Anything else is returned as it is.
fn patch_map(a: Tensor) -> candle_core::Result<Tensor> {
    if a.rank() != 2 {
        return Ok(a);
    }
    let (t, d) = a.dims2()?;
    let g = ((t.saturating_sub(1)) as f64).sqrt().round() as usize;
    if t < 2 || g * g + 1 != t {
        return Ok(a);
    }
    a.narrow(0, 1, t - 1)?.t()?.contiguous()?.reshape((d, g, g))
}

/// One channel (conv: `H x W`, fully connected: a scalar) of one image's activation.
fn pick_channel(a: &Tensor, layer: &str, channel: usize) -> Result<Tensor> {
    let c = a.dim(0)?;
    if channel >= c {
        return Err(Error::InvalidArgument(format!(
            "channel {channel} is out of range: {layer} has {c} channels (0..{c})"
        )));
    }
    let x = a.get(channel)?;
    Ok(match x.rank() {
        0 | 2 => x,
        _ => x.flatten_all()?,
    })
}
