//! NumPy's `.npy` files: the exchange format between neuroscope, PyTorch and scikit-learn.
//!
//! Reading accepts format versions 1-3, little- and big-endian floats and integers of every
//! width, booleans, and Fortran order; everything becomes `f32` (or integer labels).
//! Writing produces version 1 files that `np.load` reads.

use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element type of an `.npy` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

#[derive(Debug)]
struct Header {
    kind: Kind,
    size: usize,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
}

/// Reads an `.npy` file as an `f32` array of any dimension.
///
/// ```
/// let path = std::env::temp_dir().join("neuroscope-doc.npy");
/// let a = ndarray::ArrayD::from_shape_vec(vec![2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
/// neuroscope::io::npy::write(&path, &a).unwrap();
/// assert_eq!(neuroscope::io::npy::read(&path).unwrap(), a);
/// ```
pub fn read(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Parses `.npy` bytes as `f32`; `origin` names the source in errors.
pub fn parse(bytes: &[u8], origin: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let origin = origin.as_ref();
    let (h, data) = header(bytes, origin)?;
    let values: Vec<f32> = decode(&h, data).map(|v| v as f32).collect();
    shaped(values, &h, origin)
}

/// Reads an image array: `uint8` values scaled to `[0, 1]` like every other 8-bit source,
/// other types as they are.
///
/// ```
/// let path = std::env::temp_dir().join("neuroscope-doc-read-images.npy");
/// neuroscope::io::npy::write(&path, &ndarray::ArrayD::<f32>::ones(vec![1, 2, 2]))?;
/// assert_eq!(neuroscope::io::npy::read_images(&path)?.sum(), 4.0);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn read_images(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (h, _) = header(&bytes, path)?;
    let mut arr = parse(&bytes, path)?;
    if h.kind == Kind::Uint && h.size == 1 {
        arr.mapv_inplace(|v| v / 255.0);
    }
    Ok(arr)
}

/// Reads an integer (or integral float) `.npy` file of class labels, one per sample.
///
/// ```
/// let path = std::env::temp_dir().join("neuroscope-doc-labels.npy");
/// neuroscope::io::npy::write_labels(&path, &[2, 0, 1]).unwrap();
/// assert_eq!(neuroscope::io::npy::read_labels(&path).unwrap(), vec![2, 0, 1]);
/// ```
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    read_i64(path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            usize::try_from(v).map_err(|_| {
                Error::format(
                    path,
                    format!("label {i} is {v}; labels must be non-negative integers"),
                )
            })
        })
        .collect()
}

