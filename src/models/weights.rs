//! Where a network's parameters come from: seeded random initialisation following
//! torchvision's schemes, or a PyTorch state dict in `.safetensors` or `.pth`.
//!
//! Both go through one candle `VarBuilder` backend, `Store`, which also remembers every
//! parameter the architecture asked for. That list is the architecture's expected
//! `state_dict()` keys, so a file for another network is refused with the report PyTorch's
//! `load_state_dict` prints: missing keys, unexpected keys, shape conflicts.

use crate::rng::Rng;
use crate::{Error, Result};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{var_builder::SimpleBackend, Init, VarBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The parameters to build a network with.
///
/// ```
/// use neuroscope::models::Weights;
/// let w = Weights::Random { seed: 0 };
/// let f = Weights::File("alexnet.safetensors".into());
/// assert_ne!(format!("{w:?}"), format!("{f:?}"));
/// ```
#[derive(Clone, Debug)]
pub enum Weights {
    /// Seeded random initialisation with the architecture's torchvision scheme (an
    /// "untrained network"). Each parameter's values depend only on the seed and its name.
    Random {
        /// The seed.
        seed: u64,
    },
    /// A state dict: `.safetensors`, or PyTorch `.pth`/`.pt` (a plain state dict, or a
    /// checkpoint dict with a `state_dict` key).
    File(PathBuf),
    /// Tensors already in memory, keyed by state-dict name.
    Tensors(HashMap<String, Tensor>),
    /// torchvision's published ImageNet weights (`IMAGENET1K_V1`), read from torch hub's cache
    /// (`$TORCH_HOME/hub/checkpoints`, default `~/.cache/torch/hub/checkpoints`), so a file
    /// PyTorch already downloaded is reused; with the `download` feature a missing file is
    /// fetched there and checked against the SHA-256 prefix in its name, as torch hub does.
    Pretrained,
    /// The weights neuroscope trained itself and ships inside the crate (no download, no
    /// cache), for `mnist_cnn` (the 60,000 MNIST training images) and `fashion_cnn` (67,998
    /// Fashion-MNIST images, the embedded 2,000 held out); see [`crate::models::trained`].
    ///
    /// ```
    /// use neuroscope::models::{load, Weights};
    /// let net = load("mnist_cnn", &Weights::Trained, &neuroscope::device::Device::Cpu)?;
    /// assert!(net.summary()?.to_string().contains("98."));
    /// assert!(load("resnet50", &Weights::Trained, &neuroscope::device::Device::Cpu).is_err());
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    Trained,
}

/// torchvision's `IMAGENET1K_V1` weight file of each architecture that has one.
pub const PRETRAINED: [(&str, &str); 26] = [
    ("alexnet", "alexnet-owt-7be5be79.pth"),
    ("vgg11", "vgg11-8a719046.pth"),
    ("vgg13", "vgg13-19584684.pth"),
    ("vgg16", "vgg16-397923af.pth"),
    ("vgg19", "vgg19-dcbb9e9d.pth"),
    ("vgg11_bn", "vgg11_bn-6002323d.pth"),
    ("vgg13_bn", "vgg13_bn-abd245e5.pth"),
    ("vgg16_bn", "vgg16_bn-6c64b313.pth"),
    ("vgg19_bn", "vgg19_bn-c79401a0.pth"),
    ("resnet18", "resnet18-f37072fd.pth"),
    ("resnet34", "resnet34-b627a593.pth"),
    ("resnet50", "resnet50-0676ba61.pth"),
    ("resnet101", "resnet101-63fe2227.pth"),
    ("resnet152", "resnet152-394f9c45.pth"),
    ("googlenet", "googlenet-1378be20.pth"),
    ("mobilenet_v2", "mobilenet_v2-b0353104.pth"),
    ("vit_b_16", "vit_b_16-c867db91.pth"),
    ("vit_b_32", "vit_b_32-d86f8d99.pth"),
    ("vit_l_16", "vit_l_16-852ce7e3.pth"),
    ("convnext_tiny", "convnext_tiny-983f1562.pth"),
    ("convnext_small", "convnext_small-0c510722.pth"),
    ("convnext_base", "convnext_base-6075fbad.pth"),
    ("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth"),
    ("efficientnet_b1", "efficientnet_b1_rwightman-bac287d4.pth"),
    ("efficientnet_b2", "efficientnet_b2_rwightman-c35c1473.pth"),
    ("efficientnet_b3", "efficientnet_b3_rwightman-b3899882.pth"),
];

/// torch hub's checkpoint folder: `$TORCH_HOME/hub/checkpoints`, else
/// `$XDG_CACHE_HOME/torch/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints`.
///
/// ```
/// assert!(neuroscope::models::weights::torch_hub_dir().ends_with("hub/checkpoints"));
/// ```
pub fn torch_hub_dir() -> PathBuf {
    crate::io::download::user_cache_dir("TORCH_HOME", "torch")
        .join("hub")
        .join("checkpoints")
}

/// The local path of `arch`'s pretrained weights, downloading them first when the `download`
/// feature is on and they are missing.
///
/// ```no_run
/// let p = neuroscope::models::weights::pretrained_path("alexnet").unwrap();
/// ```
pub fn pretrained_path(arch: &str) -> Result<PathBuf> {
    let file = PRETRAINED
        .iter()
        .find(|(a, _)| *a == arch)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            Error::unknown(
                "architecture with pretrained weights",
                arch,
                PRETRAINED.iter().map(|p| p.0),
            )
        })?;
    let path = torch_hub_dir().join(file);
    if path.is_file() {
        return Ok(path);
    }
    let url = format!("https://download.pytorch.org/models/{file}");
    #[cfg(feature = "download")]
    {
        let hash = file
            .rsplit('-')
            .next()
            .and_then(|h| h.strip_suffix(".pth"))
            .unwrap_or("");
        crate::io::download::fetch(
            &url,
            &path,
            crate::io::download::Check::Sha256Prefix(hash),
            None,
        )?;
        Ok(path)
    }
    #[cfg(not(feature = "download"))]
    Err(Error::WeightsMissing {
        arch: arch.to_string(),
        help: format!(
            "{} does not exist. Enable neuroscope's `download` feature to fetch it, download {url} into {} \
             yourself (PyTorch's torchvision puts it there too), or use Weights::File with a local copy.",
            path.display(),
            torch_hub_dir().display()
        ),
    })
}

