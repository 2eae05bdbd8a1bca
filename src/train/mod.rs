//! Training any neuroscope architecture: seeded shuffling, SGD (momentum) or Adam with
//! PyTorch's update rules, a progress bar with the running loss, test accuracy after each
//! epoch, a loss/accuracy history that draws itself, frozen layers, and a checkpoint after every
//! epoch that a later run resumes from (an interrupted run loses at most one epoch).
//!
//! ```
//! use neuroscope::{data::{embedded, Dataset}, models::{self, Weights}, train::{Optimizer, Train}};
//! let device = neuroscope::device::Device::Cpu;
//! let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &device)?;
//! let (train, test) = neuroscope::train::split(embedded::mnist().take(1200), 200, 0)?;
//! let trained = Train::new().optimizer(Optimizer::sgd(0.9)).lr(0.01).epochs(1).batch_size(64)
//!     .seed(1).progress(false).fit(&net, &train, Some(&test))?;
//! let h = trained.history();
//! assert_eq!(h.epochs.len(), 1);
//! assert!(h.epochs[0].test_accuracy.unwrap() > 0.5);   // 1000 digits, one epoch
//! let fig = h.figure();                                  // loss and accuracy curves
//! # Ok::<(), neuroscope::Error>(())
//! ```

pub(crate) mod optim;
pub mod predict;

pub use optim::Optimizer;
pub use predict::{predict, Prediction, Predictions};

use crate::data::{loader::make_batch, Dataset, Subset, Transform};
use crate::models::{self, Model, Weights};
use crate::plot::{Figure, Lines};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A seeded split of `dataset` into a training part and `n_test` held-out samples.
///
/// ```
/// use neuroscope::data::{embedded, Dataset};
/// let (train, test) = neuroscope::train::split(embedded::mnist(), 2000, 0)?;
/// assert_eq!((train.len(), test.len()), (8000, 2000));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn split<D: Dataset + Clone>(
    dataset: D,
    n_test: usize,
    seed: u64,
) -> Result<(Subset<D>, Subset<D>)> {
    let (train, test) = split_indices(dataset.len(), n_test, seed)?;
    Ok((dataset.clone().select(train)?, dataset.select(test)?))
}

/// The index lists behind [`split`]: `0..n` shuffled with `seed`, the last `n_test` held out.
///
/// ```
/// let (train, test) = neuroscope::train::split_indices(10, 3, 0)?;
/// assert_eq!((train.len(), test.len()), (7, 3));
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn split_indices(n: usize, n_test: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if n_test == 0 || n_test >= n {
        return Err(Error::InvalidArgument(format!(
            "a test split of {n_test} from {n} samples leaves nothing to train or test on: choose 1..{}",
            n.saturating_sub(1)
        )));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5eed_5911).shuffle(&mut idx);
    let test = idx.split_off(n - n_test);
    Ok((idx, test))
}

/// One epoch's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy over the epoch (on the batches as they were trained, PyTorch-style).
    pub train_accuracy: f64,
    /// Mean loss on the test set after the epoch (eval mode).
    pub test_loss: Option<f64>,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: Option<f64>,
    /// Seconds the epoch took (training and evaluation).
    pub seconds: f64,
}

/// Loss per logged batch and numbers per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// `(global step, running mean loss since the last log)` every `log_interval` batches.
    pub steps: Vec<(u64, f64)>,
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
}

impl History {
    /// Loss (logged steps, and per epoch on the test set) beside accuracy per epoch.
    pub fn figure(&self) -> Figure {
        let steps_per_epoch = self
            .steps
            .last()
            .map(|s| s.0 as f64 / self.epochs.len().max(1) as f64)
            .unwrap_or(1.0);
        let train: Vec<(f64, f64)> = self.steps.iter().map(|&(s, l)| (s as f64, l)).collect();
        let test: Vec<(f64, f64)> = self
            .epochs
            .iter()
            .filter_map(|e| e.test_loss.map(|l| (e.epoch as f64 * steps_per_epoch, l)))
            .collect();
        let mut loss = Lines::new().points("train (running)", &train);
        if !test.is_empty() {
            loss = loss.points("test", &test).markers(true);
        }
        let per_epoch = |f: &dyn Fn(&EpochStats) -> Option<f64>| -> Vec<(f64, f64)> {
            self.epochs
                .iter()
                .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
                .collect()
        };
        let mut acc = Lines::new()
            .points("train", &per_epoch(&|e| Some(e.train_accuracy)))
            .markers(true);
        let test_acc = per_epoch(&|e| e.test_accuracy);
        if !test_acc.is_empty() {
            acc = acc.points("test", &test_acc);
        }
        let loss = loss.title("Loss").xlabel("step").ylabel("cross-entropy");
        let acc = acc.title("Accuracy").xlabel("epoch").ylabel("accuracy");
        Figure::grid(vec![loss.into(), acc.into()], 2)
            .title("Training history")
            .size(1000, 380)
    }