fn header<'a>(bytes: &'a [u8], origin: &Path) -> Result<(Header, &'a [u8])> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(Error::format(
            origin,
            "not an .npy file (it does not start with \\x93NUMPY)",
        ));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        _ => {
            return Err(Error::format(
                origin,
                format!(".npy format version {major} is not supported (1-3 are)"),
            ));
        }
    };
    if bytes.len() < start + len {
        return Err(Error::format(origin, "truncated .npy header"));
    }
    let text = std::str::from_utf8(&bytes[start..start + len])
        .map_err(|_| Error::format(origin, ".npy header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let k = format!("'{key}':");
        let at = text
            .find(&k)
            .ok_or_else(|| Error::format(origin, format!(".npy header has no '{key}': {text}")))?;
        Ok(text[at + k.len()..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| {
            Error::format(origin, format!("cannot read descr in .npy header: {text}"))
        })?;
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_txt = field("shape")?;
    let close = shape_txt.find(')').ok_or_else(|| {
        Error::format(origin, format!("cannot read shape in .npy header: {text}"))
    })?;
    let shape = shape_txt[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::format(origin, format!("cannot read shape in .npy header: {text}")))?;
    let unsupported = || {
        Error::format(
            origin,
            format!("element type '{descr}' is not supported: use a float, integer or bool array"),
        )
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let kind = match chars.next() {
        Some('f') => Kind::Float,
        Some('i') => Kind::Int,
        Some('u') => Kind::Uint,
        Some('b') => Kind::Bool,
        _ => return Err(unsupported()),
    };
    let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let ok = match kind {
        Kind::Float => size == 4 || size == 8,
        Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
    };
    if !ok {
        return Err(unsupported());
    }
    let h = Header {
        kind,
        size,
        big_endian: order == '>',
        fortran,
        shape,
    };
    let count: usize = h.shape.iter().product();
    let data = &bytes[start + len..];
    if data.len() != count * size {
        return Err(Error::format(
            origin,
            format!(
                ".npy data {}: shape {:?} of '{descr}' needs {} bytes, the file holds {}",
                if data.len() < count * size {
                    "truncated"
                } else {
                    "has trailing bytes"
                },
                h.shape,
                count * size,
                data.len()
            ),
        ));
    }
    Ok((h, data))
}

fn decode<'a>(h: &'a Header, data: &'a [u8]) -> impl Iterator<Item = f64> + 'a {
    data.chunks_exact(h.size).map(move |c| {
        let mut b = [0u8; 8];
        b[..h.size].copy_from_slice(c);
        if h.big_endian {
            b[..h.size].reverse();
        }
        match (h.kind, h.size) {
            (Kind::Float, 4) => f32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as f64,
            (Kind::Float, _) => f64::from_le_bytes(b),
            (Kind::Bool, _) | (Kind::Uint, _) => u64::from_le_bytes(b) as f64,
            (Kind::Int, n) => {
                // sign-extend from n bytes
                let shift = 64 - 8 * n as u32;
                ((i64::from_le_bytes(b) << shift) >> shift) as f64
            }
        }
    })
}

fn shaped<T: Clone>(values: Vec<T>, h: &Header, origin: &Path) -> Result<ArrayD<T>> {
    let shape = IxDyn(&h.shape);
    let arr = if h.fortran {
        ArrayD::from_shape_vec(shape.f(), values)
    } else {
        ArrayD::from_shape_vec(shape, values)
    }
    .map_err(|e| Error::format(origin, format!("bad .npy shape: {e}")))?;
    Ok(if h.fortran {
        arr.as_standard_layout().into_owned()
    } else {
        arr
    })
}

fn write_raw(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> Result<()> {
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut head =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad so that the data starts at a multiple of 64 bytes, ending the header with '\n'.
    let total = MAGIC.len() + 4 + head.len() + 1;
    head.push_str(&" ".repeat((64 - total % 64) % 64));
    head.push('\n');
    let mut out = Vec::with_capacity(10 + head.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(head.len() as u16).to_le_bytes());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(data);
    super::output::write_atomic(path, &out)
}

/// Reads any numeric `.npy` array as `f64` (no precision lost for `float64` files).
///
/// ```
/// let path = std::env::temp_dir().join("neuroscope-doc-f64.npy");
/// let a = ndarray::arr2(&[[0.1f64, 0.2], [0.3, 1e-300]]).into_dyn();
/// neuroscope::io::npy::write_f64(&path, &a).unwrap();
/// assert_eq!(neuroscope::io::npy::read_f64(&path).unwrap(), a);
/// ```
///
/// Fortran-ordered files (what NumPy writes for many scikit-learn results) come back in the
/// usual row-major layout.
pub fn read_f64(path: impl AsRef<Path>) -> Result<ArrayD<f64>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (h, data) = header(&bytes, path)?;
    let v: Vec<f64> = decode(&h, data).collect();
    shaped(v, &h, path)
}

/// Writes an `f64` array as a `.npy` file.
pub fn write_f64(path: impl AsRef<Path>, array: &ArrayD<f64>) -> Result<()> {
    let data: Vec<u8> = array.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path.as_ref(), "<f8", array.shape(), &data)
}

/// Reads signed integer labels (cluster labels with -1 for noise) from a 1-D `.npy` file.
///
/// ```
/// let path = std::env::temp_dir().join("neuroscope-doc-i64.npy");
/// neuroscope::io::npy::write_i64(&path, &[0, -1, 3]).unwrap();
/// assert_eq!(neuroscope::io::npy::read_i64(&path).unwrap(), vec![0, -1, 3]);
/// ```
pub fn read_i64(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (h, data) = header(&bytes, path)?;
    if h.shape.len() != 1 {
        return Err(Error::format(
            path,
            format!("labels must be one-dimensional, found shape {:?}", h.shape),
        ));
    }
    if matches!(h.kind, Kind::Int | Kind::Uint | Kind::Bool) {
        // Integers are read as integers (through f64, values past 2^53 would lose digits).
        return data
            .chunks_exact(h.size)
            .enumerate()
            .map(|(i, c)| {
                let mut b = [0u8; 8];
                b[..h.size].copy_from_slice(c);
                if h.big_endian {
                    b[..h.size].reverse();
                }
                if h.kind == Kind::Int {
                    let shift = 64 - 8 * h.size as u32;
                    Ok((i64::from_le_bytes(b) << shift) >> shift)
                } else {
                    i64::try_from(u64::from_le_bytes(b)).map_err(|_| {
                        Error::format(
                            path,
                            format!(
                                "label {i} is {} (above the int64 range)",
                                u64::from_le_bytes(b)
                            ),
                        )
                    })
                }
            })
            .collect();
    }
    decode(&h, data)
        .enumerate()
        .map(|(i, v)| {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(Error::format(
                    path,
                    format!("label {i} is {v}; labels must be integers"),
                ))
            }
        })
        .collect()
}

/// Writes signed integer labels as an `int64` `.npy` file.
pub fn write_i64(path: impl AsRef<Path>, labels: &[i64]) -> Result<()> {
    let data: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path.as_ref(), "<i8", &[labels.len()], &data)
}

/// Writes an `f32` array as a version-1 little-endian `.npy` file.
pub fn write(path: impl AsRef<Path>, array: &ArrayD<f32>) -> Result<()> {
    let data: Vec<u8> = array.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw(path.as_ref(), "<f4", array.shape(), &data)
}

/// Writes labels as an `int64` `.npy` file (numpy's default integer).
pub fn write_labels(path: impl AsRef<Path>, labels: &[usize]) -> Result<()> {
    let data: Vec<u8> = labels
        .iter()
        .flat_map(|&v| (v as i64).to_le_bytes())
        .collect();
    write_raw(path.as_ref(), "<i8", &[labels.len()], &data)
}