/// Reads a state dict from `.safetensors` or PyTorch `.pth`/`.pt`/`.bin`.
///
/// ```no_run
/// let sd = neuroscope::models::weights::read_state_dict("resnet50.pth").unwrap();
/// println!("{} tensors", sd.len());
/// ```
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        ));
    }
    let is_safetensors = std::fs::File::open(path)
        .and_then(|mut f| {
            use std::io::Read;
            let mut head = [0u8; 9];
            f.read_exact(&mut head).map(|_| head)
        })
        .map(|h| h[8] == b'{')
        .unwrap_or(false);
    let tensors: Vec<(String, Tensor)> = if is_safetensors {
        candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::format(path, format!("not a readable safetensors file: {e}")))?
            .into_iter()
            .collect()
    } else {
        let head = std::fs::File::open(path)
            .and_then(|f| {
                use std::io::Read;
                let mut b = Vec::new();
                f.take(4).read_to_end(&mut b).map(|_| b)
            })
            .map_err(|e| Error::io(path, e))?;
        if head.is_empty() {
            return Err(Error::format(path, "the file is empty"));
        }
        if head.len() < 4 || head[..4] != *b"PK\x03\x04" {
            // Not a zip archive: torch.save before PyTorch 1.6 (or with
            // `_use_new_zipfile_serialization=False`) wrote a bare pickle stream.
            return Err(Error::format(
                path,
                "neither safetensors nor a PyTorch (>= 1.6) zip archive. A .pth from PyTorch \
                 before 1.6 uses a legacy format neuroscope cannot read: load it in PyTorch and \
                 save it again with `torch.save(model.state_dict(), \"weights.pth\")`, or as \
                 safetensors (`safetensors.torch.save_file(model.state_dict(), \"w.safetensors\")`)",
            ));
        }
        // A plain state dict, or a training checkpoint that holds one under a usual key.
        let mut found = Vec::new();
        for key in ["state_dict", "model_state_dict", "model", "net"] {
            if let Ok(t) = candle_core::pickle::read_all_with_key(path, Some(key)) {
                if !t.is_empty() {
                    found = t;
                    break;
                }
            }
        }
        if found.is_empty() {
            found = candle_core::pickle::read_all(path).map_err(|e| {
                Error::format(
                    path,
                    format!("a zip archive, but not a PyTorch state dict candle can read: {e}"),
                )
            })?;
        }
        found
    };
    if tensors.is_empty() {
        return Err(Error::format(
            path,
            "the file holds no tensors neuroscope can find: a whole pickled module \
             (`torch.save(model)`) or a checkpoint that keeps its weights under another key. Save \
             the state dict itself: `torch.save(model.state_dict(), \"weights.pth\")`",
        ));
    }
    Ok(tensors.into_iter().collect())
}

