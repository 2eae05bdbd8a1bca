//! Named `f32`/`f64`/`i64` arrays in one `.safetensors` file, with string metadata (layer order,
//! what was computed): the exchange format between the CLI, notebooks and Python
//! (`safetensors.numpy.load_file`, `safe_open(...).metadata()`).
//!
//! ```
//! use ndarray::{array, ArrayD};
//! use neuroscope::io::tensors::{Tensors, Array};
//! let mut t = Tensors::default();
//! t.insert("x", Array::F64(array![[1.0, 2.0]].into_dyn()));
//! t.metadata.insert("layers".into(), "[\"a\"]".into());
//! let path = std::env::temp_dir().join("neuroscope-doc-tensors.safetensors");
//! t.save(&path)?;
//! let back = Tensors::load(&path)?;
//! assert_eq!(back.f64("x")?, array![[1.0, 2.0]].into_dyn());
//! assert_eq!(back.metadata["layers"], "[\"a\"]");
//! # Ok::<(), neuroscope::Error>(())
//! ```

use crate::{Error, Result};
use ndarray::ArrayD;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One stored array.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// 32-bit floats (activations).
    F32(ArrayD<f32>),
    /// 64-bit floats (analysis results).
    F64(ArrayD<f64>),
    /// 64-bit integers (labels).
    I64(ArrayD<i64>),
}

/// A set of named arrays plus metadata.
#[derive(Debug, Clone, Default)]
pub struct Tensors {
    /// Arrays by name (sorted, as the file stores them).
    pub arrays: BTreeMap<String, Array>,
    /// Free-form string metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Tensors {
    /// Add or replace an array.
    pub fn insert(&mut self, name: impl Into<String>, a: Array) {
        self.arrays.insert(name.into(), a);
    }

    /// Array names.
    pub fn names(&self) -> Vec<&str> {
        self.arrays.keys().map(|s| s.as_str()).collect()
    }

    fn get(&self, name: &str) -> Result<&Array> {
        self.arrays
            .get(name)
            .ok_or_else(|| Error::unknown("tensor", name, self.arrays.keys()))
    }

    /// An array as `f64` (converting `f32` and `i64`).
    pub fn f64(&self, name: &str) -> Result<ArrayD<f64>> {
        Ok(match self.get(name)? {
            Array::F32(a) => a.mapv(|v| v as f64),
            Array::F64(a) => a.clone(),
            Array::I64(a) => a.mapv(|v| v as f64),
        })
    }

    /// An array as `i64` (floats must hold integers).
    pub fn i64(&self, name: &str) -> Result<ArrayD<i64>> {
        match self.get(name)? {
            Array::I64(a) => Ok(a.clone()),
            Array::F32(a) => to_int(a.mapv(|v| v as f64), name),
            Array::F64(a) => to_int(a.clone(), name),
        }
    }

