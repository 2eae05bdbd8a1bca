//! Vision transformers (`torchvision.models.VisionTransformer`): `vit_b_16`, `vit_b_32`,
//! `vit_l_16`, one implementation with torchvision's module names.
//!
//! An image is cut into `patch x patch` squares (`conv_proj`), a learned class token is put in
//! front and position embeddings are added; `encoder_layer_*` blocks then mix the tokens with
//! multi-head self-attention and an MLP, each behind a LayerNorm and a residual connection; the
//! class token's final state is classified (`heads.head`).
//!
//! Every block's attention probabilities (`N x heads x tokens x tokens`), which torchvision
//! computes but does not return, are recordable as
//! `encoder.layers.encoder_layer_K.self_attention.attn_weights`; token outputs (`N x tokens x
//! dim`) reduce with [`Reduce::ClassToken`](crate::record::Reduce::ClassToken) or
//! [`Reduce::TokenMean`](crate::record::Reduce::TokenMean).

use super::layers::{Activation, Dropout, InitScheme, Layer, LayerNorm, Linear, Sequential};
use super::{Ctx, InputSpec, Model, Weights};
use crate::{Error, Result};
use candle_core::{Device, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// The sizes of one ViT variant (torchvision's `_vision_transformer` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitConfig {
    /// Side of the square patches.
    pub patch: usize,
    /// Encoder blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Token width.
    pub hidden: usize,
    /// Width of each block's MLP.
    pub mlp: usize,
    /// Input side (the position embeddings are made for it).
    pub image: usize,
}

impl VitConfig {
    /// The torchvision variant called `arch`.
    ///
    /// ```
    /// let c = neuroscope::models::vit::VitConfig::of("vit_l_16")?;
    /// assert_eq!((c.layers, c.heads, c.hidden), (24, 16, 1024));
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn of(arch: &str) -> Result<VitConfig> {
        let (patch, layers, heads, hidden, mlp) = match arch {
            "vit_b_16" => (16, 12, 12, 768, 3072),
            "vit_b_32" => (32, 12, 12, 768, 3072),
            "vit_l_16" => (16, 24, 16, 1024, 4096),
            _ => {
                return Err(Error::unknown(
                    "vision transformer",
                    arch,
                    ["vit_b_16", "vit_b_32", "vit_l_16"],
                ))
            }
        };
        Ok(VitConfig {
            patch,
            layers,
            heads,
            hidden,
            mlp,
            image: 224,
        })
    }
    /// Tokens per image: one per patch, plus the class token.
    pub fn tokens(&self) -> usize {
        (self.image / self.patch).pow(2) + 1
    }
}

/// `nn.MultiheadAttention(hidden, heads, batch_first=True)` as torchvision's encoder block
/// calls it (self-attention, no mask). Its probabilities are tapped as `attn_weights`.
#[derive(Debug)]
pub struct SelfAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: Linear,
    heads: usize,
    hidden: usize,
}

impl SelfAttention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize) -> Result<Self> {
        // PyTorch's defaults: xavier_uniform in_proj, zero biases, out_proj as nn.Linear
        let bound = (6.0 / (hidden + 3 * hidden) as f64).sqrt();
        Ok(SelfAttention {
            in_proj_weight: vb.get_with_hints(
                (3 * hidden, hidden),
                "in_proj_weight",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            in_proj_bias: vb.get_with_hints(3 * hidden, "in_proj_bias", Init::Const(0.0))?,
            out_proj: Linear::new(vb.pp("out_proj"), hidden, hidden, InitScheme::TorchDefault)?,
            heads,
            hidden,
        })
    }
}

