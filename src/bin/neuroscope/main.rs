//! The `neuroscope` command line (feature `cli`): a short dispatcher over one file per
//! command family. Each subcommand is a thin wrapper over a library call, so what the CLI does a
//! notebook can do in one line too; names of methods, solvers, presets and objectives are parsed
//! by the library (`FromStr`), so the CLI and a notebook accept the same ones.
//!
//! Every command first checks its arguments and outputs (`check`) and only then works (`run`):
//! a wrong extension, an output that would replace an input, a zero batch size are refused
//! before anything is computed.

mod analysis;
mod atlas;
mod attribute;
mod compare;
mod embed;
mod featvis;
mod info;
mod io;
mod record;
mod train;

use clap::{Parser, Subcommand};
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
    Tour(info::TourArgs),
    /// List an architecture's layers (PyTorch names, types, parameters).
    Layers(info::LayersArgs),
    /// torchsummary's table for an architecture, then its state dict.
    Summary(info::SummaryArgs),
    /// Record layer activations for a dataset or an array into one .safetensors file.
    Record(record::RecordArgs),
    /// Train an architecture (workflow 3's settings by default) and save its weights; a checkpoint
    /// after each epoch in --checkpoints (resumed with --resume).
    Train(train::TrainArgs),
    /// Activation maximisation (workflow 5): optimise an image that excites a neuron, a channel,
    /// a layer or a class, and write the best image (and its history).
    Featvis(featvis::FeatvisArgs),
    /// Attribution maps (captum's saliency, SmoothGrad, integrated gradients, Grad-CAM,
    /// occlusion) of images from a dataset or an array; writes them as .npy (and a figure).
    Attribute(attribute::AttributeArgs),
    /// A unit atlas: DIR/index.html with each channel's feature visualisation, the dataset
    /// images that excite it most and least, and its score histogram.
    Atlas(atlas::AtlasArgs),
    /// PCA of a samples x features matrix: writes the explained variance ratio of every
    /// component (share of the total variance) and prints components needed for 50-99%.
    Pca(analysis::PcaArgs),
    /// Cluster the rows of a matrix; writes int64 labels (-1 = noise).
    Cluster(analysis::ClusterArgs),
    /// Compare two labellings (ari, ami, nmi, homogeneity, completeness, v_measure,
    /// fowlkes_mallows, rand, mi) or score labels on data (silhouette, calinski_harabasz,
    /// davies_bouldin with --data); prints the value.
    Score(analysis::ScoreArgs),
    /// Representational similarity analysis of a recording (from `neuroscope record`):
    /// first-order matrices per layer and the second-order matrix between layers.
    Rsa(analysis::RsaArgs),
    /// A representational dissimilarity matrix (rsatoolbox's estimators): euclidean,
    /// correlation, Mahalanobis or crossnobis over runs; writes conditions x conditions .npy.
    Rdm(compare::RdmArgs),
    /// Compare RDMs with rsatoolbox's measures (corr, spearman, rho-a, tau-a, kendall, cosine,
    /// corr_cov, cosine_cov); prints the value (a matrix for stacks of RDMs).
    CompareRdms(compare::CompareArgs),
    /// Centred kernel alignment of two representations of the same samples; prints the value.
    Cka(compare::CkaArgs),
    /// A cross-validated linear probe (logistic regression, stratified folds); prints the mean
    /// held-out accuracy.
    Probe(compare::ProbeArgs),
    /// Embed the rows of a matrix in 2 or 3 dimensions (t-SNE, UMAP, PCA or another
    /// reduction); writes a float64 N x dims .npy.
    Embed(embed::EmbedArgs),
    /// Print the chosen compute device.
    Device(info::DeviceArgs),
}

fn main() -> ExitCode {
    // Ctrl-C asks the running loop to stop and keep what it has done (a second one quits).
    if let Err(e) = neuroscope::progress::stop_on_ctrl_c() {
        eprintln!("warning: {e}");
    }
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> neuroscope::Result<()> {
    match command {
        Command::Datasets => info::datasets(),
        Command::Tour(a) => info::tour(a),
        Command::Layers(a) => info::layers(a),
        Command::Summary(a) => info::summary(a),
        Command::Device(a) => info::device(a),
        Command::Record(a) => record::check(&a).and_then(|()| record::run(a)),
        Command::Train(a) => train::check(&a).and_then(|()| train::run(a)),
        Command::Featvis(a) => featvis::check(&a).and_then(|()| featvis::run(a)),
        Command::Attribute(a) => attribute::check(&a).and_then(|()| attribute::run(a)),
        Command::Atlas(a) => atlas::check(&a).and_then(|()| atlas::run(a)),
        Command::Pca(a) => analysis::check_pca(&a).and_then(|()| analysis::pca(a)),
        Command::Cluster(a) => analysis::check_cluster(&a).and_then(|()| analysis::cluster(a)),
        Command::Score(a) => analysis::score(a),
        Command::Rsa(a) => analysis::check_rsa(&a).and_then(|()| analysis::rsa(a)),
        Command::Rdm(a) => compare::check_rdm(&a).and_then(|()| compare::rdm(a)),
        Command::CompareRdms(a) => compare::compare_rdms(a),
        Command::Cka(a) => compare::cka(a),
        Command::Probe(a) => compare::probe(a),
        Command::Embed(a) => embed::check(&a).and_then(|()| embed::run(a)),
    }
}
