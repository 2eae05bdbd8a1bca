//! Vision transformers beyond parity (issue 29): token reductions, attention weights and
//! rollout, gradients to the input for attribution and feature visualisation, the CLI.
//! (Every module's output against torchvision: tests/parity.rs.)

use candle_core::{Device, Tensor};
use neuroscope::attribution::{AttentionRollout, Saliency};
use neuroscope::featvis::{FeatVis, Objective};
use neuroscope::models::{load, Model, Weights};
use neuroscope::record::{Recorder, Reduce};
use std::sync::OnceLock;

/// vit_b_32 with seeded random weights (the cheapest of the three at 224 px: 50 tokens).
fn vit() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| load("vit_b_32", &Weights::Random { seed: 1 }, &Device::Cpu).unwrap())
}

fn images(n: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (n, 3, 224, 224), &Device::Cpu).unwrap()
}

#[test]
fn tokens_reduce_to_the_class_token_or_their_mean_and_attention_is_recordable() {
    let net = vit();
    let block = "encoder.layers.encoder_layer_3";
    let attn = "encoder.layers.encoder_layer_3.self_attention.attn_weights";
    assert!(
        net.layer_names().iter().any(|n| n == attn),
        "the tap is listed with the layers"
    );
    let x = images(2);
    let full = Recorder::new(net)
        .layers(&[block, attn])
        .reduce(Reduce::None)
        .run_tensor(&x)
        .unwrap();
    let tokens = full.layer(block).unwrap();
    assert_eq!(tokens.shape(), &[2, 50, 768]);
    let probs = full.layer(attn).unwrap();
    assert_eq!(probs.shape(), &[2, 12, 50, 50]);
    // every row of attention probabilities sums to 1
    for row in probs.lanes(ndarray::Axis(3)) {
        assert!((row.sum() - 1.0).abs() < 1e-4);
    }
    let cls = Recorder::new(net)
        .layers(&[block])
        .reduce(Reduce::ClassToken)
        .run_tensor(&x)
        .unwrap();
    let mean = Recorder::new(net)
        .layers(&[block])
        .reduce(Reduce::TokenMean)
        .run_tensor(&x)
        .unwrap();
    let (c, m) = (cls.layer(block).unwrap(), mean.layer(block).unwrap());
    assert_eq!((c.shape(), m.shape()), (&[2, 768][..], &[2, 768][..]));
    for i in 0..2 {
        for d in [0, 100, 767] {
            assert_eq!(c[[i, d]], tokens[[i, 0, d]]);
            let want: f32 = (0..50).map(|t| tokens[[i, t, d]]).sum::<f32>() / 50.0;
            assert!((m[[i, d]] - want).abs() < 1e-4 * want.abs().max(1.0));
        }
    }
}

#[test]
fn attention_rollout_is_a_distribution_over_patches() {
    let r = AttentionRollout::new()
        .attribute(vit(), &images(2))
        .unwrap();
    assert_eq!(r.values.dims(), &[2, 1, 7, 7]);
    let v = r.values.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|&p| p >= 0.0));
    for img in v.chunks(49) {
        // the class token's row of a product of row-stochastic matrices: patches and the class
        // token itself share 1
        let s: f32 = img.iter().sum();
        assert!(s > 0.0 && s < 1.0, "{s}");
    }
    let cnn = load("mnist_cnn", &Weights::Trained, &Device::Cpu).unwrap();
    let x = Tensor::zeros((1, 1, 28, 28), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = AttentionRollout::new()
        .attribute(&cnn, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("vision transformer"), "{e}");
}

#[test]
fn gradients_reach_the_input_for_attribution_and_feature_visualisation() {
    let net = vit();
    // torchvision starts the head at zero, so random weights give zero logits and no saliency;
    // the parity fixture's weights (a random head) where they are made
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/generated/vit_b_32.safetensors");
    if file.exists() {
        let fixture = load("vit_b_32", &Weights::File(file), &Device::Cpu).unwrap();
        let s = Saliency::new().attribute(&fixture, &images(1)).unwrap();
        let v = s.values.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|g| g.is_finite()) && v.iter().any(|&g| g > 0.0));
    } else {
        eprintln!(
            "SKIPPED saliency on vit_b_32: no parity fixture (scripts/make_parity_fixtures.py)"
        );
    }
    // a channel of a token layer is one feature over the patches (a 7 x 7 map here)
    let layer = "encoder.layers.encoder_layer_1";
    let vis = FeatVis::new(Objective::Channel {
        layer: layer.into(),
        channel: 5,
    })
    .steps(8)
    .seed(0)
    .progress(false)
    .run(net)
    .unwrap();
    let h = &vis.history[0];
    assert!(h.loss.iter().all(|l| l.is_finite()));
    assert!(
        h.loss.last().unwrap() < h.loss.first().unwrap(),
        "{:?}",
        h.loss
    );
    assert_eq!(vis.end[0].dims(), &[7, 7]);
}