/// Softmax over the last axis from plain tensor operations (so candle's backward goes through
/// it), the maximum subtracted first and held constant.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    // Recording: one pass per row, the same bits as the operations below.
    if let Some(y) = crate::kernels::softmax_last(x)? {
        return Ok(y);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

impl Layer for SelfAttention {
    fn kind(&self) -> &'static str {
        "MultiheadAttention"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let (n, s, e) = x.dims3()?;
        if e != self.hidden {
            return Err(Error::Shape {
                what: "input of MultiheadAttention".into(),
                expected: format!("N x tokens x {}", self.hidden),
                got: format!("{:?}", x.dims()),
            });
        }
        let (h, hd) = (self.heads, self.hidden / self.heads);
        let qkv = crate::kernels::linear(
            &x.reshape((n * s, e))?,
            &self.in_proj_weight,
            Some(&self.in_proj_bias),
        )?;
        let scale = 1.0 / (hd as f64).sqrt();
        // Recording (no gradient): q, k and v read in place from `qkv`, the same bits as the
        // candle operations below (`kernels::attention_probs`, `attention_values`).
        let heads = crate::kernels::Heads { n, s, h, hd };
        let fast = crate::kernels::attention_probs(&qkv, heads, scale)?;
        // (n, s, 3, h, hd) -> three (n, h, s, hd)
        let split = |part: usize| -> Result<Tensor> {
            let t = qkv.reshape((n, s, 3, h, hd))?.permute((2, 0, 3, 1, 4))?;
            Ok(t.get(part)?.contiguous()?)
        };
        let probs = match fast {
            Some(probs) => probs,
            None => {
                let q = (split(0)? * scale)?;
                // The products per image and head on neuroscope's gemm wrapper, one (image,
                // head) per task: 2x candle's batched matmul here (one gemm after another, each
                // split over the threads), the same bits (depths 64 and 197 are one gemm block
                // either way).
                let scores = crate::kernels::matmul(&q, &split(1)?.t()?)?;
                softmax_last(&scores)?
            }
        };
        ctx.tap("attn_weights", &probs);
        if ctx.is_done() {
            return Ok(probs);
        }
        let out = match crate::kernels::attention_values(&probs, &qkv, heads)? {
            Some(out) => out,
            None => crate::kernels::matmul(&probs, &split(2)?)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((n, s, e))?,
        };
        ctx.run("out_proj", &self.out_proj, &out)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![("out_proj".into(), &self.out_proj)]
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        vec![
            ("in_proj_weight", self.in_proj_weight.clone()),
            ("in_proj_bias", self.in_proj_bias.clone()),
        ]
    }
    fn describe(&self) -> String {
        format!("embed_dim={}, num_heads={}", self.hidden, self.heads)
    }
}

/// torchvision's `EncoderBlock`: `x + attention(ln_1(x))`, then `+ mlp(ln_2(.))`.
#[derive(Debug)]
pub struct EncoderBlock {
    ln_1: LayerNorm,
    self_attention: SelfAttention,
    dropout: Dropout,
    ln_2: LayerNorm,
    mlp: Sequential,
}

impl EncoderBlock {
    fn new(vb: VarBuilder, c: &VitConfig) -> Result<Self> {
        let vm = vb.pp("mlp");
        let mut mlp = Sequential::root("MLPBlock");
        // xavier_uniform weights, N(0, 1e-6) biases (torchvision's MLPBlock)
        mlp.push(Linear::new(
            vm.pp("0"),
            c.hidden,
            c.mlp,
            InitScheme::Xavier,
        )?);
        mlp.push(Activation::Gelu);
        mlp.push(Dropout { p: 0.0 });
        mlp.push(Linear::new(
            vm.pp("3"),
            c.mlp,
            c.hidden,
            InitScheme::Xavier,
        )?);
        mlp.push(Dropout { p: 0.0 });
        Ok(EncoderBlock {
            ln_1: LayerNorm::new(vb.pp("ln_1"), c.hidden, 1e-6)?,
            self_attention: SelfAttention::new(vb.pp("self_attention"), c.hidden, c.heads)?,
            dropout: Dropout { p: 0.0 },
            ln_2: LayerNorm::new(vb.pp("ln_2"), c.hidden, 1e-6)?,
            mlp,
        })
    }
}

impl Layer for EncoderBlock {
    fn kind(&self) -> &'static str {
        "EncoderBlock"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        // After each child: when every requested output is recorded, return at once (what is
        // returned is then never used).
        let y = ctx.run("ln_1", &self.ln_1, x)?;
        if ctx.is_done() {
            return Ok(y);
        }
        let y = ctx.run("self_attention", &self.self_attention, &y)?;
        if ctx.is_done() {
            return Ok(y);
        }
        let y = ctx.run("dropout", &self.dropout, &y)?;
        // Residuals on rayon's threads (kernels::add: candle's sum, bit for bit, and gradient).
        let x = crate::kernels::add(&y, x)?;
        let y = ctx.run("ln_2", &self.ln_2, &x)?;
        if ctx.is_done() {
            return Ok(y);
        }
        let y = ctx.run("mlp", &self.mlp, &y)?;
        if ctx.is_done() {
            return Ok(y);
        }
        crate::kernels::add(&x, &y)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("ln_1".into(), &self.ln_1),
            ("self_attention".into(), &self.self_attention),
            ("dropout".into(), &self.dropout),
            ("ln_2".into(), &self.ln_2),
            ("mlp".into(), &self.mlp),
        ]
    }
}

/// torchvision's `Encoder`: position embeddings added, the blocks, a final LayerNorm.
#[derive(Debug)]
struct Encoder {
    pos_embedding: Tensor,
    dropout: Dropout,
    layers: Sequential,
    ln: LayerNorm,
}

