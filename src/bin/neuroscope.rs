//! The `neuroscope` command line (feature `cli`).
//!
//! Each subcommand is a thin wrapper over a library call, so what the CLI does a notebook can
//! do in one line too.

use clap::{Parser, Subcommand};
use neuroscope::data::{embedded, remote, Dataset};
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
        Command::Device { device } => {
            let d = neuroscope::device::parse(&device)?;
            println!("{}", neuroscope::device::describe(&d));
        }
    }
    Ok(())
}
