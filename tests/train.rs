//! Training: the seed-3 network learns the embedded digits; save, load and continue equals
//! training straight through; frozen layers stay put; predictions and bad input.

use neuroscope::data::{embedded, Dataset};
use neuroscope::models::{self, Weights};
use neuroscope::train::{predict, split, Optimizer, Train};
use std::collections::HashMap;

fn cpu() -> neuroscope::device::Device {
    neuroscope::device::Device::Cpu
}

fn weights(m: &models::Model) -> HashMap<String, Vec<f32>> {
    m.state_dict()
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// Workflow 3's network (weights seed 1) after one epoch of SGD lr 0.01, momentum 0.9, batch 64,
/// seed 1, on the embedded digits but `held` held out (seeded split), tested on those: the run
/// and the held-out digits.
fn seed3_one_epoch(
    held: usize,
) -> (
    neuroscope::train::Trained,
    neuroscope::data::Subset<std::sync::Arc<neuroscope::data::InMemory>>,
) {
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &cpu()).unwrap();
    let (train, test) = split(embedded::mnist(), held, 0).unwrap();
    let trained = Train::new()
        .optimizer(Optimizer::sgd(0.9))
        .lr(0.01)
        .epochs(1)
        .batch_size(64)
        .seed(1)
        .progress(false)
        .fit(&net, &train, Some(&test))
        .unwrap();
    (trained, test)
}

#[test]
fn seed3_network_learns_the_embedded_digits() {
    // Workflow 3's network and batch size, SGD lr 0.01 with momentum 0.9, one epoch over 8000
    // embedded digits, tested on the 2000 held out (seeded split).
    let (trained, test) = seed3_one_epoch(2000);
    let e = &trained.history().epochs[0];
    let acc = e.test_accuracy.unwrap();
    eprintln!(
        "one epoch: train loss {:.4}, test accuracy {acc:.4}",
        e.train_loss
    );
    // PyTorch with the same settings on a seeded 8,000 / 2,000 split of the same digits
    // (`DATA=embedded MOMENTUM=0.9 SEED=s python bench/torch_train.py`, seeds 1-4) reaches
    // 0.938-0.948; this run measured 0.930. (Momentum 0, workflow 3's setting, gives 0.81 in
    // PyTorch and 0.75-0.82 here: one epoch of 8,000 digits is too little for 95%.)
    assert!(
        acc >= 0.90,
        "test accuracy {acc} after one epoch (measured 0.930 with seed 1)"
    );
    assert!(e.test_loss.unwrap() < 0.5);
    // The returned model is a plain model: evaluate agrees with the history.
    let (_, acc2) = neuroscope::train::evaluate(&trained.model, &test, 500).unwrap();
    assert!((acc2 - acc).abs() < 1e-9);
    // Predictions on the trained model: confident ones are right, probabilities sum to 1.
    let p = predict(&trained.model, &test.clone().take(300), 100).unwrap();
    assert!((p.accuracy() - 0.85).abs() < 0.1);
    let sure = p.confident_correct(5);
    assert!(sure.iter().all(|q| q.correct() && q.confidence > 0.9));
    let unsure = p.unsure_wrong(5);
    assert!(unsure[0].confidence <= sure[4].confidence);
    assert_eq!(p.items[0].top_k(3).len(), 3);
    assert!(p.describe(0, 2).contains('('));
    assert_eq!(p.confusion().sum() as usize, 300);
    // The history draws.
    let svg = trained.history().figure().to_svg().unwrap();
    assert!(svg.contains("Loss") && svg.contains("Accuracy"));
}

/// Issue 7's figure: >= 95 % on a held-out part of the embedded digits after one epoch of
/// workflow 3's network, batch 64, SGD lr 0.01, with the momentum 0.9 that workflow 3's text adds
/// ("When adding momentum ... momentum = 0.9"), 9,500 digits for training and 500 (5 %) held
/// out. Measured here, weight seeds 1-4: 0.954, 0.956, 0.958, 0.962. PyTorch, the same recipe
/// and split sizes (`DATA=embedded HELD=500 MOMENTUM=0.9 SEED=s python bench/torch_train.py`,
/// its own seeded split): 0.936, 0.956, 0.950, 0.958. Workflow 3's default momentum 0 does not
/// reach it in either (0.81 in PyTorch on 8,000 digits): see the test above.
#[test]
fn seed3_network_reaches_95_percent_on_held_out_embedded_digits() {
    let (trained, _held_out) = seed3_one_epoch(500);
    let acc = trained.history().epochs[0].test_accuracy.unwrap();
    eprintln!("one epoch on 9,500 embedded digits: {acc:.4} on the 500 held out");
    assert!(
        acc >= 0.95,
        "test accuracy {acc} (measured 0.954 with seed 1)"
    );
}

