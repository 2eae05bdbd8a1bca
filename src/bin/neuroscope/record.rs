//! `neuroscope record`: layer activations of a dataset or an array into one `.safetensors`
//! file, or streamed to a folder of shards.

use crate::io;
use clap::Args;
use neuroscope::data::{remote, Dataset};
use neuroscope::io::npy;
use neuroscope::models;
use neuroscope::record::{Recorder, Reduce};
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct RecordArgs {
    #[command(flatten)]
    net: io::NetInput,
    /// Comma-separated layer names, or `all`.
    #[arg(long)]
    layers: String,
    /// none, mean (spatial mean), flatten, or for a vision transformer's tokens cls (the class
    /// token) or token_mean.
    #[arg(long, default_value = "none")]
    reduce: Reduce,
    /// Keep this many randomly chosen units per layer (seeded by --seed).
    #[arg(long)]
    subsample: Option<usize>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output file: one f32 tensor per layer, plus `labels` for datasets (.safetensors);
    /// with --shard-samples, a folder of shards.
    #[arg(long)]
    out: PathBuf,
    /// Stream the recording to disk in shards of this many samples (a folder of
    /// shard-NNNNN.safetensors and index.json), keeping one shard in memory: for datasets
    /// larger than memory. Run the same command again to resume an interrupted one.
    #[arg(long)]
    shard_samples: Option<usize>,
}

pub(crate) fn check(a: &RecordArgs) -> Result<()> {
    io::check_batch(a.batch_size)?;
    if a.shard_samples.is_some() && a.net.input.is_some() {
        return Err(Error::InvalidArgument(
            "--shard-samples streams a --dataset; an --input array is already in memory: \
             record it into one .safetensors file"
                .into(),
        ));
    }
    match a.shard_samples {
        Some(0) => Err(Error::InvalidArgument(
            "--shard-samples 0: give at least 1 sample per shard".into(),
        )),
        Some(_) => neuroscope::io::output::check_output_dir(&a.out),
        None => io::check_output(
            &a.out,
            &["safetensors"],
            &[a.net.weights.as_ref(), a.net.input.as_ref()],
        ),
    }
}

pub(crate) fn run(a: RecordArgs) -> Result<()> {
    let device = io::device(&a.device)?;
    if a.net.weights.is_none() {
        eprintln!(
            "no --weights given: using random weights (seed {})",
            a.net.seed
        );
    }
    let net = io::load_model(&a.net.arch, a.net.weights, a.net.seed, &device)?;
    let reduce = match a.subsample {
        Some(n) => Reduce::Subsample {
            n,
            seed: a.net.seed,
        },
        None => a.reduce,
    };
    let names = io::list(&a.layers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rec = Recorder::new(&net).reduce(reduce).batch_size(a.batch_size);
    rec = if names == ["all"] {
        rec.all_layers()
    } else {
        rec.layers(&names)
    };
    let out = a.out;
    let recording = match (a.net.input, a.net.dataset) {
        (Some(x), None) => {
            let arr = npy::read(&x)?;
            let nonfinite = arr.iter().filter(|v| !v.is_finite()).count();
            if nonfinite > 0 {
                eprintln!(
                    "warning: {} holds {nonfinite} NaN or infinite values; the recording will carry them",
                    x.display()
                );
            }
            if arr.ndim() != 4 {
                return Err(Error::Shape {
                    what: x.display().to_string(),
                    expected: "N x C x H x W images (--input takes an image array)".into(),
                    got: format!("{:?}", arr.shape()),
                });
            }
            let t = candle_core::Tensor::from_slice(
                arr.as_standard_layout().as_slice().unwrap_or(&[]),
                arr.shape(),
                &device,
            )?;
            rec.run_tensor(&t)?
        }
        (None, Some(spec)) => {
            let (name, n) = io::dataset_spec(&spec)?;
            let ds = remote::by_name(&name)?;
            let tf = models::default_transform(&a.net.arch);
            if let Some(shard) = a.shard_samples {
                let (done, total) = match n {
                    Some(n) => (
                        rec.run_to_disk(&ds.subset(n, a.net.seed)?, &tf, &out, shard)?,
                        n,
                    ),
                    None => (rec.run_to_disk(&ds, &tf, &out, shard)?, ds.len()),
                };
                if done < total {
                    eprintln!(
                        "interrupted: {done} of {total} samples on disk; run the same command again to resume"
                    );
                }
                println!(
                    "wrote {} ({done} samples in shards of {shard})",
                    out.display()
                );
                return Ok(());
            }
            match n {
                Some(n) => rec.run(&ds.subset(n, a.net.seed)?, &tf)?,
                None => rec.run(&ds, &tf)?,
            }
        }
        _ => {
            return Err(Error::InvalidArgument(
                "give exactly one of --input X.npy or --dataset NAME[:N]".into(),
            ))
        }
    };
    if recording.interrupted() {
        eprintln!(
            "interrupted: keeping the {} samples recorded",
            recording.len()
        );
    }
    recording.save_safetensors(&out)?;
    let mut names: Vec<&String> = recording.layer_names().iter().collect();
    names.sort();
    for k in names {
        println!("{k}: {:?}", recording.layer(k)?.shape());
    }
    println!("wrote {}", out.display());
    Ok(())
}