    /// Write to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .arrays
            .iter()
            .map(|(k, a)| match a {
                Array::F32(a) => (
                    k.clone(),
                    Dtype::F32,
                    a.shape().to_vec(),
                    a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                Array::F64(a) => (
                    k.clone(),
                    Dtype::F64,
                    a.shape().to_vec(),
                    a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                Array::I64(a) => (
                    k.clone(),
                    Dtype::I64,
                    a.shape().to_vec(),
                    a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = bytes
            .iter()
            .map(|(k, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (k.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::format(path, e.to_string()))?;
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let mut bytes = safetensors::tensor::serialize(views, Some(meta))
            .map_err(|e| Error::format(path, e.to_string()))?;
        sort_metadata(&mut bytes).map_err(|e| Error::format(path, e))?;
        super::output::write_atomic(path, &bytes)
    }

    /// Read from `path` (F32, F64, I64 and I32 tensors; other types are refused by name).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| Error::format(path, e.to_string()))?;
        let mut out = Tensors::default();
        if let Some(m) = meta.metadata() {
            out.metadata = m.clone().into_iter().collect();
        }
        for (name, v) in st.tensors() {
            let shape = v.shape().to_vec();
            let d = v.data();
            let arr = match v.dtype() {
                Dtype::F32 => Array::F32(shaped(
                    shape,
                    d.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .collect(),
                    path,
                )?),
                Dtype::F64 => Array::F64(shaped(
                    shape,
                    d.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                    path,
                )?),
                Dtype::I64 => Array::I64(shaped(
                    shape,
                    d.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                    path,
                )?),
                Dtype::I32 => Array::I64(shaped(
                    shape,
                    d.chunks_exact(4)
                        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                        .collect(),
                    path,
                )?),
                other => {
                    return Err(Error::format(
                        path,
                        format!(
                        "tensor {name} has dtype {other:?}; neuroscope reads F32, F64, I64 and I32"
                    ),
                    ))
                }
            };
            out.arrays.insert(name, arr);
        }
        Ok(out)
    }
}

fn shaped<T>(shape: Vec<usize>, v: Vec<T>, path: &Path) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(shape, v).map_err(|e| Error::format(path, e.to_string()))
}

fn to_int(a: ArrayD<f64>, name: &str) -> Result<ArrayD<i64>> {
    if let Some(v) = a.iter().find(|v| v.fract() != 0.0 || !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "tensor {name} should hold integers but holds {v}"
        )));
    }
    Ok(a.mapv(|v| v as i64))
}

/// A JSON list of strings, for a safetensors file's metadata (`layers`, `class_names`).
pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Reads what [`json_list`] writes (any JSON list of strings); `None` for anything else.
pub(crate) fn parse_json_list(s: &str) -> Option<Vec<String>> {
    serde_json::from_str(s).ok()
}

#[cfg(test)]
mod json_tests {
    #[test]
    fn json_lists_round_trip_and_match_the_old_codec() {
        let items = vec!["a\"b".to_string(), "c\\d".into(), "layer1.0".into()];
        let s = super::json_list(&items);
        // The bytes the hand-written codec wrote before serde_json (recordings stay identical).
        assert_eq!(s, r#"["a\"b","c\\d","layer1.0"]"#);
        assert_eq!(super::parse_json_list(&s), Some(items));
        assert_eq!(
            super::parse_json_list(r#"[ "x" , "y" ]"#),
            Some(vec!["x".into(), "y".into()])
        );
        assert_eq!(super::parse_json_list("[1, 2]"), None);
    }
}

/// Rewrites the header of a serialised safetensors file with its metadata keys in sorted order,
/// in place (the same length: only the order of the entries changes).
///
/// Why: the safetensors crate takes the metadata as a `HashMap`, whose order changes from run
/// to run, so two recordings of the same numbers differed in their header bytes.
fn sort_metadata(bytes: &mut [u8]) -> std::result::Result<(), String> {
    let n = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| u64::from_le_bytes(b) as usize)
        .ok_or("safetensors header missing")?;
    let header = bytes.get(8..8 + n).ok_or("safetensors header truncated")?;
    let mut value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("safetensors header: {e}"))?;
    let Some(meta) = value
        .get_mut("__metadata__")
        .and_then(|m| m.as_object_mut())
    else {
        return Ok(());
    };
    let mut sorted: Vec<(String, serde_json::Value)> = std::mem::take(meta).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    meta.extend(sorted);
    // Keys in a fixed order whatever serde_json's map keeps: the metadata object first, then
    // the tensors by name.
    let mut entries: Vec<(String, serde_json::Value)> = match value {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => return Err("safetensors header is not an object".into()),
    };
    entries.sort_by(|a, b| (a.0 != "__metadata__", &a.0).cmp(&(b.0 != "__metadata__", &b.0)));
    let mut text = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::Value::String(k.clone()).to_string());
        text.push(':');
        text.push_str(&v.to_string());
    }
    text.push('}');
    if text.len() > n {
        return Err("safetensors header grew when sorted".into());
    }
    let dst = &mut bytes[8..8 + n];
    dst[..text.len()].copy_from_slice(text.as_bytes());
    dst[text.len()..].fill(b' ');
    Ok(())
}

#[cfg(test)]
mod header_tests {
    use super::{Array, Tensors};
    use ndarray::array;

    /// Saving the same arrays and metadata gives the same bytes every time, metadata keys in
    /// sorted order (the safetensors crate's `HashMap` gave a different order from one call to
    /// the next), and Python's reader gets them back.
    #[test]
    fn the_same_content_saves_to_the_same_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let mut t = Tensors::default();
        t.insert("b", Array::F32(array![[1.0f32, 2.0]].into_dyn()));
        t.insert("a", Array::I64(array![3i64, 4].into_dyn()));
        for k in [
            "layers",
            "class_names",
            "reduce",
            "arch",
            "seed",
            "weights",
            "zeta",
        ] {
            t.metadata.insert(k.into(), format!("[\"{k}\"]"));
        }
        let dir = std::env::temp_dir().join(format!("ns-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let read = |i: usize| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            let p = dir.join(format!("{i}.safetensors"));
            t.save(&p)?;
            Ok(std::fs::read(&p)?)
        };
        let first = read(0)?;
        for i in 1..8 {
            assert_eq!(read(i)?, first, "save {i} differs from save 0");
        }
        let n = u64::from_le_bytes(first[..8].try_into()?) as usize;
        let header = std::str::from_utf8(&first[8..8 + n])?;
        let at = |k: &str| header.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
        assert!(at("__metadata__") < at("a") && at("arch") < at("class_names"));
        assert!(at("weights") < at("zeta") && at("zeta") < usize::MAX);
        let back = Tensors::load(dir.join("0.safetensors"))?;
        assert_eq!(back.metadata, t.metadata);
        assert_eq!(back.f64("b")?, array![[1.0, 2.0]].into_dyn());
        assert_eq!(back.i64("a")?, array![3i64, 4].into_dyn());
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
