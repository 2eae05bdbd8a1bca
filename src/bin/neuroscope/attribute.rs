//! `neuroscope attribute`: attribution maps (captum's saliency, SmoothGrad, integrated
//! gradients, Grad-CAM, occlusion) of a dataset's images or an array, as `.npy` and a figure.

use crate::io;
use clap::Args;
use neuroscope::attribution::{
    figure, GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerGradCam, Method, Occlusion,
    Saliency, SmoothGrad, Target,
};
use neuroscope::data::{remote, Dataset};
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct AttributeArgs {
    #[command(flatten)]
    net: io::NetInput,
    /// saliency, smoothgrad, integrated-gradients, gradcam, guided-backprop, guided-gradcam or
    /// occlusion.
    #[arg(long)]
    method: Method,
    /// The class to explain for every image [default: each image's predicted class].
    #[arg(long)]
    target: Option<usize>,
    /// Grad-CAM's layer (a module with a spatial map; see `neuroscope layers`).
    #[arg(long)]
    layer: Option<String>,
    /// Integrated gradients' quadrature points (captum's n_steps).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// SmoothGrad's noisy copies (captum's nt_samples).
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// SmoothGrad's noise standard deviation (captum's stdevs).
    #[arg(long, default_value_t = 1.0)]
    noise: f32,
    /// Occlusion's window side in pixels (all channels at once).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Occlusion's stride in pixels.
    #[arg(long, default_value_t = 8)]
    stride: usize,
    /// Grad-CAM at the input's size (nearest, as captum's interpolate) instead of the layer's.
    #[arg(long)]
    upsample: bool,
    /// auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The attributions (.npy, float32): N x C x H x W, Grad-CAM N x 1 x h x w.
    #[arg(long)]
    out: PathBuf,
    /// Also the heatmaps over the images (.svg or .png).
    #[arg(long)]
    figure: Option<PathBuf>,
}

pub(crate) fn check(a: &AttributeArgs) -> Result<()> {
    if a.net.input.is_none() == a.net.dataset.is_none() {
        return Err(Error::InvalidArgument(
            "give exactly one of --input X.npy or --dataset NAME[:N]".into(),
        ));
    }
    let needs_layer = matches!(a.method, Method::GradCam | Method::GuidedGradCam);
    if needs_layer && a.layer.is_none() {
        return Err(Error::InvalidArgument(
            "--method gradcam and guided-gradcam need --layer (a module with a spatial map; `neuroscope layers --arch A` lists them)".into(),
        ));
    }
    if (!needs_layer && a.layer.is_some()) || (a.method != Method::GradCam && a.upsample) {
        return Err(Error::InvalidArgument(
            "--layer is Grad-CAM's (gradcam, guided-gradcam), --upsample gradcam's".into(),
        ));
    }
    io::check_output(
        &a.out,
        &["npy"],
        &[a.net.weights.as_ref(), a.net.input.as_ref()],
    )?;
    if let Some(f) = &a.figure {
        io::check_output(
            f,
            &["svg", "png"],
            &[a.net.weights.as_ref(), a.net.input.as_ref(), Some(&a.out)],
        )?;
    }
    Ok(())
}

pub(crate) fn run(a: AttributeArgs) -> Result<()> {
    let device = io::device(&a.device)?;
    let net = io::load_model(&a.net.arch, a.net.weights.clone(), a.net.seed, &device)?;
    let (x, names) = match (&a.net.input, &a.net.dataset) {
        (Some(p), None) => {
            let arr = neuroscope::io::npy::read(p)?;
            if arr.ndim() != 4 {
                return Err(Error::Shape {
                    what: p.display().to_string(),
                    expected: "N x C x H x W images".into(),
                    got: format!("{:?}", arr.shape()),
                });
            }
            let v: Vec<f32> = arr.iter().copied().collect();
            (
                candle_core::Tensor::from_vec(v, arr.shape(), &device)?,
                Vec::new(),
            )
        }
        (None, Some(spec)) => {
            let (name, n) = io::dataset_spec(spec)?;
            let ds = remote::by_name(&name)?;
            let names = ds.class_names();
            let sub = ds.subset(n.unwrap_or(8), a.net.seed)?;
            let tf = neuroscope::models::default_transform(&a.net.arch);
            let batch = neuroscope::data::batches(&sub, &tf, sub.len(), &device)
                .next()
                .ok_or_else(|| Error::InvalidArgument(format!("--dataset {spec}: no images")))??;
            (batch.images, names)
        }
        _ => {
            return Err(Error::InvalidArgument(
                "give exactly one of --input X.npy or --dataset NAME[:N]".into(),
            ))
        }
    };
    let target = a.target.map_or(Target::Predicted, Target::Class);
    let result = match a.method {
        Method::Saliency => Saliency::new().target(target).attribute(&net, &x)?,
        Method::SmoothGrad => SmoothGrad::new()
            .target(target)
            .samples(a.samples)
            .stdevs(a.noise)
            .seed(a.net.seed)
            .attribute(&net, &x)?,
        Method::IntegratedGradients => IntegratedGradients::new()
            .target(target)
            .n_steps(a.steps)
            .attribute(&net, &x)?,
        Method::GradCam => {
            let layer = a.layer.as_deref().unwrap_or_default();
            let cam = LayerGradCam::new(layer)
                .target(target)
                .attribute(&net, &x)?;
            if a.upsample {
                let (_, _, h, w) = x.dims4()?;
                cam.interpolate(h, w)?
            } else {
                cam
            }
        }
        Method::GuidedBackprop => GuidedBackprop::new().target(target).attribute(&net, &x)?,
        Method::GuidedGradCam => GuidedGradCam::new(a.layer.as_deref().unwrap_or_default())
            .target(target)
            .attribute(&net, &x)?,
        Method::Occlusion => {
            let c = x.dim(1)?;
            Occlusion::new((c, a.window, a.window), (c, a.stride, a.stride))
                .target(target)
                .attribute(&net, &x)?
        }
    };
    let values = result.values.to_dtype(candle_core::DType::F32)?;
    let arr =
        ndarray::ArrayD::from_shape_vec(values.dims(), values.flatten_all()?.to_vec1::<f32>()?)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    neuroscope::io::npy::write(&a.out, &arr)?;
    let explained: Vec<String> = result
        .targets
        .iter()
        .map(|&t| names.get(t).cloned().unwrap_or_else(|| t.to_string()))
        .collect();
    println!(
        "{}: {:?} for classes {}",
        result.method,
        values.dims(),
        explained.join(", ")
    );
    if let Some(d) = &result.delta {
        let worst = d.iter().fold(0f32, |m, v| m.max(v.abs()));
        println!(
            "convergence delta: largest |delta| {worst:.3e} over {} images",
            d.len()
        );
    }
    println!("wrote {}", a.out.display());
    if let Some(f) = a.figure {
        figure(&x, &[&result], &names)?.save(&f)?;
        println!("wrote {}", f.display());
    }
    Ok(())
}
