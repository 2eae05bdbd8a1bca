//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST (`*-ubyte`, `*-ubyte.gz`).
//!
//! An IDX file is two zero bytes, a type code, the number of dimensions, each dimension as a
//! big-endian `u32`, then the values. Every check a truncated download or a renamed file could
//! fail is made here, and the error names the file and says what is wrong.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// An unsigned-byte IDX array: its dimensions and values in row-major order.
///
/// ```
/// let bytes = [0u8, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9];
/// let a = neuroscope::io::idx::parse(&bytes, "inline").unwrap();
/// assert_eq!(a.dims, vec![3]);
/// assert_eq!(a.data, vec![7, 8, 9]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[60000, 28, 28]` for MNIST's training images).
    pub dims: Vec<usize>,
    /// The values.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gzip-compressed or not (recognised by its first bytes, not its name).
///
/// ```no_run
/// let a = neuroscope::io::idx::read("data/train-images-idx3-ubyte.gz").unwrap();
/// println!("{:?}", a.dims);
/// ```
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Parses IDX bytes (gzip-compressed or not); `origin` names the source in errors.
pub fn parse(bytes: &[u8], origin: impl AsRef<Path>) -> Result<IdxArray> {
    let origin = origin.as_ref();
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        raw = gunzip(bytes, origin)?;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(Error::format(
            origin,
            format!(
                "not an IDX file: {} bytes, shorter than the 4-byte header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            origin,
            format!(
                "not an IDX file: it must start with two zero bytes, found {:#04x} {:#04x}",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        let kind = match bytes[2] {
            0x09 => "signed byte",
            0x0B => "int16",
            0x0C => "int32",
            0x0D => "float32",
            0x0E => "float64",
            _ => "unknown",
        };
        return Err(Error::format(
            origin,
            format!(
                "IDX type code {:#04x} ({kind}) is not supported; neuroscope reads unsigned-byte IDX files \
                 (type 0x08: MNIST, Fashion-MNIST, KMNIST, EMNIST)",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(Error::format(
            origin,
            format!(
                "truncated IDX header: {ndim} dimensions need {header} bytes, the file has {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(
                bytes[4 + 4 * i..8 + 4 * i]
                    .try_into()
                    .expect("4-byte slice"),
            ) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::format(origin, format!("IDX dimensions {dims:?} overflow")))?;
    let got = bytes.len() - header;
    if got != expected {
        let what = if got < expected {
            "truncated"
        } else {
            "has trailing bytes"
        };
        return Err(Error::format(
            origin,
            format!(
                "IDX data {what}: the header says {} = {expected} values, the file holds {got}",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" x ")
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

fn gunzip(bytes: &[u8], origin: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(origin, format!("corrupt or truncated gzip stream: {e}")))?;
    Ok(out)
}
