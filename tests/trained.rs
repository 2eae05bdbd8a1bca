//! The weights neuroscope ships (`Weights::Trained`): the files are the committed ones, they
//! reach their accuracy on images they never saw, and the training command reproduces them.
//!
//! The MNIST tests need the real MNIST (`NEUROSCOPE_MNIST_CACHE`, made by
//! `scripts/fetch_mnist_full.sh`, as in tests/mnist_full.rs); without it they say SKIPPED
//! unless `NEUROSCOPE_REQUIRE_MNIST=1` (set by `.ci/run`).

use neuroscope::data::{embedded, remote, Dataset};
use neuroscope::models::{self, trained, Weights};

fn cpu() -> neuroscope::device::Device {
    neuroscope::device::Device::Cpu
}

/// The real MNIST cache folder, or None (after saying why).
fn mnist_cache() -> Option<std::ffi::OsString> {
    match std::env::var_os("NEUROSCOPE_MNIST_CACHE").filter(|d| !d.is_empty()) {
        Some(d) => Some(d),
        None => {
            assert!(
                !std::env::var("NEUROSCOPE_REQUIRE_MNIST").is_ok_and(|v| v == "1"),
                "NEUROSCOPE_MNIST_CACHE is not set: run scripts/fetch_mnist_full.sh"
            );
            eprintln!("SKIPPED: NEUROSCOPE_MNIST_CACHE not set (bash scripts/fetch_mnist_full.sh)");
            None
        }
    }
}

#[cfg(feature = "download")]
#[test]
fn shipped_files_match_their_checksums() {
    use sha2::Digest;
    for t in trained::TRAINED {
        let hex: String = sha2::Sha256::digest(t.bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, t.sha256.trim(), "{}", t.arch);
        // Small: a few MB in all.
        assert!(
            t.bytes().len() < 4 << 20,
            "{}: {} bytes",
            t.arch,
            t.bytes().len()
        );
    }
}

#[test]
fn fashion_cnn_reaches_its_accuracy_on_the_held_out_embedded_images() {
    let net = models::load("fashion_cnn", &Weights::Trained, &cpu()).unwrap();
    let (_, acc) = neuroscope::train::evaluate(&net, &embedded::fashion_mnist(), 500).unwrap();
    let shipped = trained::find("fashion_cnn").unwrap().test_accuracy;
    assert!(acc >= 0.90, "fashion_cnn: {acc} on the embedded 2,000");
    // The number the summary states is the one measured.
    assert!(
        (acc - shipped).abs() < 1e-9,
        "measured {acc}, stated {shipped}"
    );
    assert!(net
        .summary()
        .unwrap()
        .to_string()
        .contains("Weights: neuroscope's trained weights"));
}

#[test]
fn trained_is_refused_for_networks_without_shipped_weights() {
    let err = models::load("resnet18", &Weights::Trained, &cpu()).unwrap_err();
    assert!(
        err.to_string().contains("mnist_cnn and fashion_cnn"),
        "{err}"
    );
}

#[test]
fn trained_fashion_cnn_clusters_far_better_than_untrained() {
    // The lesson of notebook 01's bonus: the trained network's features separate the classes.
    // Global-average-pooled features of the last stage, k-means into 10, adjusted Rand.
    use neuroscope::analysis::{cluster::KMeans, metrics};
    use neuroscope::record::{Recorder, Reduce};
    let ds = embedded::fashion_mnist();
    let labels: Vec<usize> = ds.labels().unwrap();
    let ari = |w: &Weights| {
        let net = models::load("fashion_cnn", w, &cpu()).unwrap();
        let rec = Recorder::new(&net)
            .layers(&["avgpool"])
            .reduce(Reduce::Flatten)
            .progress(false)
            .run(&ds, &models::default_transform("fashion_cnn"))
            .unwrap();
        let x = rec.matrix("avgpool").unwrap();
        let pred = KMeans::new(10).seed(0).fit(&x).unwrap();
        metrics::adjusted_rand_score(&labels, pred.labels()).unwrap()
    };
    let (trained, untrained) = (ari(&Weights::Trained), ari(&Weights::Random { seed: 0 }));
    eprintln!("adjusted Rand: trained {trained:.3}, untrained {untrained:.3}");
    assert!(
        trained >= untrained + 0.2,
        "trained {trained}, untrained {untrained}"
    );
}