impl Layer for Encoder {
    fn kind(&self) -> &'static str {
        "Encoder"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let x = x.broadcast_add(&self.pos_embedding)?;
        let x = ctx.run("dropout", &self.dropout, &x)?;
        if ctx.is_done() {
            return Ok(x);
        }
        let x = ctx.run("layers", &self.layers, &x)?;
        if ctx.is_done() {
            return Ok(x);
        }
        ctx.run("ln", &self.ln, &x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("dropout".into(), &self.dropout),
            ("layers".into(), &self.layers),
            ("ln".into(), &self.ln),
        ]
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        vec![("pos_embedding", self.pos_embedding.clone())]
    }
}

/// The root: patches, class token, encoder, head on the class token.
#[derive(Debug)]
struct VisionTransformer {
    config: VitConfig,
    class_token: Tensor,
    conv_proj: super::layers::Conv2d,
    encoder: Encoder,
    heads: Sequential,
}

impl Layer for VisionTransformer {
    fn kind(&self) -> &'static str {
        "VisionTransformer"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let n = x.dim(0)?;
        let c = &self.config;
        let x = ctx.run("conv_proj", &self.conv_proj, x)?;
        if ctx.is_done() {
            return Ok(x);
        }
        // (n, hidden, h, w) -> (n, h * w, hidden), the class token in front
        let x = x.flatten_from(2)?.transpose(1, 2)?;
        let cls = self.class_token.broadcast_as((n, 1, c.hidden))?;
        let x = Tensor::cat(&[&cls, &x], 1)?.contiguous()?;
        let x = ctx.run("encoder", &self.encoder, &x)?;
        if ctx.is_done() {
            return Ok(x);
        }
        let x = x.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        ctx.run("heads", &self.heads, &x)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![
            ("conv_proj".into(), &self.conv_proj),
            ("encoder".into(), &self.encoder),
            ("heads".into(), &self.heads),
        ]
    }
    fn parameters(&self) -> Vec<(&'static str, Tensor)> {
        vec![("class_token", self.class_token.clone())]
    }
}

/// A vision transformer (`vit_b_16`, `vit_b_32` or `vit_l_16`) for 1000 classes on
/// 224 x 224 inputs, initialised as torchvision does for [`Weights::Random`].
///
/// ```no_run
/// use neuroscope::models::{load, Weights};
/// let net = load("vit_b_16", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"encoder.layers.encoder_layer_11.self_attention.attn_weights".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn vit(arch: &str, weights: &Weights, device: &Device) -> Result<Model> {
    let c = VitConfig::of(arch)?;
    let taps: Vec<String> = (0..c.layers)
        .map(|i| format!("encoder.layers.encoder_layer_{i}.self_attention.attn_weights"))
        .collect();
    let model = Model::build(
        arch,
        InputSpec::fixed(3, c.image, c.image),
        weights,
        device,
        |vb| {
            let fan_in = 3 * c.patch * c.patch;
            let conv_proj = super::layers::Conv2d::new(
                vb.pp("conv_proj"),
                super::layers::ConvSpec::new(3, c.hidden, c.patch).stride(c.patch),
                InitScheme::Normal((1.0 / fan_in as f64).sqrt()),
            )?;
            let ve = vb.pp("encoder");
            let vl = ve.pp("layers");
            let mut layers = Sequential::new();
            for i in 0..c.layers {
                let name = format!("encoder_layer_{i}");
                layers.push_named(name.clone(), EncoderBlock::new(vl.pp(&name), &c)?);
            }
            let encoder = Encoder {
                pos_embedding: ve.get_with_hints(
                    (1, c.tokens(), c.hidden),
                    "pos_embedding",
                    Init::Randn {
                        mean: 0.0,
                        stdev: 0.02,
                    },
                )?,
                dropout: Dropout { p: 0.0 },
                layers,
                ln: LayerNorm::new(ve.pp("ln"), c.hidden, 1e-6)?,
            };
            let mut heads = Sequential::new();
            heads.push_named(
                "head",
                Linear::new(vb.pp("heads").pp("head"), c.hidden, 1000, InitScheme::Zeros)?,
            );
            Ok(Box::new(VisionTransformer {
                config: c,
                class_token: vb.get_with_hints(
                    (1, 1, c.hidden),
                    "class_token",
                    Init::Const(0.0),
                )?,
                conv_proj,
                encoder,
                heads,
            }) as Box<dyn Layer>)
        },
    )?;
    let taps: Vec<&str> = taps.iter().map(String::as_str).collect();
    Ok(model.with_taps(&taps))
}