    /// Renders the history figure inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        self.figure().evcxr_display()
    }
}

/// Training settings (workflow 3's defaults: SGD, lr 0.01, momentum 0, 1 epoch, batch 64,
/// test batch 1000, seed 1, a log line every 100 batches).
#[derive(Clone, Debug)]
pub struct Train {
    optimizer: Optimizer,
    lr: f64,
    epochs: usize,
    batch_size: usize,
    test_batch_size: usize,
    seed: u64,
    log_interval: usize,
    freeze: Vec<String>,
    checkpoints: Option<PathBuf>,
    resume: bool,
    progress: bool,
    transform: Option<std::sync::Arc<crate::data::Compose>>,
}

impl Default for Train {
    fn default() -> Self {
        Train {
            optimizer: Optimizer::sgd(0.0),
            lr: 0.01,
            epochs: 1,
            batch_size: 64,
            test_batch_size: 1000,
            seed: 1,
            log_interval: 100,
            freeze: Vec::new(),
            checkpoints: None,
            resume: false,
            progress: true,
            transform: None,
        }
    }
}

/// The result of [`Train::fit`]: the trained model (plain tensors, ready to record) and its
/// history.
#[derive(Debug)]
pub struct Trained {
    /// The model with the final weights.
    pub model: Model,
    history: History,
}

impl Trained {
    /// Loss and accuracy per step and epoch.
    pub fn history(&self) -> &History {
        &self.history
    }
}

