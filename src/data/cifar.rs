//! CIFAR-10 in its binary version (`cifar-10-batches-bin/*.bin`).
//!
//! Each record is one label byte followed by 3,072 pixel bytes: the red, green and blue
//! 32 x 32 planes, channel-first, which is already candle's layout.

use super::InMemory;
use crate::{Error, Result};
use std::path::Path;

/// CIFAR-10's class names, in label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const RECORD: usize = 1 + 3 * 32 * 32;

/// One parsed batch file: `N x 3 x 32 x 32` pixels and `N` labels.
#[derive(Clone, Debug)]
pub struct BatchFile {
    /// Channel-first pixels of all images.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<usize>,
}

/// Parses the bytes of one CIFAR-10 binary batch file; `origin` names it in errors.
///
/// ```
/// let mut rec = vec![3u8];
/// rec.extend(std::iter::repeat(9).take(3072));
/// let b = neuroscope::data::cifar::parse_batch(&rec, "inline").unwrap();
/// assert_eq!(b.labels, vec![3]);
/// assert!(neuroscope::data::cifar::parse_batch(&rec[..100], "inline").is_err());
/// ```
pub fn parse_batch(bytes: &[u8], origin: impl AsRef<Path>) -> Result<BatchFile> {
    let origin = origin.as_ref();
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            origin,
            format!(
                "not a CIFAR-10 binary batch: {} bytes is not a whole number of {RECORD}-byte records \
                 (1 label byte + 3 x 32 x 32 pixels); the file may be truncated or be the Python pickle version",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] as usize >= CLASSES.len() {
            return Err(Error::format(
                origin,
                format!("record {i} has label {}, CIFAR-10 labels are 0-9", rec[0]),
            ));
        }
        labels.push(rec[0] as usize);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(BatchFile { pixels, labels })
}

/// Reads one batch file.
pub fn read_batch(path: impl AsRef<Path>) -> Result<BatchFile> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_batch(&bytes, path)
}

/// Loads the training set (`data_batch_1.bin` .. `data_batch_5.bin`, 50,000 images) or the test
/// set (`test_batch.bin`, 10,000) from the folder `cifar-10-batches-bin`.
///
/// ```no_run
/// use neuroscope::data::{cifar, Dataset};
/// let test = cifar::load("cifar-10-batches-bin", false).unwrap();
/// assert_eq!(test.len(), 10_000);
/// ```
pub fn load(dir: impl AsRef<Path>, train: bool) -> Result<InMemory> {
    let dir = dir.as_ref();
    let files: Vec<String> = if train {
        (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
    } else {
        vec!["test_batch.bin".into()]
    };
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let b = read_batch(dir.join(f))?;
        pixels.extend(b.pixels);
        labels.extend(b.labels);
    }
    let n = labels.len();
    let name = if train {
        "cifar10-train"
    } else {
        "cifar10-test"
    };
    InMemory::new(
        name,
        pixels,
        n,
        (3, 32, 32),
        labels,
        CLASSES.iter().map(|s| s.to_string()).collect(),
    )
}
