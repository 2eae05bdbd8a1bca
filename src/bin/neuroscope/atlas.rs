//! `neuroscope atlas`: one self-contained HTML page for a layer's channels (feature
//! visualisation, top and bottom dataset images with the channel's map, score histogram).

use crate::io;
use clap::Args;
use neuroscope::data::{remote, Dataset};
use neuroscope::featvis::Atlas;
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct AtlasArgs {
    /// Architecture.
    #[arg(long)]
    arch: String,
    /// Weights: a file, `pretrained`, or `trained`; without it, random weights from --seed.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of random weights, of the dataset subset and of the feature visualisations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The layer (a module with channels and a map; see `neuroscope layers`).
    #[arg(long)]
    layer: String,
    /// A dataset name, optionally with a seeded subset size: fashion-mnist-2k:500.
    #[arg(long)]
    dataset: String,
    /// Channels A-B (B excluded): 0-8 is channels 0 to 7.
    #[arg(long, default_value = "0-8")]
    channels: String,
    /// Images per channel and end.
    #[arg(long, default_value_t = 6)]
    k: usize,
    /// Feature-visualisation steps [default: the preset's].
    #[arg(long)]
    steps: Option<usize>,
    /// auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Folder for index.html (created if missing).
    #[arg(long)]
    out: PathBuf,
}

fn channel_range(spec: &str) -> Result<std::ops::Range<usize>> {
    let bad = || {
        Error::InvalidArgument(format!(
            "--channels {spec}: expected A-B with A < B (0-8 is channels 0 to 7)"
        ))
    };
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.parse::<usize>().map_err(|_| bad())?,
        b.parse::<usize>().map_err(|_| bad())?,
    );
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

pub(crate) fn check(a: &AtlasArgs) -> Result<()> {
    channel_range(&a.channels)?;
    if a.k == 0 {
        return Err(Error::InvalidArgument("--k 0: give at least 1".into()));
    }
    neuroscope::io::output::check_output_dir(&a.out)
}

pub(crate) fn run(a: AtlasArgs) -> Result<()> {
    let device = io::device(&a.device)?;
    let net = io::load_model(&a.arch, a.weights, a.seed, &device)?;
    let (name, n) = io::dataset_spec(&a.dataset)?;
    let ds = remote::by_name(&name)?;
    let ds = match n {
        Some(n) => ds.subset(n, a.seed)?,
        None => ds.clone().take(ds.len()),
    };
    let mut atlas = Atlas::new(&a.layer, channel_range(&a.channels)?)
        .k(a.k)
        .seed(a.seed);
    if let Some(s) = a.steps {
        atlas = atlas.steps(s);
    }
    let page = atlas.run(&net, &ds, &neuroscope::models::default_transform(&a.arch))?;
    std::fs::create_dir_all(&a.out).map_err(|e| {
        Error::InvalidArgument(format!("cannot create the folder {}: {e}", a.out.display()))
    })?;
    let path = a.out.join("index.html");
    page.save(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}