#[test]
fn mnist_cnn_reaches_its_accuracy_on_the_real_test_set() {
    let Some(dir) = mnist_cache() else { return };
    std::env::set_var("NEUROSCOPE_CACHE", &dir);
    let test = remote::by_name("mnist-test").unwrap();
    assert_eq!(test.len(), 10_000);
    let net = models::load("mnist_cnn", &Weights::Trained, &cpu()).unwrap();
    let (_, acc) = neuroscope::train::evaluate(&net, test.as_ref(), 1000).unwrap();
    let shipped = trained::find("mnist_cnn").unwrap().test_accuracy;
    assert!(acc >= 0.985, "mnist_cnn: {acc} on the 10,000 test images");
    assert!(
        (acc - shipped).abs() < 1e-9,
        "measured {acc}, stated {shipped}"
    );
}

/// SHA-256 of the weights after the first epoch of the committed mnist_cnn run (its epoch-1
/// checkpoint; the command of `trained::find("mnist_cnn")` with `--epochs 1`).
#[cfg(all(feature = "cli", feature = "download"))]
const MNIST_EPOCH1_SHA256: &str = include_str!("../weights/mnist_cnn.epoch1.sha256");

#[cfg(all(feature = "cli", feature = "download"))]
#[test]
fn the_training_command_reproduces_the_committed_first_epoch() {
    use sha2::Digest;
    let Some(dir) = mnist_cache() else { return };
    let t = trained::find("mnist_cnn").unwrap();
    let out = std::env::temp_dir().join(format!(
        "neuroscope-epoch1-{}.safetensors",
        std::process::id()
    ));
    let mut args: Vec<String> = t
        .command
        .split_whitespace()
        .skip(2) // "neuroscope train"
        .map(String::from)
        .collect();
    let e = args.iter().position(|a| a == "--epochs").unwrap();
    args[e + 1] = "1".into();
    args.extend(["--out".into(), out.display().to_string()]);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_neuroscope"))
        .arg("train")
        .args(&args)
        .env("NEUROSCOPE_CACHE", &dir)
        .env("NEUROSCOPE_QUIET", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        MNIST_EPOCH1_SHA256.trim(),
        "the first epoch's weights differ"
    );
}

/// The command-line chain: record every layer of the trained and the untrained
/// fashion_cnn on the 2,000 embedded images, embed the pooled features with UMAP, k-means
/// into 10, adjusted Rand against the recorded labels.
#[cfg(feature = "cli")]
#[test]
fn command_line_chain_shows_trained_features_cluster_by_class() {
    let dir = std::env::temp_dir().join(format!("neuroscope-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| -> String {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_neuroscope"))
            .args(args)
            .env("NEUROSCOPE_QUIET", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let ari = |weights: &[&str], name: &str| -> f64 {
        let rec = dir.join(format!("{name}.safetensors"));
        let (emb, km) = (
            dir.join(format!("{name}-umap.npy")),
            dir.join(format!("{name}-km.npy")),
        );
        let rec_s = rec.to_str().unwrap();
        let mut args = vec![
            "record",
            "--arch",
            "fashion_cnn",
            "--dataset",
            "fashion-mnist-2k",
            "--layers",
            "all",
            "--reduce",
            "mean",
            "--device",
            "cpu",
            "--out",
            rec_s,
        ];
        args.extend_from_slice(weights);
        run(&args);
        let layer = format!("{rec_s}:avgpool");
        run(&[
            "embed",
            "--method",
            "umap",
            "--input",
            &layer,
            "--seed",
            "0",
            "--out",
            emb.to_str().unwrap(),
        ]);
        run(&[
            "cluster",
            "--method",
            "kmeans",
            "--n-clusters",
            "10",
            "--seed",
            "0",
            "--input",
            emb.to_str().unwrap(),
            "--out",
            km.to_str().unwrap(),
        ]);
        let labels = format!("{rec_s}:labels");
        let out = run(&[
            "score",
            "--metric",
            "ari",
            "--true",
            &labels,
            "--pred",
            km.to_str().unwrap(),
        ]);
        out.split_whitespace()
            .filter_map(|w| w.parse::<f64>().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no number in {out:?}"))
    };
    let trained = ari(&["--weights", "trained"], "trained");
    let untrained = ari(&["--seed", "0"], "untrained");
    eprintln!("UMAP + k-means adjusted Rand: trained {trained:.3}, untrained {untrained:.3}");
    assert!(
        trained >= untrained + 0.2,
        "trained {trained}, untrained {untrained}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
