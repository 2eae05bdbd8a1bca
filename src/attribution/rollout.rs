//! Attention rollout (Abnar & Zuidema 2020): where a vision transformer's class token gathers
//! its information from, following the attention through every block.

use super::Attribution;
use crate::models::Model;
use crate::{Error, Result};
use candle_core::{Device, Tensor};

/// Attention rollout of a vision transformer: each block's attention averaged over heads, mixed
/// half and half with the identity for the residual connection (`0.5 A + 0.5 I`), multiplied
/// through the blocks; the class token's row over the patch tokens is the map, `N x 1 x g x g`
/// at the patch grid (14 x 14 for `vit_b_16` at 224 px; [`Attribution::interpolate`] for the
/// image's size). It does not depend on a class: the targets it reports are the predictions.
///
/// ```no_run
/// use neuroscope::attribution::AttentionRollout;
/// use neuroscope::models::{load, Weights};
/// let net = load("vit_b_16", &Weights::Random { seed: 0 }, &candle_core::Device::Cpu)?;
/// let x = candle_core::Tensor::randn(0f32, 1.0, (1, 3, 224, 224), &candle_core::Device::Cpu)?;
/// let r = AttentionRollout::new().attribute(&net, &x)?;
/// assert_eq!(r.values.dims(), &[1, 1, 14, 14]);
/// # Ok::<(), neuroscope::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionRollout {
    _private: (),
}

impl AttentionRollout {
    /// The rollout of Abnar & Zuidema, heads averaged.
    pub fn new() -> Self {
        AttentionRollout::default()
    }

    /// The rollout map of each image of `x`.
    pub fn attribute(&self, model: &Model, x: &Tensor) -> Result<Attribution> {
        let names: Vec<String> = model
            .layer_names()
            .into_iter()
            .filter(|n| n.ends_with(".attn_weights"))
            .collect();
        if names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "attention rollout needs a vision transformer (vit_b_16, vit_b_32, vit_l_16); {} has no attention weights",
                model.arch()
            )));
        }
        // The head's output (the logits) in the same pass: one forward for the maps and the
        // predictions they are captioned with.
        let head = "heads";
        let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
        refs.push(head);
        let outs = model.record(x, &refs)?;
        let logits = outs
            .get(head)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} has no `heads` module", model.arch()))
            })?
            .to_device(&Device::Cpu)?;
        let targets: Vec<usize> = logits
            .argmax(1)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|t| t as usize)
            .collect();
        let mut rollout: Option<Vec<Vec<f64>>> = None; // per image, s x s row-major
        let (mut n, mut s) = (0, 0);
        for name in &names {
            let a = outs
                .get(name)
                .ok_or_else(|| Error::InvalidArgument(format!("{name} was not recorded")))?
                .to_device(&Device::Cpu)?;
            let (an, _heads, s1, s2) = a.dims4()?;
            (n, s) = (an, s1);
            if s1 != s2 {
                return Err(Error::Shape {
                    what: name.clone(),
                    expected: "N x heads x tokens x tokens".into(),
                    got: format!("{:?}", a.dims()),
                });
            }
            let mean = a.mean(1)?.flatten_all()?.to_vec1::<f32>()?;
            let mut layer = Vec::with_capacity(n);
            for img in 0..n {
                let m = &mean[img * s * s..(img + 1) * s * s];
                let mixed: Vec<f64> = (0..s * s)
                    .map(|k| 0.5 * m[k] as f64 + if k / s == k % s { 0.5 } else { 0.0 })
                    .collect();
                layer.push(mixed);
            }
            rollout = Some(match rollout {
                None => layer,
                // R <- A_l R
                Some(prev) => layer
                    .iter()
                    .zip(&prev)
                    .map(|(a, r)| matmul(a, r, s))
                    .collect(),
            });
        }
        let rollout = rollout.unwrap_or_default();
        let grid = ((s - 1) as f64).sqrt().round() as usize;
        if grid * grid + 1 != s {
            return Err(Error::InvalidArgument(format!(
                "{s} tokens are not a class token and a square grid of patches"
            )));
        }
        let mut values = Vec::with_capacity(n * grid * grid);
        for r in &rollout {
            values.extend(r[1..s].iter().map(|&v| v as f32));
        }
        Ok(Attribution {
            method: "AttentionRollout",
            values: Tensor::from_vec(values, (n, 1, grid, grid), &Device::Cpu)?,
            targets,
            delta: None,
        })
    }
}

/// `a b` for `s x s` row-major matrices.
fn matmul(a: &[f64], b: &[f64], s: usize) -> Vec<f64> {
    let mut out = vec![0.0; s * s];
    for i in 0..s {
        for k in 0..s {
            let aik = a[i * s + k];
            if aik == 0.0 {
                continue;
            }
            let (row, brow) = (&mut out[i * s..(i + 1) * s], &b[k * s..(k + 1) * s]);
            row.iter_mut().zip(brow).for_each(|(o, v)| *o += aik * v);
        }
    }
    out
}
