//! File formats and transfers, beneath the pipeline: NumPy's `.npy`, LeCun's IDX, safetensors
//! files of named arrays, atomic writes that never destroy an existing file, and downloads
//! with their checksums.
//!
//! ```
//! use neuroscope::io::{npy, output};
//! let a = ndarray::ArrayD::<f64>::zeros(vec![2, 3]);
//! let path = std::env::temp_dir().join("neuroscope-doc-io.npy");
//! output::check_output(&path, &["npy"], &[])?;    // before any work: a name, an extension
//! npy::write_f64(&path, &a)?;                      // through a temporary file, then renamed
//! assert_eq!(npy::read_f64(&path)?.shape(), &[2, 3]);
//! # Ok::<(), neuroscope::Error>(())
//! ```

pub mod download;
pub mod idx;
pub mod npy;
pub mod output;
pub mod tensors;
