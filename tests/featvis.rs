//! Activation maximisation (issue 8): gradients to the input through 3/2 max pools checked
//! against finite differences, the optimisation's guarantees (monotone rise in the plain
//! setting on a trained network, the best image's activation reproduced by a fresh pass,
//! batched = one by one, seeded), the regularised recipe, figures and errors.

mod common;

use candle_core::{Device, Tensor, Var};
use neuroscope::data::{embedded, Dataset};
use neuroscope::featvis::{Augment, FeatVis, Objective, Param, Preset};
use neuroscope::models::{self, Weights};
use neuroscope::rng::Rng;
use neuroscope::train::Train;

fn random(arch: &str, seed: u64) -> models::Model {
    models::load(arch, &Weights::Random { seed }, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn network_input_gradient_matches_finite_differences() {
    // AlexNet's features.10 sits behind two 3/2 max pools; f64-accumulated finite differences
    // at 12 random pixels against the backward pass.
    let net = random("alexnet", 3);
    // Seeded (candle's own `rand` is not): the same pixels are checked on every run.
    let mut rng = Rng::new(3);
    let x0: Vec<f32> = (0..3 * 67 * 67).map(|_| rng.uniform() as f32).collect();
    let x0 = Tensor::from_vec(x0, (1, 3, 67, 67), &Device::Cpu).unwrap();
    let objective = |x: &Tensor| -> Tensor {
        let acts = net.record(x, &["features.10"]).unwrap();
        acts["features.10"]
            .get(0)
            .unwrap()
            .get(5)
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let xv = Var::from_tensor(&x0).unwrap();
    let g = objective(xv.as_tensor()).backward().unwrap();
    let g = values(g.get(xv.as_tensor()).unwrap());
    let gmax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(gmax > 0.0, "no gradient reached the input");
    let base = values(&x0);
    let mut rng = Rng::new(4);
    let mut checked = 0;
    // Small enough that few pixels move a ReLU or max-pool input across its kink, large enough
    // that float32 rounding of the objective stays far below the tolerance.
    let eps = 0.01f32;
    // The largest-gradient pixels carry the signal; plus random ones (often ~0).
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    let picks: Vec<usize> = order[..6]
        .iter()
        .copied()
        .chain((0..6).map(|_| rng.below(g.len() as u64) as usize))
        .collect();
    for i in picks {
        let eval = |d: f32| {
            let mut v = base.clone();
            v[i] += d;
            let t = Tensor::from_vec(v, (1, 3, 67, 67), &Device::Cpu).unwrap();
            objective(&t).to_scalar::<f32>().unwrap() as f64
        };
        let fd = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
        assert!(
            (fd - g[i] as f64).abs() < 0.03 * gmax as f64,
            "pixel {i}: finite difference {fd:.6}, backward {:.6} (max |grad| {gmax:.6})",
            g[i]
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
}

fn trained_mnist() -> models::Model {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let net = random("mnist_cnn", 1);
    let data = embedded::mnist().subset(3000, 5).unwrap();
    Train::new()
        .optimizer(neuroscope::train::Optimizer::sgd(0.9))
        .epochs(1)
        .seed(1)
        .progress(false)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap()
        .model
}

#[test]
fn plain_objective_rises_monotonically_on_a_trained_network() {
    let net = trained_mnist();
    for objective in [
        Objective::channel("conv2", 7),
        Objective::neuron("fc1", 3),
        Objective::dream("conv1"),
        Objective::class(4),
    ] {
        let vis = FeatVis::new(objective.clone())
            .steps(30)
            .lr(0.01)
            .seed(2)
            .progress(false)
            .run(&net)
            .unwrap();
        let loss = &vis.history[0].loss;
        for s in 1..loss.len() {
            assert!(
                loss[s] < loss[s - 1],
                "{objective}: loss rose at step {s}: {} -> {}",
                loss[s - 1],
                loss[s]
            );
        }
        assert_eq!(vis.best_step[0], 29, "{objective}");
        // The activation rose well above its start.
        assert!(
            loss[29] < loss[0] - 0.1 * loss[0].abs().max(0.1),
            "{objective}: {loss:?}"
        );
    }
}

#[test]
fn best_image_activation_equals_a_fresh_forward_pass() {
    let net = trained_mnist();
    // lr 10 (workflow 5's default) overshoots, so the best image is not the last one.
    let objective = Objective::channel("conv2", 11);
    let vis = FeatVis::new(objective.clone())
        .progress(false)
        .seed(3)
        .run(&net)
        .unwrap();
    let x = vis.images.clone();
    let acts = net.record(&x, &["conv2"]).unwrap();
    let fresh = acts["conv2"].get(0).unwrap().get(11).unwrap();
    let recorded = &vis.best_activation[0];
    let d = (fresh.clone() - recorded)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-4, "best activation differs from a fresh pass by {d}");
    let mean = fresh.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((mean + vis.best_loss[0]).abs() < 1e-4 * (1.0 + mean.abs()));
    let h = &vis.history[0];
    let min_loss = h.loss.iter().copied().fold(f32::INFINITY, f32::min);
    assert_eq!(vis.best_loss[0], min_loss);
    assert_eq!(h.loss[vis.best_step[0]], min_loss);
    // Workflow 5's image: raw pixels (lr 10 leaves [0, 1]); the picture is clamped.
    assert!(vis.is_raw_pixels());
    let img = vis.image(0).unwrap();
    assert!(img.data().iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn batched_channels_match_one_by_one_runs_and_seeds_reproduce() {
    let net = random("alexnet", 1);
    let run = |f: FeatVis| {
        f.steps(4)
            .lr(0.05)
            .size(67)
            .progress(false)
            .run(&net)
            .unwrap()
    };
    let batch = run(FeatVis::channels("features.8", 0..4).seed(10));
    assert_eq!(batch.images.dims(), &[4, 3, 67, 67]);
    let single = run(FeatVis::new(Objective::channel("features.8", 2)).seed(12));
    let a = values(&batch.images.get(2).unwrap());
    let b = values(&single.images.get(0).unwrap());
    let d = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        d < 1e-4,
        "batched image 2 differs from its single run by {d}"
    );
    // Same seed, same bytes; another seed, another image.
    let again = run(FeatVis::channels("features.8", 0..4).seed(10));
    assert_eq!(values(&batch.images), values(&again.images));
    assert_eq!(batch.history, again.history);
    let other = run(FeatVis::channels("features.8", 0..4).seed(11));
    assert_ne!(values(&batch.images), values(&other.images));
}

#[test]
fn lucent_recipe_regularises_and_stays_in_range() {
    let net = random("alexnet", 2);
    let f = FeatVis::lucent(Objective::channel("features.6", 1))
        .steps(6)
        .size(64)
        .seed(5)
        .progress(false)
        .total_variation(1e-4)
        .l2(1e-3);
    let vis = f.clone().run(&net).unwrap();
    assert!(!vis.is_raw_pixels());
    let px = values(&vis.images);
    assert!(
        px.iter().all(|v| *v > 0.0 && *v < 1.0),
        "sigmoid keeps pixels in (0, 1)"
    );
    // The loss includes the penalties: different from the objective alone.
    let plain = f.total_variation(0.0).l2(0.0).run(&net).unwrap();
    assert_ne!(vis.history[0].loss, plain.history[0].loss);
    // Reproducible with the transforms' randomness.
    let again = FeatVis::lucent(Objective::channel("features.6", 1))
        .steps(6)
        .size(64)
        .seed(5)
        .progress(false)
        .total_variation(1e-4)
        .l2(1e-3)
        .run(&net)
        .unwrap();
    assert_eq!(values(&vis.images), values(&again.images));
    // With zero initial coefficients the FFT image is exactly grey (sigmoid(0) = 0.5).
    let grey = FeatVis::new(Objective::channel("features.6", 1))
        .param(Param::Fft {
            sd: 0.0,
            decay_power: 1.0,
            decorrelate: true,
        })
        .steps(1)
        .size(64)
        .progress(false)
        .run(&net)
        .unwrap();
    assert!(values(&grey.images).iter().all(|v| *v == 0.5));
    // Every transform keeps gradients flowing to the image.
    for t in [
        Augment::Jitter(4),
        Augment::Scale(vec![1.1]),
        Augment::Rotate(vec![7.0]),
        Augment::Blur(1.0),
        Augment::Pad { px: 3, value: 0.5 },
        Augment::Resize(80),
    ] {
        let v = FeatVis::new(Objective::channel("features.6", 1))
            .transforms(vec![t.clone()])
            .lr(0.05)
            .steps(2)
            .size(64)
            .progress(false)
            .run(&net)
            .unwrap();
        let h = &v.history[0].loss;
        assert_ne!(h[0], h[1], "{t:?}: the image did not change");
    }
}

#[test]
fn rotation_and_resize_resample_correctly() {
    // A 90-degree rotation of a 5x5 ramp is an exact permutation.
    let x = Tensor::arange(0f32, 25.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 5, 5))
        .unwrap();
    let mut rng = Rng::new(0);
    let r = Augment::Rotate(vec![90.0]).apply(&x, &mut rng).unwrap();
    let got = values(&r);
    // Each output equals some input at the rotated position (either direction of rotation).
    let src = values(&x);
    let cw: Vec<f32> = (0..25).map(|i| src[(4 - i % 5) * 5 + i / 5]).collect();
    let ccw: Vec<f32> = (0..25).map(|i| src[(i % 5) * 5 + 4 - i / 5]).collect();
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-4);
    assert!(close(&got, &cw) || close(&got, &ccw), "{got:?}");
    let up = neuroscope::featvis::resize(&x, 9, 9).unwrap();
    let v = values(&up);
    assert_eq!((v[0], v[80]), (0.0, 24.0));
    assert!((v[1] - 0.5).abs() < 1e-6);
}

#[test]
fn figures_show_the_grid_history_and_activations() {
    let net = random("mnist_cnn", 4);
    let vis = FeatVis::channels("conv2", 0..16)
        .steps(3)
        .lr(0.05)
        .progress(false)
        .run(&net)
        .unwrap();
    let svg = vis.figure().to_svg().unwrap();
    assert_eq!(svg.matches("<image").count(), 16, "one picture per channel");
    assert!(svg.contains("channel 15"));
    assert!(svg.contains("Feature visualisation"));
    let hist = vis.history_figure(3).unwrap().to_svg().unwrap();
    for s in ["mean", "max", "min", "loss", "iteration"] {
        assert!(hist.contains(s), "history figure lacks {s}");
    }
    let act = vis.activations_figure(0).unwrap().to_svg().unwrap();
    assert!(act.contains("Start activations") && act.contains("End activations"));
    assert_eq!(act.matches("<image").count(), 2);
    let png = vis.figure().to_png().unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let json: serde_json::Value = serde_json::from_str(&vis.history_json()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 16);
    assert_eq!(json[0]["loss"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_requests_give_clear_errors() {
    let net = random("mnist_cnn", 5);
    let run = |o: Objective| {
        FeatVis::new(o)
            .steps(1)
            .progress(false)
            .run(&net)
            .unwrap_err()
            .to_string()
    };
    let e = run(Objective::channel("conv9", 0));
    assert!(
        e.contains("conv9") && e.contains("conv2") && e.contains("fc1"),
        "{e}"
    );
    let e = run(Objective::channel("conv2", 50));
    assert!(e.contains("50") && e.contains("0..50"), "{e}");
    let e = run(Objective::Neuron {
        layer: "conv2".into(),
        channel: 0,
        at: Some((30, 1)),
    });
    assert!(e.contains("outside") && e.contains("8 x 8"), "{e}");
    let e = run(Objective::class(10));
    assert!(e.contains("10 outputs"), "{e}");
    // ImageNet's three channel statistics on a one-channel network (the Lucent preset itself
    // uses the network's own, MNIST's here).
    let e = FeatVis::lucent(Objective::channel("conv2", 0))
        .normalize(Some(neuroscope::data::Normalize::imagenet()))
        .run(&net)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 means") && e.contains("mnist_cnn takes 1 channel"),
        "{e}"
    );
    let e = FeatVis::each(vec![]).run(&net).unwrap_err().to_string();
    assert!(e.contains("no objective"), "{e}");
    assert!(Preset::parse("x").is_err());
    let e = Objective::parse("neuron:1:2", "conv2")
        .unwrap_err()
        .to_string();
    assert!(e.contains("neuron:K:X:Y"), "{e}");
}

/// `neuroscope featvis` writes the grid and the history for a channel range, and an unknown
/// layer fails with the list of valid ones.
#[cfg(feature = "cli")]
#[test]
fn cli_featvis_writes_image_and_history() {
    let dir = std::env::temp_dir().join(format!("neuroscope-cli-featvis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, json) = (dir.join("grid.png"), dir.join("history.json"));
    let run = |args: &[&str]| common::neuroscope(&[&["featvis"], args].concat());
    let (ok, text) = run(&[
        "--arch",
        "mnist_cnn",
        "--layer",
        "conv2",
        "--objective",
        "channel:0-4",
        "--steps",
        "3",
        "--lr",
        "0.05",
        "--out",
        png.to_str().unwrap(),
        "--history",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("mean activation") && text.contains("ms per step"),
        "{text}"
    );
    let img = image::open(&png).unwrap();
    assert!(img.width() > 100 && img.height() > 100);
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let entries = h.as_array().expect("one history per objective");
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["loss"].as_array().unwrap().len(), 3);
    let (ok, text) = run(&[
        "--arch",
        "mnist_cnn",
        "--layer",
        "conv9",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("conv9") && text.contains("conv2"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A loss that is NaN from the first step (a NaN weight in a sum of objectives) still returns
/// a result, never a panic: the first step's image is kept.
#[test]
fn nan_loss_keeps_the_first_image() {
    let net = random("cifar_cnn", 0);
    let vis = FeatVis::new(
        Objective::channel("block1.0", 0).plus(f32::NAN, Objective::channel("block1.0", 1)),
    )
    .steps(2)
    .progress(false)
    .run(&net)
    .unwrap();
    assert!(!vis.best_loss[0].is_finite(), "{}", vis.best_loss[0]);
    assert_eq!(vis.best_step[0], 0);
    assert_eq!(vis.image(0).unwrap().shape(), (3, 32, 32));
}
