//! `neuroscope train`: train an architecture on a dataset (workflow 3's settings by default),
//! with checkpoints, resumption and a history figure.

use crate::io;
use clap::Args;
use neuroscope::data::{remote, Dataset};
use neuroscope::train::{Optimizer, Train};
use neuroscope::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Architecture.
    #[arg(long, default_value = "mnist_cnn")]
    arch: String,
    /// Dataset, optionally with a seeded subset size: mnist, mnist:5000, fashion-mnist,
    /// mnist-10k, cifar10-train, fashion-mnist-68k. `mnist` and `fashion-mnist` use the full
    /// training and test files when cached, otherwise the embedded digits with a held-out
    /// split; `fashion-mnist-68k` (scripts/fetch_fashion_68k.py) is tested on the embedded
    /// 2,000.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Held-out samples when the dataset has no test file.
    #[arg(long, default_value_t = 2000)]
    test: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// sgd or adam.
    #[arg(long, default_value = "sgd")]
    optimizer: Optimizer,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Seed of the initial weights, the split and the shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from these weights instead of random ones.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Comma-separated modules to keep fixed (conv1,conv2).
    #[arg(long)]
    freeze: Option<String>,
    /// Folder for a checkpoint after every epoch.
    #[arg(long)]
    checkpoints: Option<PathBuf>,
    /// Continue from the last checkpoint in --checkpoints.
    #[arg(long)]
    resume: bool,
    /// auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The trained weights (.safetensors, torchvision names).
    #[arg(long)]
    out: PathBuf,
    /// Also write the loss/accuracy figure (.svg or .png).
    #[arg(long)]
    history: Option<PathBuf>,
}

pub(crate) fn check(a: &TrainArgs) -> Result<()> {
    io::check_batch(a.batch_size)?;
    if a.epochs == 0 {
        return Err(Error::InvalidArgument(
            "--epochs 0 would train nothing: give at least 1".into(),
        ));
    }
    if a.resume && a.checkpoints.is_none() {
        return Err(Error::InvalidArgument(
            "--resume needs --checkpoints DIR, the folder to resume from".into(),
        ));
    }
    if let Some(dir) = &a.checkpoints {
        neuroscope::io::output::check_output_dir(dir)?;
    }
    io::check_output(&a.out, &["safetensors"], &[a.weights.as_ref()])?;
    if let Some(h) = &a.history {
        io::check_output(h, &["svg", "png"], &[a.weights.as_ref(), Some(&a.out)])?;
    }
    Ok(())
}

pub(crate) fn run(a: TrainArgs) -> Result<()> {
    let device = io::device(&a.device)?;
    let (name, n) = io::dataset_spec(&a.dataset)?;
    let seed = a.seed;
    // Full files when cached, else the embedded set with a held-out split.
    let full = match name.as_str() {
        "mnist" | "fashion-mnist" => remote::by_name(&format!("{name}-train"))
            .and_then(|tr| Ok((tr, remote::by_name(&format!("{name}-test"))?)))
            .ok(),
        // fashion_cnn's shipped weights: the npm images not embedded, tested on the
        // embedded 2,000 (a missing cache is an error, not a silent fall-back).
        "fashion-mnist-68k" => Some((
            remote::by_name("fashion-mnist-68k")?,
            remote::by_name("fashion-mnist-2k")?,
        )),
        _ => None,
    };
    let (train_set, test_set) = match full {
        Some((tr, te)) => {
            eprintln!(
                "training on {} ({} images), testing on {} ({})",
                tr.name(),
                tr.len(),
                te.name(),
                te.len()
            );
            let tr = match n {
                Some(n) => tr.subset(n, seed)?,
                None => tr.clone().take(tr.len()),
            };
            (tr, te.clone().take(te.len()))
        }
        None => {
            let embedded_name = match name.as_str() {
                "mnist" => "mnist-10k".to_string(),
                "fashion-mnist" => "fashion-mnist-2k".to_string(),
                other => other.to_string(),
            };
            let ds = remote::by_name(&embedded_name)?;
            let base: Vec<usize> = match n {
                Some(n) => ds.clone().subset(n, seed)?.indices().to_vec(),
                None => (0..ds.len()).collect(),
            };
            let (tr, te) = neuroscope::train::split_indices(base.len(), a.test, seed)?;
            let tr = ds.clone().select(tr.iter().map(|&i| base[i]).collect())?;
            let te = ds.select(te.iter().map(|&i| base[i]).collect())?;
            eprintln!(
                "training on {} of {} ({} images), testing on {} held out (seed {seed})",
                tr.len(),
                embedded_name,
                tr.len(),
                te.len()
            );
            (tr, te)
        }
    };
    let net = io::load_model(&a.arch, a.weights, seed, &device)?;
    let opt = match a.optimizer {
        Optimizer::Sgd {
            nesterov,
            weight_decay,
            ..
        } => Optimizer::Sgd {
            momentum: a.momentum,
            nesterov,
            weight_decay,
        },
        o => o,
    };
    let freeze = a.freeze.as_deref().map(io::list).unwrap_or_default();
    let freeze: Vec<&str> = freeze.iter().map(String::as_str).collect();
    let mut cfg = Train::new()
        .optimizer(opt)
        .lr(a.lr)
        .epochs(a.epochs)
        .batch_size(a.batch_size)
        .seed(seed)
        .freeze(&freeze)
        .resume(a.resume);
    if let Some(dir) = a.checkpoints {
        cfg = cfg.checkpoints(dir);
    }
    let trained = cfg.fit(&net, &train_set, Some(&test_set))?;
    trained.model.save(&a.out)?;
    if let Some(h) = a.history {
        trained.history().figure().save(&h)?;
        println!("wrote {}", h.display());
    }
    for e in &trained.history().epochs {
        println!(
            "epoch {}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}% ({:.1} s)",
            e.epoch,
            e.train_loss,
            e.test_loss.unwrap_or(f64::NAN),
            100.0 * e.test_accuracy.unwrap_or(f64::NAN),
            e.seconds
        );
    }
    println!("wrote {}", a.out.display());
    Ok(())
}