impl Train {
    /// Workflow 3's settings.
    pub fn new() -> Self {
        Self::default()
    }
    /// The optimiser.
    pub fn optimizer(mut self, o: Optimizer) -> Self {
        self.optimizer = o;
        self
    }
    /// Learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Number of passes over the training set.
    pub fn epochs(mut self, e: usize) -> Self {
        self.epochs = e;
        self
    }
    /// Samples per training batch.
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = b; // 0 is refused by `fit`
        self
    }
    /// Samples per evaluation batch.
    pub fn test_batch_size(mut self, b: usize) -> Self {
        self.test_batch_size = b; // 0 is refused by `fit`
        self
    }
    /// Seed of the shuffling and of dropout.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Batches between log lines (and history points).
    pub fn log_interval(mut self, n: usize) -> Self {
        self.log_interval = n.max(1);
        self
    }
    /// Modules whose parameters stay fixed (names or prefixes: `conv1`, `features`), as
    /// setting `requires_grad = False` in PyTorch.
    pub fn freeze(mut self, modules: &[&str]) -> Self {
        self.freeze = modules.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Writes `epoch-N.safetensors` (the state dict, loadable with `Weights::File`),
    /// `epoch-N.optim.safetensors` and `state.json` to `dir` after every epoch.
    pub fn checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoints = Some(dir.into());
        self
    }
    /// Continues from the last checkpoint in the [`checkpoints`](Train::checkpoints) folder
    /// (weights, optimiser state, epoch, history), if there is one; `epochs` is the total.
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }
    /// Shows a progress bar with the running loss (default on).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }
    /// The input transform (default: the architecture's [`models::default_transform`]).
    pub fn transform(mut self, t: crate::data::Compose) -> Self {
        self.transform = Some(std::sync::Arc::new(t));
        self
    }

    /// Trains a copy of `model` on `train`, evaluating on `test` after each epoch.
    pub fn fit<D: Dataset + ?Sized, T: Dataset + ?Sized>(
        &self,
        model: &Model,
        train: &D,
        test: Option<&T>,
    ) -> Result<Trained> {
        crate::kernels::set_up_process();
        if train.is_empty() {
            return Err(Error::InvalidArgument("the training set is empty".into()));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "learning rate {} must be a positive number",
                self.lr
            )));
        }
        if self.epochs == 0 {
            return Err(Error::InvalidArgument(
                "0 epochs would train nothing: give at least 1".into(),
            ));
        }
        if self.batch_size == 0 || self.test_batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch size 0: give at least 1 sample per step".into(),
            ));
        }
        if self.resume && self.checkpoints.is_none() {
            return Err(Error::InvalidArgument(
                "resume needs the checkpoint folder to resume from: set checkpoints(DIR) \
                 (CLI: --checkpoints DIR)"
                    .into(),
            ));
        }
        let device = model.device().clone();
        let arch = model.arch().to_string();
        let default_tf;
        let tf: &dyn Transform = match &self.transform {
            Some(t) => t.as_ref(),
            None => {
                default_tf = models::default_transform(&arch);
                &default_tf
            }
        };
        let valid = model.layer_names();
        for f in &self.freeze {
            if !valid.iter().any(|n| n == f) {
                return Err(Error::unknown("layer to freeze", f, &valid));
            }
        }

        // Start: the model's weights, or the last checkpoint.
        let mut start_epoch = 0;
        let mut history = History::default();
        let mut state = optim::State::new(self.optimizer, self.lr);
        let mut weights: HashMap<String, Tensor> = model.state_dict().into_iter().collect();
        if self.resume {
            if let Some(dir) = &self.checkpoints {
                if let Some(ck) = Checkpoint::latest(dir)? {
                    ck.check_settings(dir, &arch, self)?;
                    weights = crate::models::weights::read_state_dict(&ck.weights)?;
                    // A damaged optimiser state is an error: silently restarting momentum or
                    // Adam's averages would train a different network than the one resumed.
                    let opt = if ck.optim.exists() {
                        crate::models::weights::read_state_dict(&ck.optim)?
                    } else if self.optimizer.has_state() {
                        return Err(Error::InvalidArgument(format!(
                            "{} is missing: the {} optimiser's state of epoch {} cannot be \
                             restored; start again without resume, or restore the file",
                            ck.optim.display(),
                            self.optimizer.name(),
                            ck.epoch
                        )));
                    } else {
                        HashMap::new()
                    };
                    state.load(opt, ck.step);
                    start_epoch = ck.epoch;
                    history = ck.history;
                    if self.progress {
                        println!(
                            "resuming after epoch {} from {}",
                            ck.epoch,
                            ck.weights.display()
                        );
                    }
                }
            }
        }
        let (net, vars) =
            crate::models::weights::load_trainable(&arch, &Weights::Tensors(weights), &device)?;
        let trainable: Vec<(String, Var)> = vars
            .into_iter()
            .filter(|(n, _)| {
                !self
                    .freeze
                    .iter()
                    .any(|f| n == f || n.starts_with(&format!("{f}.")))
            })
            .collect();

        let n = train.len();
        let per_epoch = n.div_ceil(self.batch_size);
        for epoch in start_epoch + 1..=self.epochs {
            let t0 = std::time::Instant::now();
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .shuffle(&mut order);
            let mut bar = self
                .progress
                .then(|| Progress::new(format!("epoch {epoch}/{}", self.epochs), per_epoch));
            let (mut sum, mut count, mut run_sum, mut run_n, mut correct) =
                (0.0, 0usize, 0.0, 0usize, 0usize);
            for (b, chunk) in order.chunks(self.batch_size).enumerate() {
                let batch = make_batch(train, tf, chunk.iter().copied(), &device)?;
                let target = Tensor::new(
                    batch.labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
                    &device,
                )?;
                let step_seed =
                    self.seed ^ ((state.steps() + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
                let out = net.forward_train(&batch.images, step_seed)?;
                let loss = candle_nn::loss::cross_entropy(&out, &target)?;
                let grads = loss.backward()?;
                state.step(&trainable, &grads)?;
                let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                if !l.is_finite() {
                    return Err(Error::InvalidArgument(format!(
                        "the loss became {l} at epoch {epoch}, batch {b}: lower the learning rate ({})",
                        self.lr
                    )));
                }
                correct += count_correct(&out, &batch.labels)?;
                sum += l * chunk.len() as f64;
                count += chunk.len();
                run_sum += l;
                run_n += 1;
                if (b + 1) % self.log_interval == 0 || b + 1 == per_epoch {
                    history.steps.push((state.steps(), run_sum / run_n as f64));
                    run_sum = 0.0;
                    run_n = 0;
                }
                if let Some(bar) = bar.as_mut() {
                    bar.set_message(format!("loss {:.4}", sum / count as f64));
                    bar.inc(1);
                }
            }
            if let Some(bar) = bar.as_mut() {
                bar.finish();
            }
            let (test_loss, test_accuracy) = match test {
                Some(t) if !t.is_empty() => {
                    let (l, a) = evaluate_with(&net, t, tf, self.test_batch_size)?;
                    (Some(l), Some(a))
                }
                _ => (None, None),
            };
            let stats = EpochStats {
                epoch,
                train_loss: sum / count.max(1) as f64,
                train_accuracy: correct as f64 / count.max(1) as f64,
                test_loss,
                test_accuracy,
                seconds: t0.elapsed().as_secs_f64(),
            };
            if self.progress {
                println!(
                    "epoch {epoch}: train loss {:.4}, accuracy {:.2}%{}",
                    stats.train_loss,
                    100.0 * stats.train_accuracy,
                    match (test_loss, test_accuracy) {
                        (Some(l), Some(a)) =>
                            format!("; test loss {l:.4}, accuracy {:.2}%", 100.0 * a),
                        _ => String::new(),
                    }
                );
            }
            history.epochs.push(stats);
            if let Some(dir) = &self.checkpoints {
                Checkpoint::write(dir, epoch, &net, &state, &history, self)?;
            }
        }
        // A model with plain tensors (no gradient tracking) holding the final values.
        let final_weights: HashMap<String, Tensor> = net
            .state_dict()
            .into_iter()
            .map(|(k, t)| Ok((k, t.detach().copy()?)))
            .collect::<Result<_>>()?;
        let model = models::load(&arch, &Weights::Tensors(final_weights), &device)?;
        Ok(Trained { model, history })
    }
}