/// Saves named tensors as `.safetensors` (loadable by `safetensors.torch.load_file` and then
/// `model.load_state_dict`).
pub fn save_safetensors(tensors: &[(String, Tensor)], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    // (candle's `safetensors::save` writes in place; through a temporary file instead, so a
    // failed write never leaves a truncated file where the previous weights were.)
    let bytes = safetensors::tensor::serialize(map.iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(|e| Error::format(path, format!("cannot write: {e}")))?;
    crate::io::output::write_atomic(path, &bytes)
}

#[derive(Default)]
struct Log {
    requested: Vec<String>,
    missing: Vec<String>,
    mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

/// The `VarBuilder` backend behind every neuroscope model.
pub(crate) struct Store {
    source: Source,
    log: Mutex<Log>,
}

thread_local! {
    /// While a model is built for training ([`load_trainable`]): the parameters created so
    /// far, as candle `Var`s (gradients flow to them; the optimiser updates them in place).
    static TRAINABLE: std::cell::RefCell<Option<Vec<(String, candle_core::Var)>>> =
        const { std::cell::RefCell::new(None) };
}

/// True for buffers (batch-norm statistics) that are state but not trained by gradients.
pub(crate) fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}

/// Builds `arch` with `weights` whose parameters are trainable `Var`s, returned by name (in
/// construction order). A model built by [`crate::models::load`] holds plain tensors, so
/// recording never builds a gradient graph; training uses this one.
pub(crate) fn load_trainable(
    arch: &str,
    weights: &Weights,
    device: &Device,
) -> Result<(crate::models::Model, Vec<(String, candle_core::Var)>)> {
    TRAINABLE.with(|t| *t.borrow_mut() = Some(Vec::new()));
    let model = crate::models::load(arch, weights, device);
    let vars = TRAINABLE
        .with(|t| t.borrow_mut().take())
        .unwrap_or_default();
    Ok((model?, vars))
}

fn maybe_var(name: &str, t: Tensor) -> candle_core::Result<Tensor> {
    TRAINABLE.with(|cell| {
        let mut cell = cell.borrow_mut();
        match cell.as_mut() {
            // Training updates batch norm's running statistics in place: it works on copies,
            // so that the network it was given keeps its own.
            Some(_) if is_buffer(name) => t.copy(),
            None if is_buffer(name) => Ok(t),
            Some(vars) => {
                let v = candle_core::Var::from_tensor(&t)?;
                let out = v.as_tensor().clone();
                vars.push((name.to_string(), v));
                Ok(out)
            }
            None => Ok(t),
        }
    })
}

enum Source {
    Random(u64),
    Tensors(HashMap<String, Tensor>),
}

/// FNV-1a of a parameter name: mixes the name into the seed so that each parameter has its
/// own stream, independent of construction order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn random_tensor(
    init: Init,
    shape: &Shape,
    seed: u64,
    name: &str,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let n = shape.elem_count();
    let mut rng = Rng::new(seed ^ name_hash(name));
    let values: Vec<f32> = match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Uniform { lo, up } => (0..n)
            .map(|_| (lo + (up - lo) * rng.uniform()) as f32)
            .collect(),
        Init::Randn { mean, stdev } => (0..n)
            .map(|_| (mean + stdev * rng.normal()) as f32)
            .collect(),
        Init::Kaiming { .. } => {
            // neuroscope's layers always pass explicit bounds; this is candle's own builders.
            let fan_in: usize = shape.dims().iter().skip(1).product::<usize>().max(1);
            let b = 1.0 / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| (-b + 2.0 * b * rng.uniform()) as f32)
                .collect()
        }
    };
    Ok(Tensor::from_vec(values, shape.clone(), dev)?.to_dtype(dtype)?)
}