#[test]
fn save_load_continue_equals_training_straight_through() {
    let net = models::load("mnist_cnn", &Weights::Random { seed: 3 }, &cpu()).unwrap();
    let data = embedded::mnist().take(640);
    let cfg = Train::new()
        .optimizer(Optimizer::sgd(0.9))
        .lr(0.02)
        .batch_size(64)
        .seed(7)
        .progress(false);
    let straight = cfg
        .clone()
        .epochs(2)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();

    let dir = std::env::temp_dir().join(format!("ns-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = cfg
        .clone()
        .epochs(1)
        .checkpoints(&dir)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    assert!(dir.join("epoch-1.safetensors").is_file() && dir.join("state.json").is_file());
    // The checkpoint loads as ordinary weights (workflow 3's torch.load / load_state_dict).
    let reloaded = models::load(
        "mnist_cnn",
        &Weights::File(dir.join("epoch-1.safetensors")),
        &cpu(),
    )
    .unwrap();
    assert_eq!(weights(&reloaded), weights(&first.model));
    // Resume: epochs is the total, the history continues.
    let resumed = cfg
        .clone()
        .epochs(2)
        .checkpoints(&dir)
        .resume(true)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    assert_eq!(resumed.history().epochs.len(), 2);
    assert_eq!(resumed.history().epochs[0], first.history().epochs[0]);
    assert_eq!(
        weights(&resumed.model),
        weights(&straight.model),
        "resumed != straight through"
    );
    // Adam too (its moments and step count are in the checkpoint).
    let adam = Train::new()
        .optimizer(Optimizer::adam())
        .lr(1e-3)
        .batch_size(128)
        .seed(2)
        .progress(false);
    let a2 = adam
        .clone()
        .epochs(2)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    let dir2 = dir.join("adam");
    adam.clone()
        .epochs(1)
        .checkpoints(&dir2)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    let a_resumed = adam
        .epochs(2)
        .checkpoints(&dir2)
        .resume(true)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    assert_eq!(
        weights(&a_resumed.model),
        weights(&a2.model),
        "Adam resumed != straight through"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn frozen_layers_stay_put_and_bad_input_is_refused() {
    let net = models::load("mnist_cnn", &Weights::Random { seed: 4 }, &cpu()).unwrap();
    let data = embedded::mnist().take(128);
    let before = weights(&net);
    let t = Train::new()
        .freeze(&["conv1"])
        .lr(0.05)
        .progress(false)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    let after = weights(&t.model);
    assert_eq!(before["conv1.weight"], after["conv1.weight"]);
    assert_eq!(before["conv1.bias"], after["conv1.bias"]);
    assert_ne!(before["fc2.weight"], after["fc2.weight"]);
    assert_ne!(before["conv2.weight"], after["conv2.weight"]);
    // The input model is untouched.
    assert_eq!(before, weights(&net));

    let err = Train::new()
        .freeze(&["conv9"])
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv9") && err.contains("conv1"), "{err}");
    let err = Train::new()
        .lr(-1.0)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning rate"), "{err}");
    let err = split(embedded::mnist(), 0, 0).unwrap_err().to_string();
    assert!(err.contains("test split"), "{err}");
    // Same seed, same weights.
    let t2 = Train::new()
        .freeze(&["conv1"])
        .lr(0.05)
        .progress(false)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    assert_eq!(weights(&t2.model), after);
}

/// Training a network with batch norm updates the trained copy's running statistics and leaves
/// the given network's alone (workflow 4's CIFAR network, on digits made 3 x 32 x 32).
#[test]
fn training_updates_running_statistics_of_the_copy_only() {
    use neuroscope::data::Compose;
    let net = models::load("cifar_cnn", &Weights::Random { seed: 4 }, &cpu()).unwrap();
    let data = embedded::mnist().take(128);
    let tf = Compose::new().resize(32, 32).gray_to_rgb();
    let trained = Train::new()
        .batch_size(64)
        .transform(tf)
        .progress(false)
        .fit(&net, &data, None::<&neuroscope::data::InMemory>)
        .unwrap();
    let buffers = |m: &models::Model| -> Vec<(String, Vec<f32>)> {
        let mut w: Vec<_> = weights_buffers(m);
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    };
    let (given, copy) = (buffers(&net), buffers(&trained.model));
    assert!(!given.is_empty());
    for ((name, g), (_, t)) in given.iter().zip(&copy) {
        if name.ends_with("running_mean") {
            assert!(
                g.iter().all(|&v| v == 0.0),
                "{name}: the given network changed"
            );
            assert!(
                t.iter().any(|&v| v != 0.0),
                "{name}: not updated by training"
            );
        }
    }
}

fn weights_buffers(m: &models::Model) -> Vec<(String, Vec<f32>)> {
    m.state_dict()
        .into_iter()
        .filter(|(k, _)| k.ends_with("running_mean") || k.ends_with("running_var"))
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}
