//! What is there: datasets, the tour, an architecture's layers and summary, the device.

use clap::Args;
use neuroscope::data::{embedded, remote, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::Result;
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct TourArgs {
    /// Folder for index.html (created if missing).
    #[arg(long, default_value = "tour")]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct LayersArgs {
    /// Architecture (alexnet, vgg16_bn, resnet50, mnist_cnn, ...).
    #[arg(long)]
    arch: String,
}

#[derive(Args)]
pub(crate) struct SummaryArgs {
    /// Architecture.
    #[arg(long)]
    arch: String,
    /// Also list the state dict (name and shape of every tensor).
    #[arg(long)]
    state_dict: bool,
}

#[derive(Args)]
pub(crate) struct DeviceArgs {
    /// auto, cpu, cuda, cuda:N, metal
    #[arg(long, default_value = "auto")]
    device: String,
}

pub(crate) fn datasets() -> Result<()> {
    println!("{:<26} {:>7}  {:<10}  source", "name", "images", "shape");
    for ds in [embedded::mnist(), embedded::fashion_mnist()] {
        let (c, h, w) = ds.image_shape();
        println!(
            "{:<26} {:>7}  {:<10}  embedded",
            ds.name(),
            ds.len(),
            format!("{c}x{h}x{w}")
        );
    }
    for r in remote::ALL {
        let state = if r.is_cached() {
            format!("cached in {}", r.dir().display())
        } else if cfg!(feature = "download") {
            "not cached; downloaded on first use".to_string()
        } else {
            "not cached; build with --features download, or place the files yourself".to_string()
        };
        let (n, shape) = match r.name {
            "cifar10" => ("60000", "3x32x32"),
            _ => ("70000", "1x28x28"),
        };
        println!(
            "{:<26} {:>7}  {:<10}  {state}",
            format!("{}-train/-test", r.name),
            n,
            shape
        );
    }
    println!("cache folder: {}", remote::cache_dir().display());
    Ok(())
}

pub(crate) fn tour(a: TourArgs) -> Result<()> {
    neuroscope::io::output::check_output_dir(&a.out)?;
    let page = neuroscope::tour::run(&a.out)?;
    println!("wrote {}", page.display());
    Ok(())
}

fn random(arch: &str) -> Result<models::Model> {
    models::load(
        arch,
        &Weights::Random { seed: 0 },
        &neuroscope::device::Device::Cpu,
    )
}

pub(crate) fn layers(a: LayersArgs) -> Result<()> {
    let net = random(&a.arch)?;
    println!("{:<28} {:<18} {:>12}  details", "name", "type", "params");
    for l in net.layers() {
        let indent = "  ".repeat(l.depth.saturating_sub(1));
        println!(
            "{:<28} {:<18} {:>12}  {}",
            format!("{indent}{}", l.name),
            l.kind,
            l.params,
            l.describe
        );
    }
    let taps: Vec<String> = net
        .layer_names()
        .into_iter()
        .skip(net.layers().len())
        .collect();
    if !taps.is_empty() {
        println!(
            "taps (functional outputs that can be recorded): {}",
            taps.join(", ")
        );
    }
    Ok(())
}

pub(crate) fn summary(a: SummaryArgs) -> Result<()> {
    let net = random(&a.arch)?;
    println!("{}", net.summary()?);
    if a.state_dict {
        println!(
            "model's state_dict:\n{}",
            models::summary::state_dict_listing(&net)
        );
    }
    Ok(())
}

pub(crate) fn device(a: DeviceArgs) -> Result<()> {
    let d = neuroscope::device::parse(&a.device)?;
    println!("{}", neuroscope::device::describe(&d));
    Ok(())
}
