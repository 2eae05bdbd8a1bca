//! Fused epilogues: a per-channel affine map and a ReLU applied in a convolution's or linear
//! layer's output buffer, and their backward.

use super::cpu::{channels_and_plane, par_uninit, relu_value, with_cpu_f32, CHUNK};
use std::cell::Cell;
use std::mem::MaybeUninit;

thread_local! {
    /// Whether ReLU backward passes on this thread are guided (Springenberg et al. 2015).
    static GUIDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with guided ReLU backward passes on this thread: a ReLU passes a gradient only where
/// its input was positive *and* the gradient is positive (captum's `GuidedBackprop`, which
/// overrides `nn.ReLU` modules). Covers every ReLU of the CPU kernels (alone, fused into a
/// convolution or linear layer, ResNet's `relu(a + b)`); candle's own ops on other devices are
/// not guided.
pub(crate) fn with_guided_relu<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            GUIDED.with(|g| g.set(self.0));
        }
    }
    let _reset = Reset(GUIDED.with(|g| g.replace(true)));
    f()
}
use candle_core::Tensor;
use rayon::prelude::*;

/// What a convolution or linear layer may apply in its own output buffer
/// ([`conv2d_fused`], [`linear_fused`]): a per-channel affine step (eval-mode batch norm,
/// as [`channel_affine`]), then a ReLU. The default does nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Epilogue {
    /// Per-channel `(scale, shift)`: `v * scale[c] + shift[c]`.
    pub affine: Option<(Vec<f32>, Vec<f32>)>,
    /// A ReLU after the affine step.
    pub relu: bool,
}

impl Epilogue {
    /// A ReLU alone.
    pub fn relu() -> Self {
        Epilogue {
            affine: None,
            relu: true,
        }
    }

    /// A per-channel scale and shift alone.
    pub fn affine(scale: Vec<f32>, shift: Vec<f32>) -> Self {
        Epilogue {
            affine: Some((scale, shift)),
            relu: false,
        }
    }

    /// The same, followed by a ReLU.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// Appends `step` when the result is still an epilogue (an affine step first, at most one
    /// ReLU, each once) and says whether it did.
    pub fn append(&mut self, step: &Epilogue) -> bool {
        let ok = match (&step.affine, step.relu) {
            (Some(_), _) => self.is_empty(),
            (None, relu) => !(relu && self.relu),
        };
        if ok {
            if step.affine.is_some() {
                self.affine = step.affine.clone();
            }
            self.relu |= step.relu;
        }
        ok
    }

    /// True when it does nothing.
    pub fn is_empty(&self) -> bool {
        self.affine.is_none() && !self.relu
    }

    pub(super) fn check(&self, c: usize) -> candle_core::Result<()> {
        match &self.affine {
            Some((a, b)) if a.len() != c || b.len() != c => candle_core::bail!(
                "epilogue: {} scales and {} shifts for {c} channels",
                a.len(),
                b.len()
            ),
            _ => Ok(()),
        }
    }

    /// The steps in place on an `N x C x ...` output of shape `dims`.
    pub(super) fn apply_cpu(&self, y: &mut [f32], dims: &[usize]) {
        let (c, plane) = channels_and_plane(dims);
        match &self.affine {
            None if self.relu => y
                .par_chunks_mut(CHUNK)
                .for_each(|y| y.iter_mut().for_each(|v| *v = relu_value(*v))),
            None => {}
            Some(_) => y
                .par_chunks_mut(c * plane)
                .for_each(|y| self.apply_image(y, plane, false)),
        }
    }

    /// The steps on channel `ch`'s values.
    fn apply_channel(&self, ch: usize, y: &mut [f32]) {
        match &self.affine {
            None if self.relu => y.iter_mut().for_each(|v| *v = relu_value(*v)),
            None => {}
            Some((a, b)) => {
                let (a, b) = (a[ch], b[ch]);
                for v in y {
                    let t = *v * a + b;
                    *v = if self.relu { relu_value(t) } else { t };
                }
            }
        }
    }

    /// The steps in place on one image's `C x plane` output, its channels spread over
    /// threads when `parallel`.
    pub(super) fn apply_image(&self, y: &mut [f32], plane: usize, parallel: bool) {
        if self.is_empty() {
            return;
        }
        let channel = |(ch, y): (usize, &mut [f32])| self.apply_channel(ch, y);
        let plane = plane.max(1);
        if parallel {
            y.par_chunks_mut(plane).enumerate().for_each(channel);
        } else {
            y.chunks_mut(plane).enumerate().for_each(channel);
        }
    }