fn count_correct(out: &Tensor, labels: &[usize]) -> Result<usize> {
    let pred: Vec<u32> = out.argmax(1)?.to_vec1()?;
    Ok(pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p as usize == **l)
        .count())
}

/// Mean cross-entropy and accuracy of `model` on `dataset` (eval mode), with the architecture's
/// default transform.
///
/// ```
/// use neuroscope::{data::{embedded, Dataset}, models::{self, Weights}};
/// let net = models::load("mnist_cnn", &Weights::Random { seed: 0 }, &neuroscope::device::Device::Cpu)?;
/// let (loss, acc) = neuroscope::train::evaluate(&net, &embedded::mnist().take(100), 50)?;
/// assert!(loss > 1.5 && acc < 0.5);   // untrained: near chance
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn evaluate<D: Dataset + ?Sized>(
    model: &Model,
    dataset: &D,
    batch_size: usize,
) -> Result<(f64, f64)> {
    evaluate_with(
        model,
        dataset,
        &models::default_transform(model.arch()),
        batch_size,
    )
}

fn evaluate_with<D: Dataset + ?Sized>(
    model: &Model,
    dataset: &D,
    tf: &dyn Transform,
    batch_size: usize,
) -> Result<(f64, f64)> {
    let (mut loss, mut correct) = (0.0, 0usize);
    let n = dataset.len();
    for start in (0..n).step_by(batch_size.max(1)) {
        let batch = make_batch(
            dataset,
            tf,
            start..(start + batch_size).min(n),
            model.device(),
        )?;
        let target = Tensor::new(
            batch.labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
            model.device(),
        )?;
        let out = model.forward(&batch.images)?.detach();
        let l = candle_nn::loss::cross_entropy(&out, &target)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        loss += l * batch.labels.len() as f64;
        correct += count_correct(&out, &batch.labels)?;
    }
    Ok((loss / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}

/// The files of one epoch's checkpoint.
struct Checkpoint {
    epoch: usize,
    step: u64,
    weights: PathBuf,
    optim: PathBuf,
    history: History,
    /// The settings the run was made with (`arch`, `optimizer`, `lr`, `batch_size`, `seed`),
    /// as far as `state.json` holds them.
    settings: serde_json::Value,
}

impl Checkpoint {
    fn write(
        dir: &Path,
        epoch: usize,
        net: &Model,
        state: &optim::State,
        history: &History,
        cfg: &Train,
    ) -> Result<()> {
        use serde_json::json;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let weights = dir.join(format!("epoch-{epoch}.safetensors"));
        let optim = dir.join(format!("epoch-{epoch}.optim.safetensors"));
        net.save(&weights)?;
        let tensors = state.to_tensors()?;
        if tensors.is_empty() {
            // SGD without momentum has no state; an empty file would not parse.
            let _ = std::fs::remove_file(&optim);
        } else {
            crate::models::weights::save_safetensors(&tensors, &optim)?;
        }
        let epochs: Vec<serde_json::Value> = history
            .epochs
            .iter()
            .map(|e| {
                json!({"epoch": e.epoch, "train_loss": e.train_loss, "train_accuracy": e.train_accuracy,
                       "test_loss": e.test_loss, "test_accuracy": e.test_accuracy, "seconds": e.seconds})
            })
            .collect();
        let doc = json!({
            "epoch": epoch, "arch": net.arch(), "seed": cfg.seed, "batch_size": cfg.batch_size,
            "optimizer": cfg.optimizer.name(), "lr": cfg.lr, "step": state.steps(),
            "steps": history.steps, "epochs": epochs,
        });
        // Written last and atomically: a run killed mid-checkpoint resumes from the previous one.
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, format!("{doc:#}\n")).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join("state.json")).map_err(|e| Error::io(dir, e))
    }

    fn latest(dir: &Path) -> Result<Option<Checkpoint>> {
        let path = dir.join("state.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let bad =
            |what: &str| Error::format(&path, format!("not a neuroscope training state: {what}"));
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let epoch = v["epoch"].as_u64().ok_or_else(|| bad("no epoch"))? as usize;
        let step = v["step"].as_u64().ok_or_else(|| bad("no step"))?;
        let steps = serde_json::from_value(v["steps"].clone()).map_err(|e| bad(&e.to_string()))?;
        let num = |e: &serde_json::Value, k: &str| e[k].as_f64();
        let epochs = v["epochs"]
            .as_array()
            .ok_or_else(|| bad("no epochs"))?
            .iter()
            .map(|e| EpochStats {
                epoch: e["epoch"].as_u64().unwrap_or(0) as usize,
                train_loss: num(e, "train_loss").unwrap_or(f64::NAN),
                train_accuracy: num(e, "train_accuracy").unwrap_or(f64::NAN),
                test_loss: num(e, "test_loss"),
                test_accuracy: num(e, "test_accuracy"),
                seconds: num(e, "seconds").unwrap_or(0.0),
            })
            .collect();
        Ok(Some(Checkpoint {
            epoch,
            step,
            weights: dir.join(format!("epoch-{epoch}.safetensors")),
            optim: dir.join(format!("epoch-{epoch}.optim.safetensors")),
            history: History { steps, epochs },
            settings: v,
        }))
    }

    /// Refuses to resume a run with other settings than it was made with: the continued run
    /// would be neither the old one nor a new one.
    fn check_settings(&self, dir: &Path, arch: &str, cfg: &Train) -> Result<()> {
        let s = &self.settings;
        let mut differ = Vec::new();
        if let Some(a) = s["arch"].as_str().filter(|a| *a != arch) {
            differ.push(format!("architecture {a} (now {arch})"));
        }
        if let Some(o) = s["optimizer"]
            .as_str()
            .filter(|o| *o != cfg.optimizer.name())
        {
            differ.push(format!("optimiser {o} (now {})", cfg.optimizer.name()));
        }
        if let Some(lr) = s["lr"].as_f64().filter(|lr| *lr != cfg.lr) {
            differ.push(format!("learning rate {lr} (now {})", cfg.lr));
        }
        if let Some(b) = s["batch_size"]
            .as_u64()
            .filter(|b| *b as usize != cfg.batch_size)
        {
            differ.push(format!("batch size {b} (now {})", cfg.batch_size));
        }
        if let Some(seed) = s["seed"].as_u64().filter(|seed| *seed != cfg.seed) {
            differ.push(format!("seed {seed} (now {})", cfg.seed));
        }
        if differ.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "the checkpoint in {} was made with {}: resume with the same settings, or train \
             into a new checkpoint folder",
            dir.display(),
            differ.join(", ")
        )))
    }
}
