//! Optimisers with PyTorch's update rules, so a learning rate from a PyTorch notebook means the
//! same here: SGD with momentum (dampening 0, optional Nesterov, weight decay) and Adam.
//!
//! candle-nn's `SGD` has no momentum and its `AdamW` defaults to weight decay 0.01, so both are
//! implemented here (a few lines each) with state that can be saved in a checkpoint and loaded
//! back, which makes "train 1 epoch, save, load, train 1 more" equal to "train 2".

use crate::Result;
use candle_core::{CpuStorage, InplaceOp3, Layout, Tensor, Var};
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
        /// Momentum factor (workflow 3 uses 0.0; 0.9 is common).
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
    /// Whether the optimiser keeps state between steps (momentum, Adam's averages), which a
    /// resumed run must restore.
    ///
    /// ```
    /// use neuroscope::train::Optimizer;
    /// assert!(!Optimizer::sgd(0.0).has_state());
    /// assert!(Optimizer::sgd(0.9).has_state() && Optimizer::adam().has_state());
    /// ```
    pub fn has_state(&self) -> bool {
        match self {
            Optimizer::Sgd { momentum, .. } => *momentum != 0.0,
            Optimizer::Adam { .. } => true,
        }
    }

    /// The name used in checkpoints and logs: `sgd` or `adam`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }
}

from_str_by_parse!(Optimizer);

/// The optimiser's running state for a set of parameters.
pub(crate) struct State {
    kind: Optimizer,
    lr: f64,
    step: u64,
    /// Momentum buffer (SGD) or first moment (Adam), by parameter name.
    m: HashMap<String, Tensor>,
    /// Second moment (Adam).
    v: HashMap<String, Tensor>,
    /// Whether SGD may update f32 CPU parameters in place ([`SgdCpu`]); the tensor operations
    /// otherwise (other devices, and the unit test that compares the two).
    in_place: bool,
}

impl State {
    pub fn new(kind: Optimizer, lr: f64) -> Self {
        State {
            kind,
            lr,
            step: 0,
            m: HashMap::new(),
            v: HashMap::new(),
            in_place: true,
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
                } if self.in_place && in_place_ok(&[Some(p), Some(g), self.m.get(name)]) => {
                    let rule = SgdCpu {
                        lr: lr as f32,
                        momentum: momentum as f32,
                        nesterov,
                        weight_decay: weight_decay as f32,
                    };
                    if momentum == 0.0 {
                        p.inplace_op3(g, g, &rule)?;
                        continue;
                    }
                    let buf = match self.m.get(name) {
                        Some(b) => {
                            b.inplace_op3(g, p, &MomentumCpu(rule))?;
                            b.clone()
                        }
                        // PyTorch: the first buffer is the step's direction itself.
                        None => rule.direction_tensor(g, p)?,
                    };
                    p.inplace_op3(g, &buf, &rule)?;
                    self.m.insert(name.clone(), buf);
                }
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

    /// The state as tensors (`m.NAME`, `v.NAME`), for a checkpoint: copies, since the CPU
    /// update changes the momentum buffers in place.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut t: Vec<(String, Tensor)> = self
            .m
            .iter()
            .map(|(k, v)| Ok((format!("m.{k}"), v.copy()?)))
            .chain(
                self.v
                    .iter()
                    .map(|(k, v)| Ok((format!("v.{k}"), v.copy()?))),
            )
            .collect::<Result<_>>()?;
        t.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(t)
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

/// Whether the in-place CPU update applies: contiguous f32 CPU tensors of one shape.
fn in_place_ok(ts: &[Option<&Tensor>]) -> bool {
    let shape = ts.iter().flatten().next().map(|t| t.shape());
    ts.iter().flatten().all(|t| {
        t.device().is_cpu()
            && t.dtype() == candle_core::DType::F32
            && t.is_contiguous()
            && Some(t.shape()) == shape
    })
}

/// PyTorch's SGD update of an f32 parameter on the CPU, in place and in one pass: the tensor
/// path's three operations (scale, subtract, copy into the variable), each a pass over the
/// parameter and a wake-up of candle's thread pool, as the same f32 operations in the same
/// order, so the same bits. Operands: the parameter (written), its gradient, and the momentum
/// buffer already updated by [`MomentumCpu`] (the gradient again without momentum).
#[derive(Clone, Copy)]
struct SgdCpu {
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
}

impl SgdCpu {
    /// The gradient with weight decay: `g + p * wd` (the tensor path's `affine(wd, 0)` and add).
    #[inline(always)]
    fn direction(&self, g: f32, p: f32) -> f32 {
        if self.weight_decay != 0.0 {
            g + (p * self.weight_decay + 0.0)
        } else {
            g
        }
    }

    /// [`direction`](Self::direction) for whole tensors, as a new tensor.
    fn direction_tensor(&self, g: &Tensor, p: &Tensor) -> Result<Tensor> {
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let pv = p.flatten_all()?.to_vec1::<f32>()?;
        let d: Vec<f32> = gv
            .iter()
            .zip(&pv)
            .map(|(&g, &p)| self.direction(g, p))
            .collect();
        Ok(Tensor::from_vec(d, p.shape(), p.device())?)
    }
}

/// Contiguous f32 values of a CPU storage seen through `layout`.
fn values<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("sgd: expected contiguous f32 tensors"),
    }
}

