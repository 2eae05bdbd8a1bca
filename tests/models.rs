//! Model construction, seeded initialisation, inspection, recording and bad input.

use candle_core::{DType, Device, Tensor};
use neuroscope::data::{embedded, transforms::Compose, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::record::{Recorder, Reduce};

fn random(arch: &str, seed: u64) -> models::Model {
    models::load(arch, &Weights::Random { seed }, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[test]
fn parameter_counts_match_torchvision() {
    // Totals printed by torchsummary / sum(p.numel()) for torchvision's models.
    for (arch, total) in [
        ("alexnet", 61_100_840),
        ("resnet18", 11_689_512),
        ("resnet50", 25_557_032),
        ("vgg11", 132_863_336),
        ("mnist_cnn", 431_080),
    ] {
        assert_eq!(
            random(arch, 0).summary().unwrap().total_params,
            total,
            "{arch}"
        );
    }
}

#[test]
fn seeded_init_is_reproducible_and_follows_torchvision_schemes() {
    let a = random("alexnet", 3).state_dict();
    let b = random("alexnet", 3).state_dict();
    let c = random("alexnet", 4).state_dict();
    for ((na, ta), (_, tb)) in a.iter().zip(&b) {
        assert_eq!(
            values(ta),
            values(tb),
            "{na} differs between runs with the same seed"
        );
    }
    assert_ne!(values(&a[0].1), values(&c[0].1));
    // AlexNet: PyTorch's default, uniform in ±1/sqrt(fan_in); fan_in of features.0 is 3*11*11.
    let w = values(&a[0].1);
    let bound = 1.0 / (363f64).sqrt();
    assert!(w.iter().all(|&x| (x as f64).abs() <= bound));
    let (m, s) = mean_std(&w);
    assert!(
        m.abs() < 0.01 * bound && (s - bound / 3f64.sqrt()).abs() < 0.02 * bound,
        "mean {m} std {s}"
    );
    // ResNet: Kaiming normal, fan-out; batch norm 1 and 0.
    let r = random("resnet18", 0).state_dict();
    let conv1 = values(&r.iter().find(|(n, _)| n == "conv1.weight").unwrap().1);
    let (_, s) = mean_std(&conv1);
    let want = (2.0 / (64.0 * 49.0f64)).sqrt();
    assert!((s - want).abs() < 0.03 * want, "std {s} want {want}");
    let bn = values(&r.iter().find(|(n, _)| n == "bn1.weight").unwrap().1);
    assert!(bn.iter().all(|&x| x == 1.0));
    // VGG: linear layers normal(0, 0.01) with zero bias.
    let v = random("vgg11", 0).state_dict();
    let fc = values(
        &v.iter()
            .find(|(n, _)| n == "classifier.6.weight")
            .unwrap()
            .1,
    );
    let (_, s) = mean_std(&fc);
    assert!((s - 0.01).abs() < 0.0005, "std {s}");
    assert!(
        values(&v.iter().find(|(n, _)| n == "classifier.6.bias").unwrap().1)
            .iter()
            .all(|&x| x == 0.0)
    );
}

#[test]
fn unknown_layer_lists_the_valid_names() {
    let net = random("mnist_cnn", 0);
    let x = Tensor::zeros((1, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
    let e = net.record(&x, &["conv3"]).unwrap_err().to_string();
    assert!(e.contains("unknown layer 'conv3'"), "{e}");
    assert!(
        e.contains("conv1, conv2, fc1, fc2, h1, h2, h3, h4, h5, h6"),
        "{e}"
    );
}

#[test]
fn wrong_input_shape_says_the_expected_one() {
    let net = random("mnist_cnn", 0);
    let x = Tensor::zeros((2, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
    let e = net.forward(&x).unwrap_err().to_string();
    assert!(
        e.contains("expected N x 1 x 28 x 28") && e.contains("2 x 3 x 28 x 28"),
        "{e}"
    );
    let alex = random("alexnet", 0);
    let small = Tensor::zeros((1, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let e = alex.forward(&small).unwrap_err().to_string();
    assert!(e.contains("H, W >= 63"), "{e}");
    let flat = Tensor::zeros((3, 224), DType::F32, &Device::Cpu).unwrap();
    assert!(alex
        .forward(&flat)
        .unwrap_err()
        .to_string()
        .contains("N x 3 x H x W"));
}

#[test]
fn recording_stops_early_and_matches_a_full_pass() {
    let net = random("alexnet", 1);
    let x = Tensor::randn(0f32, 1., (2, 3, 96, 96), &Device::Cpu).unwrap();
    let early = net.record(&x, &["features.3"]).unwrap();
    let (_, full) = net
        .forward_with(&x, &["features.3", "classifier.6"])
        .unwrap();
    assert_eq!(values(&early["features.3"]), values(&full["features.3"]));
    assert_eq!(full["classifier.6"].dims(), &[2, 1000]);
    // The recorded conv output is pre-ReLU (it has negative values); the ReLU's is not.
    assert!(values(&early["features.3"]).iter().any(|&v| v < 0.0));
    let relu = net.record(&x, &["features.4"]).unwrap();
    assert!(values(&relu["features.4"]).iter().all(|&v| v >= 0.0));
}

#[test]
fn save_and_load_round_trip() {
    let net = random("cifar_cnn", 5);
    let path = std::env::temp_dir().join(format!("ns-cifar-{}.safetensors", std::process::id()));
    net.save(&path).unwrap();
    let back = models::load("cifar_cnn", &Weights::File(path.clone()), &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1., (2, 3, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(
        values(&net.forward(&x).unwrap()),
        values(&back.forward(&x).unwrap())
    );
    // And a file for another architecture is refused with the key report.
    let e = models::load("mnist_cnn", &Weights::File(path), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Missing key(s) in state_dict (8)") && e.contains("\"conv1.weight\""),
        "{e}"
    );
    assert!(
        e.contains("Unexpected key(s)") && e.contains("block1.1.running_mean"),
        "{e}"
    );
    // A corrupt file names itself.
    let bad = std::env::temp_dir().join(format!("ns-bad-{}.pth", std::process::id()));
    std::fs::write(&bad, b"definitely not a checkpoint").unwrap();
    let e = models::load("mnist_cnn", &Weights::File(bad), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ns-bad-"), "{e}");
}

#[test]
fn recorder_reductions_labels_and_budget() {
    std::env::set_var("NEUROSCOPE_QUIET", "1");
    let net = random("mnist_cnn", 2);
    let ds = embedded::mnist().subset(50, 9).unwrap();
    let tf = models::default_transform("mnist_cnn");
    let rec = Recorder::new(&net)
        .layers(&["conv1", "h4", "fc1"])
        .reduce(Reduce::None)
        .reduce_layer("conv1", Reduce::SpatialMean)
        .reduce_layer("h4", Reduce::Subsample { n: 100, seed: 7 })
        .batch_size(16)
        .keep_images(true)
        .run(&ds, &tf)
        .unwrap();
    assert_eq!((*rec.layer("conv1").unwrap()).shape(), &[50, 20]);
    assert_eq!((*rec.layer("h4").unwrap()).shape(), &[50, 100]);
    assert_eq!((*rec.layer("fc1").unwrap()).shape(), &[50, 500]);
    assert_eq!(rec.labels().unwrap(), ds.labels().unwrap().as_slice());
    assert_eq!(rec.images().unwrap().shape(), &[50, 1, 28, 28]);
    // Values equal a direct forward of the same sample (up to float summation order: a batch
    // of 16 and a batch of 1 take different matrix-multiply blockings).
    let close = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-5 * scale, "max diff {diff} (scale {scale})");
    };
    let (img, _) = ds.get_transformed(17, &tf).unwrap();
    let x = Tensor::from_vec(img.into_data(), (1, 1, 28, 28), &Device::Cpu).unwrap();
    let direct = net.record(&x, &["fc1", "h4"]).unwrap();
    let got: Vec<f32> = rec.matrix("fc1").unwrap().row(17).to_vec();
    close(&got, &values(&direct["fc1"]));
    let h4 = values(&direct["h4"]);
    let units = rec.units("h4").unwrap();
    let sub: Vec<f32> = units.iter().map(|&u| h4[u]).collect();
    close(&rec.matrix("h4").unwrap().row(17).to_vec(), &sub);
    // The same seed picks the same units.
    let again = Recorder::new(&net)
        .layers(&["h4"])
        .reduce(Reduce::Subsample { n: 100, seed: 7 })
        .run(&ds.parent().take(3), &tf)
        .unwrap();
    assert_eq!(again.units("h4").unwrap(), units);
    // A recording over the budget is refused before it starts, with the per-layer sizes.
    let e = Recorder::new(&net)
        .layers(&["conv1"])
        .memory_budget_mb(1)
        .run(&ds, &Compose::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("over the budget") && e.contains("conv1:"), "{e}");
}

#[test]
fn layers_listing_mirrors_named_modules() {
    let names = random("resnet50", 0).layer_names();
    let want_prefix = [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer1.0",
        "layer1.0.conv1",
    ];
    assert_eq!(&names[..7], &want_prefix);
    assert!(names.contains(&"layer2.0.conv3".to_string()));
    assert!(names.contains(&"layer4".to_string()));
    assert_eq!(names.last().unwrap(), "fc");
}

#[test]
fn pretrained_weights_come_from_torch_hubs_cache() {
    let home = std::env::temp_dir().join(format!("ns-torch-home-{}", std::process::id()));
    std::env::set_var("TORCH_HOME", &home);
    if !cfg!(feature = "download") {
        let e = models::load("resnet18", &Weights::Pretrained, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
            "{e}"
        );
        assert!(e.contains("hub/checkpoints"), "{e}");
    }
    // A file already in the cache (as PyTorch leaves it) is used without any download.
    let net = random("mnist_cnn", 0);
    let e = models::load("mnist_cnn", &Weights::Pretrained, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("alexnet") && e.contains("mobilenet_v2"),
        "no pretrained mnist_cnn: {e}"
    );
    let alex = random("alexnet", 8);
    std::fs::create_dir_all(home.join("hub/checkpoints")).unwrap();
    alex.save(home.join("hub/checkpoints/alexnet-owt-7be5be79.pth"))
        .unwrap();
    let loaded = models::load("alexnet", &Weights::Pretrained, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1., (1, 3, 64, 64), &Device::Cpu).unwrap();
    assert_eq!(
        values(&alex.forward(&x).unwrap()),
        values(&loaded.forward(&x).unwrap())
    );
    drop(net);
    std::fs::remove_dir_all(&home).ok();
}

/// Convolutions fused with the batch norm and ReLU after them (when those intermediate
/// outputs are not recorded) give the same output and the same input gradient, bit for bit,
/// as the pass that records every module and so runs each one separately.
#[test]
fn fused_layers_give_the_same_bits_as_separate_ones() {
    use candle_core::Var;
    let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    for (arch, px) in [
        ("alexnet", 63),
        ("resnet18", 32),
        ("resnet50", 32),
        ("googlenet", 32),
        ("mobilenet_v2", 32),
        ("vgg11", 32),
        ("mnist_cnn", 28),
    ] {
        let net = random(arch, 3);
        let spec = net.input_spec();
        let x = Var::from_tensor(
            &Tensor::randn(0f32, 1., (2, spec.channels, px, px), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let fused = net.forward(x.as_tensor()).unwrap();
        let names = net.layer_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (apart, recorded) = net.forward_with(x.as_tensor(), &names).unwrap();
        assert!(recorded.len() > 3, "{arch}: every module recorded");
        assert_eq!(bits(&fused), bits(&apart), "{arch}: outputs");
        let grad = |y: &Tensor| {
            let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            g.get(x.as_tensor()).unwrap().clone()
        };
        assert_eq!(
            bits(&grad(&fused)),
            bits(&grad(&apart)),
            "{arch}: input gradients"
        );
    }
}

/// Training mode updates batch norm's running statistics as PyTorch does: momentum 0.1, the
/// unbiased batch variance, one more batch tracked.
#[test]
fn training_mode_updates_batch_norm_running_statistics() {
    let net = random("resnet18", 2);
    let x = Tensor::randn(0f32, 1., (3, 3, 32, 32), &Device::Cpu).unwrap();
    // bn1's input: conv1's output, the same in either mode
    let h = net.record(&x, &["conv1"]).unwrap()["conv1"].clone();
    let (n, c) = (
        h.dim(0).unwrap() * h.dim(2).unwrap() * h.dim(3).unwrap(),
        h.dim(1).unwrap(),
    );
    let hv = h
        .transpose(0, 1)
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    net.forward_train(&x, 0).unwrap();
    let sd: std::collections::HashMap<String, Tensor> = net.state_dict().into_iter().collect();
    let (rm, rv) = (
        values(&sd["bn1.running_mean"]),
        values(&sd["bn1.running_var"]),
    );
    for ch in 0..c {
        let v: Vec<f64> = hv[ch].iter().map(|&a| a as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!(
            (rm[ch] as f64 - 0.1 * mean).abs() < 1e-5 * (1.0 + mean.abs()),
            "mean {ch}"
        );
        assert!(
            (rv[ch] as f64 - (0.9 + 0.1 * var)).abs() < 1e-5 * (1.0 + var),
            "var {ch}"
        );
    }
    let tracked = sd["bn1.num_batches_tracked"].to_dtype(DType::F64).unwrap();
    assert_eq!(tracked.to_scalar::<f64>().unwrap(), 1.0);
}