    /// The gradient reaching the input of the steps (the convolution's or linear layer's own
    /// output when fused; the input of the standalone ReLU and channel-affine ops), from their
    /// output `res` and its gradient: the steps' backwards in reverse order, each result added
    /// to zero as candle's accumulator of an intermediate tensor does (so that even the signs
    /// of zeros match the separate operations).
    pub(super) fn grad_cpu(&self, res: &Tensor, grad: &Tensor) -> candle_core::Result<Tensor> {
        if self.is_empty() {
            return Ok(grad.clone());
        }
        let (c, plane) = channels_and_plane(res.dims());
        let guided = GUIDED.with(|g| g.get());
        // One loop per combination of steps, chosen once: with the branches on `relu`, the
        // guided flag and the affine step inside a single loop, it ran one element at a time
        // (5 % of training the MNIST CNN); each of these compiles to vector code.
        let plane_fn: PlaneGrad = match (self.relu, guided, self.affine.is_some()) {
            (false, _, _) => grad_plane::<false, false, true>,
            (true, false, false) => grad_plane::<true, false, false>,
            (true, false, true) => grad_plane::<true, false, true>,
            (true, true, false) => grad_plane::<true, true, false>,
            (true, true, true) => grad_plane::<true, true, true>,
        };
        let gx = with_cpu_f32(res, |y| {
            with_cpu_f32(grad, |g| {
                if y.len() != g.len() {
                    candle_core::bail!(
                        "epilogue backward: {} outputs but {} gradients",
                        y.len(),
                        g.len()
                    );
                }
                // SAFETY: each chunk is one image's `c * plane` values (the last one possibly
                // fewer), and `grad_plane` writes every element of every plane of it.
                Ok(unsafe {
                    par_uninit(g.len(), c * plane, |i, o| {
                        let at = i * c * plane..i * c * plane + o.len();
                        let (y, g) = (&y[at.clone()], &g[at]);
                        let Some((scale, _)) = &self.affine else {
                            // the ReLU alone: the same step for every channel, one loop
                            return plane_fn(o, y, g, 1.0);
                        };
                        for (ch, o) in o.chunks_mut(plane).enumerate() {
                            let at = ch * plane..ch * plane + o.len();
                            plane_fn(o, &y[at.clone()], &g[at], scale[ch]);
                        }
                    })
                })
            })
        })???;
        Tensor::from_vec(gx, res.shape(), res.device())
    }
}

/// One channel plane's step of [`Epilogue::grad_cpu`] (`a` the plane's affine scale).
type PlaneGrad = fn(&mut [MaybeUninit<f32>], &[f32], &[f32], f32);

/// The backward of the epilogue's steps for one channel plane, in reverse order: the ReLU's
/// mask (guided: also negative gradients dropped), then the affine scale `a`; each result
/// added to zero as candle's accumulator of an intermediate tensor does, so that even the
/// signs of zeros match the separate operations. `RELU = false` is the affine step alone.
#[inline(always)]
fn grad_plane<const RELU: bool, const GUIDED: bool, const AFFINE: bool>(
    o: &mut [MaybeUninit<f32>],
    y: &[f32],
    g: &[f32],
    a: f32,
) {
    for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
        let mut v = g;
        if RELU {
            let pass = (y > 0.0) & (!GUIDED | (g > 0.0));
            let keep = 0u32.wrapping_sub(pass as u32);
            v = 0.0 + f32::from_bits(v.to_bits() & keep);
        }
        if AFFINE {
            v = 0.0 + v * a;
        }
        o.write(v);
    }
}

#[cfg(test)]
mod doc_examples {
    //! The examples of the functions above (crate-private, so rustdoc does not run them).

    #[test]
    fn epilogue() {
        use super::Epilogue;
        assert!(Epilogue::default().is_empty());
        let e = Epilogue::affine(vec![2.0], vec![0.5]).with_relu();
        assert!(e.relu && e.affine.is_some());
    }

    #[test]
    fn append() {
        use super::Epilogue;
        let mut e = Epilogue::affine(vec![2.0], vec![0.0]);
        assert!(e.append(&Epilogue::relu()));
        assert!(!e.append(&Epilogue::relu())); // one ReLU
        assert!(!e.append(&Epilogue::affine(vec![1.0], vec![1.0]))); // no affine after it
        assert_eq!(e, Epilogue::affine(vec![2.0], vec![0.0]).with_relu());
    }
}
