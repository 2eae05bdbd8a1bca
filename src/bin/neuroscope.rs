//! The `neuroscope` command line (feature `cli`).
//!
//! Each subcommand is a thin wrapper over a library call, so what the CLI does a notebook can
//! do in one line too.

use clap::{Parser, Subcommand};
use neuroscope::data::{embedded, npy, remote, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::record::{Recorder, Reduce};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "neuroscope",
    version,
    about = "Look inside vision networks: data, models, recordings, analyses, figures."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the embedded datasets and the downloadable ones with their cache state.
    Datasets,
    /// The main job: a guided tour written as DIR/index.html from the embedded data.
    Tour {
        /// Folder for index.html (created if missing).
        #[arg(long, default_value = "tour")]
        out: PathBuf,
    },
    /// List an architecture's layers (PyTorch names, types, parameters).
    Layers {
        /// Architecture (alexnet, vgg16_bn, resnet50, mnist_cnn, ...).
        #[arg(long)]
        arch: String,
    },
    /// torchsummary's table for an architecture, then its state dict.
    Summary {
        /// Architecture.
        #[arg(long)]
        arch: String,
        /// Also list the state dict (name and shape of every tensor).
        #[arg(long)]
        state_dict: bool,
    },
    /// Record layer activations for a dataset or an array into one .safetensors file.
    Record {
        /// Architecture.
        #[arg(long)]
        arch: String,
        /// Weights: a .safetensors or .pth file, or `pretrained` for torchvision's ImageNet
        /// weights from torch hub's cache; without it, random weights from --seed.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Seed for random weights and for the dataset subset.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// An N x C x H x W float32 .npy array, used as it is.
        #[arg(long, conflicts_with = "dataset")]
        input: Option<PathBuf>,
        /// A dataset name, optionally with a seeded subset size: fashion-mnist:1000.
        #[arg(long)]
        dataset: Option<String>,
        /// Comma-separated layer names, or `all`.
        #[arg(long)]
        layers: String,
        /// none, mean (spatial mean) or flatten.
        #[arg(long, default_value = "none")]
        reduce: String,
        /// Keep this many randomly chosen units per layer (seeded by --seed).
        #[arg(long)]
        subsample: Option<usize>,
        /// Samples per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// auto, cpu, cuda, cuda:N, metal.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Output file: one f32 tensor per layer, plus `labels` for datasets.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the chosen compute device.
    Device {
        /// auto, cpu, cuda, cuda:N, metal
        #[arg(long, default_value = "auto")]
        device: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> neuroscope::Result<()> {
    match cli.command {
        Command::Datasets => {
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
                    "not cached; build with --features download, or place the files yourself"
                        .to_string()
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
        }
        Command::Tour { out } => {
            let page = neuroscope::tour::run(&out)?;
            println!("wrote {}", page.display());
        }
        Command::Layers { arch } => {
            let net = models::load(
                &arch,
                &Weights::Random { seed: 0 },
                &neuroscope::device::Device::Cpu,
            )?;
            println!(
                "{:<28} {:<18} {:>12}  {}",
                "name", "type", "params", "details"
            );
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
        }
        Command::Summary { arch, state_dict } => {
            let net = models::load(
                &arch,
                &Weights::Random { seed: 0 },
                &neuroscope::device::Device::Cpu,
            )?;
            println!("{}", net.summary()?);
            if state_dict {
                println!(
                    "model's state_dict:\n{}",
                    models::summary::state_dict_listing(&net)
                );
            }
        }
        Command::Record {
            arch,
            weights,
            seed,
            input,
            dataset,
            layers,
            reduce,
            subsample,
            batch_size,
            device,
            out,
        } => {
            let device = neuroscope::device::parse(&device)?;
            eprintln!("device: {}", neuroscope::device::describe(&device));
            let weights = match weights {
                Some(p) if p.as_os_str() == "pretrained" => Weights::Pretrained,
                Some(p) => Weights::File(p),
                None => {
                    eprintln!("no --weights given: using random weights (seed {seed})");
                    Weights::Random { seed }
                }
            };
            let net = models::load(&arch, &weights, &device)?;
            let mut reduce = Reduce::parse(&reduce)?;
            if let Some(n) = subsample {
                reduce = Reduce::Subsample { n, seed };
            }
            let names: Vec<&str> = layers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let mut rec = Recorder::new(&net).reduce(reduce).batch_size(batch_size);
            rec = if names == ["all"] {
                rec.all_layers()
            } else {
                rec.layers(&names)
            };
            let recording = match (input, dataset) {
                (Some(x), None) => {
                    let a = npy::read(&x)?;
                    let t = candle_core::Tensor::from_slice(
                        a.as_standard_layout().as_slice().unwrap_or(&[]),
                        a.shape(),
                        &device,
                    )?;
                    rec.run_tensor(&t)?
                }
                (None, Some(spec)) => {
                    let (name, n) = match spec.split_once(':') {
                        Some((name, n)) => (
                            name.to_string(),
                            Some(n.parse::<usize>().map_err(|_| {
                                neuroscope::Error::InvalidArgument(format!(
                                    "--dataset {spec}: the part after ':' must be a number"
                                ))
                            })?),
                        ),
                        None => (spec.clone(), None),
                    };
                    let ds = remote::by_name(&name)?;
                    let tf = models::default_transform(&arch);
                    match n {
                        Some(n) => rec.run(&ds.subset(n, seed)?, &tf)?,
                        None => rec.run(&ds, &tf)?,
                    }
                }
                _ => {
                    return Err(neuroscope::Error::InvalidArgument(
                        "give exactly one of --input X.npy or --dataset NAME[:N]".into(),
                    ))
                }
            };
            recording.save_safetensors(&out)?;
            for (k, a) in &recording.data {
                println!("{k}: {:?}", a.shape());
            }
            println!("wrote {}", out.display());
        }
        Command::Device { device } => {
            let d = neuroscope::device::parse(&device)?;
            println!("{}", neuroscope::device::describe(&d));
        }
    }
    Ok(())
}
