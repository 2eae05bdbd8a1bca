//! Stopping long work keeps what was done: a stop request (Ctrl-C in the command-line
//! program) ends feature visualisation, recording, t-SNE and UMAP after their current step
//! with a partial result marked as interrupted.
//!
//! The in-process checks are one test: the stop request is process-wide, and a request made
//! for one loop must not be consumed by another test's loop running in parallel.

use ndarray::Array2;
use neuroscope::analysis::embed::{Tsne, Umap};
use neuroscope::data::{embedded, Dataset};
use neuroscope::featvis::{FeatVis, Objective};
use neuroscope::models::{self, Weights};
use neuroscope::progress::{request_stop, take_stop_request};
use neuroscope::record::Recorder;
use neuroscope::rng::Rng;

#[test]
fn a_stop_request_keeps_what_was_done() {
    let cpu = neuroscope::device::Device::Cpu;
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &cpu).unwrap();

    // Feature visualisation: the first step runs, the request ends the run at the second.
    let vis = |steps| {
        FeatVis::new(Objective::channel("conv2", 3))
            .steps(steps)
            .seed(1)
            .progress(false)
            .run(&net)
            .unwrap()
    };
    request_stop();
    let v = vis(20);
    assert!(v.interrupted);
    assert_eq!(v.history[0].loss.len(), 1);
    assert_eq!(v.best_step, vec![0]);
    assert_eq!(v.end.len(), 1, "the last step run gives the end activation");
    assert!(!take_stop_request(), "the loop consumed the request");
    let v = vis(3);
    assert!(!v.interrupted, "a later run is not affected");
    assert_eq!(v.history[0].loss.len(), 3);

    // Recording: the batches done are kept, in order, with their labels.
    let data = embedded::mnist().take(10);
    let tf = models::default_transform("mnist_cnn");
    let rec = || {
        Recorder::new(&net)
            .layers(&["h1", "h5"])
            .batch_size(4)
            .progress(false)
            .run(&data, &tf)
            .unwrap()
    };
    request_stop();
    let part = rec();
    assert!(part.interrupted());
    assert_eq!(part.indices(), vec![0, 1, 2, 3]);
    assert_eq!(part.labels().map(<[usize]>::len), Some(4));
    assert_eq!((*part.layer("h5").unwrap()).shape(), &[4, 500]);
    let full = rec();
    assert!(!full.interrupted());
    assert_eq!((*full.layer("h5").unwrap()).shape(), &[10, 500]);
    let first4 = (*full.layer("h5").unwrap())
        .slice(ndarray::s![..4, ..])
        .to_owned()
        .into_dyn();
    assert_eq!(
        (*part.layer("h5").unwrap()),
        first4,
        "the kept samples are the full run's first four"
    );

    // t-SNE and UMAP: the current embedding after the first iteration / epoch.
    let mut rng = Rng::new(3);
    let x = Array2::from_shape_fn((120, 5), |(i, _)| (i % 3) as f64 * 5.0 + rng.normal());
    request_stop();
    let t = Tsne::new()
        .perplexity(10.0)
        .seed(1)
        .progress(false)
        .fit(&x)
        .unwrap();
    assert!(t.interrupted());
    assert_eq!(t.n_iter(), 1);
    assert_eq!(t.embedding().dim(), (120, 2));
    assert!(t.embedding().iter().all(|v| v.is_finite()));
    request_stop();
    let u = Umap::new().seed(1).progress(false).fit(&x).unwrap();
    assert!(u.interrupted());
    assert_eq!(u.n_epochs(), 1);
    assert!(u.embedding().iter().all(|v| v.is_finite()));
    assert!(!take_stop_request());
}

/// Ctrl-C in `neuroscope featvis` writes the best image so far and the history of the steps
/// done, and exits successfully.
#[cfg(all(unix, feature = "cli"))]
#[test]
fn ctrl_c_in_the_cli_writes_the_best_image_so_far() {
    let dir = std::env::temp_dir().join(format!("neuroscope-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, json) = (dir.join("best.png"), dir.join("history.json"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_neuroscope"))
        .args(["featvis", "--arch", "mnist_cnn", "--layer", "conv2"])
        .args(["--objective", "channel:3", "--steps", "100000000"])
        .arg("--out")
        .arg(&png)
        .arg("--history")
        .arg(&json)
        .env("NEUROSCOPE_QUIET", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(png.is_file() && json.is_file(), "{text}");
    let history = std::fs::read_to_string(&json).unwrap();
    assert!(history.contains("loss"), "{history}");
    std::fs::remove_dir_all(&dir).ok();
}
