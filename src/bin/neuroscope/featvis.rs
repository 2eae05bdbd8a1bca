//! `neuroscope featvis`: activation maximisation (workflow 5) with a preset recipe.

use crate::io;
use clap::Args;
use neuroscope::featvis::{FeatVis, Objective, Preset};
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct FeatvisArgs {
    /// Architecture (see `neuroscope layers`).
    #[arg(long)]
    arch: String,
    /// Weights: a .safetensors or .pth file (torchvision names), `pretrained` for torchvision's
    /// ImageNet weights, or `trained` for neuroscope's shipped ones; default seeded random
    /// weights.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random weights (without --weights), of the noise and the transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Module to read (see `neuroscope layers --arch A`); not needed for class:K.
    #[arg(long, default_value = "")]
    layer: String,
    /// channel:K, neuron:K, neuron:K:X:Y (row X, column Y), layer, dream or class:K.
    /// channel:A-B optimises channels A..B (B excluded) together, one image each.
    #[arg(long, default_value = "channel:0")]
    objective: String,
    /// Adam steps (preset default: plain 30, lucent 512, mnist 256).
    #[arg(long)]
    steps: Option<usize>,
    /// Learning rate (preset default: plain 10, lucent 0.05, mnist 0.05).
    #[arg(long)]
    lr: Option<f64>,
    /// Image size in pixels (preset default: 128, or the model's fixed size).
    #[arg(long)]
    size: Option<usize>,
    /// plain (workflow 5), lucent (FFT, decorrelated colour, transforms, normalisation) or mnist
    /// (for small networks trained on light strokes on black: low frequencies, dark background).
    #[arg(long, default_value = "plain")]
    preset: Preset,
    /// auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The image (.png of the best image, or a grid for several; .svg too).
    #[arg(long)]
    out: PathBuf,
    /// Also write the per-step history as JSON.
    #[arg(long)]
    history: Option<PathBuf>,
}

pub(crate) fn check(a: &FeatvisArgs) -> Result<()> {
    io::check_output(&a.out, &["png", "svg", "html"], &[a.weights.as_ref()])?;
    if let Some(h) = &a.history {
        io::check_output(h, &["json"], &[a.weights.as_ref(), Some(&a.out)])?;
    }
    Ok(())
}

pub(crate) fn run(a: FeatvisArgs) -> Result<()> {
    let device = io::device(&a.device)?;
    let net = io::load_model(&a.arch, a.weights, a.seed, &device)?;
    if !a.objective.starts_with("class:") && a.layer.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "--layer is required for {}; {}'s modules: {}",
            a.objective,
            a.arch,
            net.layer_names().join(", ")
        )));
    }
    let objectives = Objective::parse_many(&a.objective, &a.layer)?;
    let mut f = FeatVis::each(objectives).seed(a.seed).preset(a.preset);
    if let Some(n) = a.steps {
        f = f.steps(n);
    }
    if let Some(r) = a.lr {
        f = f.lr(r);
    }
    if let Some(px) = a.size {
        f = f.size(px);
    }
    let t0 = std::time::Instant::now();
    let vis = f.run(&net)?;
    let secs = t0.elapsed().as_secs_f64();
    for (i, o) in vis.objectives.iter().enumerate().take(8) {
        let h = &vis.history[i];
        eprintln!(
            "{o}: mean activation {:.4} -> {:.4}, best loss {:.4} at iteration {}",
            h.mean[0],
            h.mean[h.mean.len() - 1],
            vis.best_loss[i],
            vis.best_step[i] + 1
        );
    }
    let steps = vis.history.first().map_or(0, |h| h.loss.len());
    eprintln!(
        "{steps} steps in {secs:.2} s ({:.1} ms per step){}",
        1000.0 * secs / steps.max(1) as f64,
        if vis.interrupted {
            " (interrupted: the best image so far)"
        } else {
            ""
        }
    );
    vis.save(&a.out)?;
    println!("wrote {}", a.out.display());
    if let Some(h) = a.history {
        vis.save_history(&h)?;
        println!("wrote {}", h.display());
    }
    Ok(())
}
