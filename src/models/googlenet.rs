//! GoogLeNet / Inception v1 (`torchvision.models.googlenet`) in eval mode without the auxiliary
//! heads (`aux_logits=False`, `transform_input=False`).

use super::layers::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvSpec, Dropout, InitScheme, Layer, Linear, Pool2d,
    Sequential,
};
use super::{Ctx, InputSpec, Model, Weights};
use crate::Result;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

/// torchvision's `BasicConv2d`: conv (no bias), batch norm (eps 0.001), then a functional ReLU.
#[derive(Debug)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl BasicConv2d {
    /// `BasicConv2d(cin, cout, kernel, stride, padding)`.
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let spec = ConvSpec::new(cin, cout, kernel)
            .stride(stride)
            .padding(padding)
            .no_bias();
        Ok(BasicConv2d {
            conv: Conv2d::new(vb.pp("conv"), spec, InitScheme::Normal(0.01))?,
            bn: BatchNorm2d::with_eps(vb.pp("bn"), cout, 1e-3)?,
        })
    }
}

impl Layer for BasicConv2d {
    fn kind(&self) -> &'static str {
        "BasicConv2d"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let chain: [(&str, &dyn Layer); 2] = [("conv", &self.conv), ("bn", &self.bn)];
        crate::kernels::relu(&ctx.run_chain(&chain, x)?)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        vec![("conv".into(), &self.conv), ("bn".into(), &self.bn)]
    }
}

/// An Inception block: four branches concatenated along channels.
#[derive(Debug)]
pub struct Inception {
    branch1: BasicConv2d,
    branches: [Sequential; 3],
}

impl Inception {
    /// `Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)`; like torchvision,
    /// the "5x5" branch uses a 3x3 kernel.
    #[allow(clippy::too_many_arguments)] // torchvision's signature, argument for argument
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        c1: usize,
        c3r: usize,
        c3: usize,
        c5r: usize,
        c5: usize,
        pool: usize,
    ) -> Result<Self> {
        let two = |name: &str, red: usize, out: usize| -> Result<Sequential> {
            let v = vb.pp(name);
            let mut s = Sequential::new();
            s.push(BasicConv2d::new(v.pp("0"), cin, red, 1, 1, 0)?);
            s.push(BasicConv2d::new(v.pp("1"), red, out, 3, 1, 1)?);
            Ok(s)
        };
        let mut b4 = Sequential::new();
        b4.push(Pool2d::max(3, 1).padding(1).ceil());
        b4.push(BasicConv2d::new(
            vb.pp("branch4").pp("1"),
            cin,
            pool,
            1,
            1,
            0,
        )?);
        Ok(Inception {
            branch1: BasicConv2d::new(vb.pp("branch1"), cin, c1, 1, 1, 0)?,
            branches: [two("branch2", c3r, c3)?, two("branch3", c5r, c5)?, b4],
        })
    }
}

impl Layer for Inception {
    fn kind(&self) -> &'static str {
        "Inception"
    }
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut outs = vec![ctx.run("branch1", &self.branch1, x)?];
        for (i, b) in self.branches.iter().enumerate() {
            outs.push(ctx.run(&format!("branch{}", i + 2), b, x)?);
        }
        Ok(Tensor::cat(&outs, 1)?)
    }
    fn children(&self) -> Vec<(String, &dyn Layer)> {
        let mut c: Vec<(String, &dyn Layer)> = vec![("branch1".into(), &self.branch1)];
        for (i, b) in self.branches.iter().enumerate() {
            c.push((format!("branch{}", i + 2), b));
        }
        c
    }
}

/// GoogLeNet for 1000 classes; inputs of at least 32 x 32 (usually 224 x 224).
///
/// ```no_run
/// let net = neuroscope::models::googlenet::googlenet(
///     &neuroscope::models::Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// assert!(net.layer_names().contains(&"inception4a.branch2.1.conv".to_string()));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn googlenet(weights: &Weights, device: &Device) -> Result<Model> {
    Model::build(
        "googlenet",
        InputSpec::flexible(3, 32, 224),
        weights,
        device,
        |vb| {
            let mut net = Sequential::root("GoogLeNet").flatten_before("dropout");
            net.push_named("conv1", BasicConv2d::new(vb.pp("conv1"), 3, 64, 7, 2, 3)?);
            net.push_named("maxpool1", Pool2d::max(3, 2).ceil());
            net.push_named("conv2", BasicConv2d::new(vb.pp("conv2"), 64, 64, 1, 1, 0)?);
            net.push_named("conv3", BasicConv2d::new(vb.pp("conv3"), 64, 192, 3, 1, 1)?);
            net.push_named("maxpool2", Pool2d::max(3, 2).ceil());
            let blocks: [(&str, [usize; 7]); 9] = [
                ("inception3a", [192, 64, 96, 128, 16, 32, 32]),
                ("inception3b", [256, 128, 128, 192, 32, 96, 64]),
                ("inception4a", [480, 192, 96, 208, 16, 48, 64]),
                ("inception4b", [512, 160, 112, 224, 24, 64, 64]),
                ("inception4c", [512, 128, 128, 256, 24, 64, 64]),
                ("inception4d", [512, 112, 144, 288, 32, 64, 64]),
                ("inception4e", [528, 256, 160, 320, 32, 128, 128]),
                ("inception5a", [832, 256, 160, 320, 32, 128, 128]),
                ("inception5b", [832, 384, 192, 384, 48, 128, 128]),
            ];
            for (name, [cin, c1, c3r, c3, c5r, c5, pool]) in blocks {
                net.push_named(
                    name,
                    Inception::new(vb.pp(name), cin, c1, c3r, c3, c5r, c5, pool)?,
                );
                match name {
                    "inception3b" => net.push_named("maxpool3", Pool2d::max(3, 2).ceil()),
                    "inception4e" => net.push_named("maxpool4", Pool2d::max(2, 2).ceil()),
                    _ => {}
                }
            }
            net.push_named("avgpool", AdaptiveAvgPool2d { output: (1, 1) });
            net.push_named("dropout", Dropout { p: 0.2 });
            net.push_named(
                "fc",
                Linear::new(vb.pp("fc"), 1024, 1000, InitScheme::Normal(0.01))?,
            );
            Ok(Box::new(net))
        },
    )
}