#[cfg(feature = "cli")]
mod common;

/// The command: `record --arch vit_b_16 --weights W.pth --input X.npy --layers ...
/// --reduce none` (torchvision's random weights from the parity fixtures when they are there,
/// else `--seed`).
#[cfg(feature = "cli")]
#[test]
fn command_line_records_named_modules_of_vit_b_16() {
    let dir = std::env::temp_dir().join(format!("neuroscope-vit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = dir.join("x.npy");
    let arr = ndarray::Array4::<f32>::from_shape_fn((2, 3, 224, 224), |(n, c, h, w)| {
        ((n * 7 + c * 3 + h * 5 + w) % 17) as f32 / 17.0 - 0.5
    });
    neuroscope::io::npy::write(&x, &arr.into_dyn()).unwrap();
    let out = dir.join("acts.safetensors");
    let pth = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/generated/vit_b_16.pth");
    let weights: Vec<String> = if pth.exists() {
        vec!["--weights".into(), pth.to_string_lossy().into_owned()]
    } else {
        vec!["--seed".into(), "0".into()]
    };
    let layers = "encoder.layers.encoder_layer_0.self_attention,encoder.layers.encoder_layer_11,encoder.layers.encoder_layer_5.self_attention.attn_weights,heads.head";
    let mut args = vec!["record", "--arch", "vit_b_16"];
    args.extend(weights.iter().map(String::as_str));
    let (xs, os) = (
        x.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    args.extend([
        "--input", &xs, "--layers", layers, "--reduce", "none", "--out", &os,
    ]);
    let (ok, text) = common::neuroscope(&args);
    assert!(ok, "{text}");
    let rec = neuroscope::record::Recording::load_safetensors(&out).unwrap();
    assert_eq!(
        rec.layer("encoder.layers.encoder_layer_11")
            .unwrap()
            .shape(),
        &[2, 197, 768]
    );
    assert_eq!(
        rec.layer("encoder.layers.encoder_layer_5.self_attention.attn_weights")
            .unwrap()
            .shape(),
        &[2, 12, 197, 197]
    );
    assert_eq!(rec.layer("heads.head").unwrap().shape(), &[2, 1000]);
    // a wrong input size is refused before work, naming the size the network takes
    let bad = dir.join("bad.npy");
    neuroscope::io::npy::write(&bad, &ndarray::ArrayD::<f32>::zeros(vec![1, 3, 64, 64])).unwrap();
    let bs = bad.to_string_lossy().into_owned();
    let (ok, text) = common::neuroscope(&[
        "record",
        "--arch",
        "vit_b_16",
        "--seed",
        "0",
        "--input",
        &bs,
        "--layers",
        "heads.head",
        "--out",
        &dir.join("b.safetensors").to_string_lossy(),
    ]);
    assert!(!ok && text.contains("224"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `all_layers` records every module the forward pass runs and leaves out those it never runs,
/// as PyTorch's hooks would (EfficientNet's first block has a `stochastic_depth` but no residual
/// connection); asked for by name, such a module is an error that says why.
#[test]
fn all_layers_leaves_out_modules_the_forward_pass_never_runs() -> neuroscope::Result<()> {
    let net = load(
        "efficientnet_b0",
        &Weights::Random { seed: 0 },
        &Device::Cpu,
    )?;
    let idle = "features.1.0.stochastic_depth";
    assert!(net.layer_names().iter().any(|n| n == idle));
    let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu)?;
    let rec = Recorder::new(&net)
        .all_layers()
        .reduce(Reduce::SpatialMean)
        .progress(false)
        .run_tensor(&x)?;
    assert!(rec.matrix(idle).is_err(), "{idle} never runs");
    assert!(!rec.layer_names().iter().any(|l| l == idle));
    // the residual blocks' stochastic depth runs, and the classifier's output is there
    assert_eq!(rec.matrix("features.2.1.stochastic_depth")?.nrows(), 2);
    assert_eq!(rec.matrix("classifier.1")?.ncols(), 1000);
    let err = Recorder::new(&net)
        .layers(&[idle])
        .progress(false)
        .run_tensor(&x)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not run it"), "{err}");
    Ok(())
}