struct Backend(Arc<Store>);

impl SimpleBackend for Backend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let store = &self.0;
        let mut log = store.log.lock().unwrap_or_else(|p| p.into_inner());
        log.requested.push(name.to_string());
        let t = match &store.source {
            Source::Random(seed) => random_tensor(h, &s, *seed, name, dtype, dev)
                .map_err(|e| candle_core::Error::Msg(e.to_string())),
            Source::Tensors(map) => match map.get(name) {
                Some(t) if t.dims() == s.dims() => t.to_dtype(dtype)?.to_device(dev),
                Some(t) => {
                    log.mismatched
                        .push((name.to_string(), t.dims().to_vec(), s.dims().to_vec()));
                    Tensor::zeros(s, dtype, dev)
                }
                None => {
                    log.missing.push(name.to_string());
                    Tensor::zeros(s, dtype, dev)
                }
            },
        }?;
        maybe_var(name, t)
    }
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match &self.0.source {
            Source::Tensors(map) => match map.get(name) {
                Some(t) => t.to_dtype(dtype)?.to_device(dev),
                None => Err(candle_core::Error::Msg(format!("no tensor {name}"))),
            },
            Source::Random(_) => Err(candle_core::Error::Msg(format!(
                "no shape known for {name}"
            ))),
        }
    }
    fn contains_tensor(&self, name: &str) -> bool {
        match &self.0.source {
            Source::Tensors(map) => map.contains_key(name),
            Source::Random(_) => true,
        }
    }
}

/// A store plus the `VarBuilder` over it, for one model construction.
pub(crate) struct Builder {
    store: Arc<Store>,
    origin: String,
}

impl Builder {
    /// A builder for `weights` of architecture `arch`.
    pub fn new(
        arch: &str,
        weights: &Weights,
        device: &Device,
    ) -> Result<(Self, VarBuilder<'static>)> {
        let (source, origin) = match weights {
            Weights::Random { seed } => (
                Source::Random(*seed),
                format!("random weights (seed {seed})"),
            ),
            Weights::File(p) => (
                Source::Tensors(read_state_dict(p)?),
                p.display().to_string(),
            ),
            Weights::Tensors(t) => (
                Source::Tensors(t.clone()),
                "in-memory state dict".to_string(),
            ),
            Weights::Trained => {
                let t = super::trained::find(arch).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "neuroscope ships trained weights for {} only, not for {arch}; for \
                         torchvision's ImageNet networks use Weights::Pretrained (--weights \
                         pretrained)",
                        super::trained::TRAINED
                            .iter()
                            .map(|t| t.arch)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ))
                })?;
                let map = candle_core::safetensors::load_buffer(t.bytes(), &Device::Cpu)?;
                (Source::Tensors(map), t.describe())
            }
            Weights::Pretrained => {
                let p = pretrained_path(arch)?;
                (
                    Source::Tensors(read_state_dict(&p)?),
                    p.display().to_string(),
                )
            }
        };
        let store = Arc::new(Store {
            source,
            log: Mutex::new(Log::default()),
        });
        let vb =
            VarBuilder::from_backend(Box::new(Backend(store.clone())), DType::F32, device.clone());
        Ok((Builder { store, origin }, vb))
    }

    /// After construction: the load report as an error if the weights did not fit.
    pub fn finish(self, arch: &str) -> Result<()> {
        let log = std::mem::take(&mut *self.store.log.lock().unwrap_or_else(|p| p.into_inner()));
        let unexpected: Vec<String> = match &self.store.source {
            Source::Random(_) => Vec::new(),
            Source::Tensors(map) => {
                let known: std::collections::HashSet<&str> =
                    log.requested.iter().map(String::as_str).collect();
                let mut u: Vec<String> = map
                    .keys()
                    .filter(|k| !known.contains(k.as_str()))
                    .cloned()
                    .collect();
                u.sort();
                u
            }
        };
        if log.missing.is_empty() && log.mismatched.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(Error::Weights(Box::new(crate::error::WeightsMismatch {
            arch: arch.to_string(),
            origin: self.origin,
            missing: log.missing,
            unexpected,
            mismatched: log
                .mismatched
                .into_iter()
                .map(|(n, got, want)| (n, format!("{got:?}"), format!("{want:?}")))
                .collect(),
        })))
    }
}