fn values_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("sgd: expected contiguous f32 tensors"),
    }
}

impl InplaceOp3 for SgdCpu {
    fn name(&self) -> &'static str {
        "neuroscope-sgd"
    }

    fn cpu_fwd(
        &self,
        p: &mut CpuStorage,
        pl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        buf: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<()> {
        let (p, g, buf) = (values_mut(p, pl)?, values(g, gl)?, values(buf, bl)?);
        if p.len() != g.len() || p.len() != buf.len() {
            candle_core::bail!("sgd: parameter, gradient and buffer differ in size");
        }
        for ((p, &g), &b) in p.iter_mut().zip(g).zip(buf) {
            let d = self.direction(g, *p);
            let step = match (self.momentum != 0.0, self.nesterov) {
                (false, _) => d,
                (true, false) => b,
                (true, true) => d + (b * self.momentum + 0.0),
            };
            *p -= step * self.lr + 0.0;
        }
        Ok(())
    }
}

/// The momentum buffer's update `buf = buf * momentum + d`, in place; operands: the buffer
/// (written), the gradient and the parameter (read before [`SgdCpu`] writes it).
struct MomentumCpu(SgdCpu);

impl InplaceOp3 for MomentumCpu {
    fn name(&self) -> &'static str {
        "neuroscope-sgd-momentum"
    }

    fn cpu_fwd(
        &self,
        buf: &mut CpuStorage,
        bl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        p: &CpuStorage,
        pl: &Layout,
    ) -> candle_core::Result<()> {
        let (buf, g, p) = (values_mut(buf, bl)?, values(g, gl)?, values(p, pl)?);
        if buf.len() != g.len() || buf.len() != p.len() {
            candle_core::bail!("sgd: parameter, gradient and buffer differ in size");
        }
        for ((b, &g), &p) in buf.iter_mut().zip(g).zip(p) {
            *b = (*b * self.0.momentum + 0.0) + self.0.direction(g, p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The in-place CPU update gives the tensor path's bits, for every SGD variant, over
    /// steps that start, use and keep the momentum buffer.
    #[test]
    fn sgd_in_place_equals_tensor_path() -> Result<()> {
        let variants = [
            (0.0, false, 0.0),
            (0.9, false, 0.0),
            (0.9, true, 1e-3),
            (0.5, false, 0.1),
        ];
        for (momentum, nesterov, weight_decay) in variants {
            let kind = Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            };
            let mut out = Vec::new();
            for in_place in [true, false] {
                let w =
                    Var::from_tensor(&Tensor::arange(-6f32, 6.0, &Device::Cpu)?.reshape((3, 4))?)?;
                let vars = vec![("w".to_string(), w.clone())];
                let mut state = State::new(kind, 0.1);
                state.in_place = in_place;
                for _ in 0..3 {
                    let loss = (w.as_tensor().sqr()?.sum_all()? * 0.37)?;
                    state.step(&vars, &loss.backward()?)?;
                }
                out.push(w.as_tensor().flatten_all()?.to_vec1::<f32>()?);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out[0]), bits(&out[1]), "{kind:?}");
        }
        Ok(())
    }
}
