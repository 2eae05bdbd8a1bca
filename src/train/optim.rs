//! Optimisers with PyTorch's update rules, so a learning rate from a PyTorch notebook means the
//! same here: SGD with momentum (dampening 0, optional Nesterov, weight decay) and Adam.
//!
//! candle-nn's `SGD` has no momentum and its `AdamW` defaults to weight decay 0.01, so both are
//! implemented here (a few lines each) with state that can be saved in a checkpoint and loaded
//! back, which makes "train 1 epoch, save, load, train 1 more" equal to "train 2".

use crate::Result;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// Which optimiser, with its hyper-parameters (PyTorch's defaults).
///
/// ```
/// use neuroscope::train::Optimizer;
/// assert_eq!(Optimizer::parse("sgd").unwrap(), Optimizer::sgd(0.0));
/// assert_eq!(Optimizer::parse("adam").unwrap(), Optimizer::adam());
/// assert!(Optimizer::parse("lbfgs").unwrap_err().to_string().contains("sgd, adam"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `torch.optim.SGD`.
    Sgd {
        /// Momentum factor (seed 3 uses 0.0; 0.9 is common).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// `torch.optim.Adam`.
    Adam {
        /// Coefficients of the running averages of the gradient and its square.
        betas: (f64, f64),
        /// Added to the denominator.
        eps: f64,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
}

impl Optimizer {
    /// SGD with `momentum`, no weight decay.
    pub fn sgd(momentum: f64) -> Self {
        Optimizer::Sgd {
            momentum,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
    /// Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8).
    pub fn adam() -> Self {
        Optimizer::Adam {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
    /// `sgd` or `adam` (the CLI's names).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::sgd(0.0)),
            "adam" => Ok(Self::adam()),
            _ => Err(crate::Error::unknown("optimizer", name, ["sgd", "adam"])),
        }
    }
    /// The name used in checkpoints and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }
}

/// The optimiser's running state for a set of parameters.
pub(crate) struct State {
    kind: Optimizer,
    lr: f64,
    step: u64,
    /// Momentum buffer (SGD) or first moment (Adam), by parameter name.
    m: HashMap<String, Tensor>,
    /// Second moment (Adam).
    v: HashMap<String, Tensor>,
}

impl State {
    pub fn new(kind: Optimizer, lr: f64) -> Self {
        State {
            kind,
            lr,
            step: 0,
            m: HashMap::new(),
            v: HashMap::new(),
        }
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of `vars` from the gradients in `grads`; parameters without a gradient
    /// (frozen, or unused by the loss) are left alone, as PyTorch does.
    pub fn step(
        &mut self,
        vars: &[(String, Var)],
        grads: &candle_core::backprop::GradStore,
    ) -> Result<()> {
        self.step += 1;
        let lr = self.lr;
        for (name, var) in vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let p = var.as_tensor();
            match self.kind {
                Optimizer::Sgd {
                    momentum,
                    nesterov,
                    weight_decay,
                } => {
                    let mut d = if weight_decay != 0.0 {
                        (g + (p * weight_decay)?)?
                    } else {
                        g.clone()
                    };
                    if momentum != 0.0 {
                        let buf = match self.m.get(name) {
                            Some(b) => ((b * momentum)? + &d)?,
                            None => d.clone(),
                        };
                        d = if nesterov {
                            (&d + (&buf * momentum)?)?
                        } else {
                            buf.clone()
                        };
                        self.m.insert(name.clone(), buf);
                    }
                    var.set(&(p - (d * lr)?)?)?;
                }
                Optimizer::Adam {
                    betas: (b1, b2),
                    eps,
                    weight_decay,
                } => {
                    let g = if weight_decay != 0.0 {
                        (g + (p * weight_decay)?)?
                    } else {
                        g.clone()
                    };
                    let m = match self.m.get(name) {
                        Some(m) => ((m * b1)? + (&g * (1.0 - b1))?)?,
                        None => (&g * (1.0 - b1))?,
                    };
                    let v = match self.v.get(name) {
                        Some(v) => ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?,
                        None => (g.sqr()? * (1.0 - b2))?,
                    };
                    let t = self.step as i32;
                    let bc1 = 1.0 - b1.powi(t);
                    let bc2 = 1.0 - b2.powi(t);
                    // PyTorch: denom = sqrt(v) / sqrt(bc2) + eps; p -= lr / bc1 * m / denom.
                    let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
                    let upd = ((&m / denom)? * (lr / bc1))?;
                    var.set(&(p - upd)?)?;
                    self.m.insert(name.clone(), m);
                    self.v.insert(name.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// The state as tensors (`m.NAME`, `v.NAME`), for a checkpoint.
    pub fn to_tensors(&self) -> Vec<(String, Tensor)> {
        let mut t: Vec<(String, Tensor)> = self
            .m
            .iter()
            .map(|(k, v)| (format!("m.{k}"), v.clone()))
            .chain(self.v.iter().map(|(k, v)| (format!("v.{k}"), v.clone())))
            .collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    }

    /// Restores the state saved by [`to_tensors`](State::to_tensors).
    pub fn load(&mut self, tensors: HashMap<String, Tensor>, step: u64) {
        self.step = step;
        for (k, t) in tensors {
            if let Some(n) = k.strip_prefix("m.") {
                self.m.insert(n.to_string(), t);
            } else if let Some(n) = k.strip_prefix("v.") {
                self.v.insert(n.to_string(), t);
            }
        }
    }
}
