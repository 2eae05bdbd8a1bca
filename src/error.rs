//! The crate's one error type.
//!
//! Every message says what went wrong *and* what to do about it: a notebook user sees only the
//! text, so "unknown layer" is useless without the list of valid names, and "file not found" is
//! useless without the place the file was expected and how to get it.

use std::path::PathBuf;

/// Everything that can go wrong in neuroscope.
///
/// ```
/// use neuroscope::Error;
/// let e = Error::Format { path: "x.idx".into(), problem: "truncated".into() };
/// assert!(e.to_string().contains("x.idx"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not what its format requires.
    #[error("{path}: {problem}")]
    Format {
        /// The file (or a description of the in-memory source).
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
    /// A dataset's files are not on this machine.
    #[error("{dataset} is not available locally: {help}")]
    DatasetMissing {
        /// The dataset's name.
        dataset: String,
        /// Where the files were looked for and how to get them.
        help: String,
    },
    /// Pretrained weights are not on this machine.
    #[error("pretrained weights for {arch} are not available locally: {help}")]
    WeightsMissing {
        /// The architecture.
        arch: String,
        /// Where they were looked for and how to get them.
        help: String,
    },
    /// A download failed or its checksum did not match.
    #[error("download of {url} failed: {problem}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// A tensor or array has the wrong shape.
    #[error("wrong shape for {what}: expected {expected}, got {got}")]
    Shape {
        /// What was being checked.
        what: String,
        /// The expected shape, in words (`N x 3 x 224 x 224`).
        expected: String,
        /// The shape that was passed.
        got: String,
    },
    /// An argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A name (dataset, layer, device) is not one of the known ones.
    #[error("unknown {kind} '{name}'; valid: {valid}")]
    UnknownName {
        /// What kind of name (`dataset`, `layer`, `device`).
        kind: String,
        /// The name that was given.
        name: String,
        /// The valid names, comma separated.
        valid: String,
    },
    /// A state dict does not fit the architecture (PyTorch's `load_state_dict` report).
    ///
    /// Boxed so that `Error` stays small: a `Result` of it is returned everywhere, and users'
    /// own `fn main() -> neuroscope::Result<()>` would otherwise trip clippy's
    /// `result_large_err`.
    #[error("{0}")]
    Weights(Box<WeightsMismatch>),
    /// A figure could not be drawn or encoded (a plotters or PNG encoder failure).
    #[error("cannot draw figure: {0}")]
    Plot(String),
    /// An error from candle (tensor operations, devices).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// What did not fit when weights were loaded into an architecture (inside [`Error::Weights`]).
///
/// Its message is PyTorch's `load_state_dict` report, so users of both read the same text.
///
/// ```
/// use neuroscope::models::{self, Weights};
/// use neuroscope::device::Device;
/// use neuroscope::Error;
/// let dir = std::env::temp_dir().join("neuroscope-doc-weights-mismatch");
/// std::fs::create_dir_all(&dir)?;
/// let file = dir.join("tiny.safetensors");
/// let t = candle_core::Tensor::zeros((2, 2), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// candle_core::safetensors::save(&std::collections::HashMap::from([("not.a.key", t)]), &file)?;
/// match models::load("mnist_cnn", &Weights::File(file), &Device::Cpu) {
///     Err(Error::Weights(m)) => {
///         assert_eq!(m.unexpected, ["not.a.key"]);
///         assert!(m.missing.contains(&"conv1.weight".to_string()));
///         assert!(m.to_string().contains("Missing key(s) in state_dict"));
///     }
///     other => panic!("expected a weights error, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsMismatch {
    /// The architecture being built.
    pub arch: String,
    /// Where the weights came from.
    pub origin: String,
    /// Keys the architecture needs that the file lacks.
    pub missing: Vec<String>,
    /// Keys in the file the architecture does not have.
    pub unexpected: Vec<String>,
    /// `(key, shape in file, shape in model)`.
    pub mismatched: Vec<(String, String, String)>,
}

impl std::fmt::Display for WeightsMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&report(
            &self.arch,
            &self.origin,
            &self.missing,
            &self.unexpected,
            &self.mismatched,
        ))
    }
}

/// `Result` with neuroscope's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The same error with `what` in front (`layer features.3: ...`), keeping one
    /// "invalid argument:" prefix where the error already had one.
    pub(crate) fn context(self, what: &str) -> Error {
        match self {
            Error::InvalidArgument(msg) => Error::InvalidArgument(format!("{what}: {msg}")),
            e => Error::InvalidArgument(format!("{what}: {e}")),
        }
    }

    /// A [`Error::Format`] for `path`.
    pub(crate) fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::UnknownName`] listing the valid names.
    pub(crate) fn unknown<S: AsRef<str>>(
        kind: &str,
        name: &str,
        valid: impl IntoIterator<Item = S>,
    ) -> Self {
        let valid: Vec<String> = valid.into_iter().map(|s| s.as_ref().to_string()).collect();
        Error::UnknownName {
            kind: kind.into(),
            name: name.into(),
            valid: valid.join(", "),
        }
    }
}

/// Formats a load report the way PyTorch's `load_state_dict` does.
fn report(
    arch: &str,
    origin: &str,
    missing: &[String],
    unexpected: &[String],
    mismatched: &[(String, String, String)],
) -> String {
    let quote = |v: &[String]| {
        v.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!("Error(s) in loading state_dict for {arch} from {origin}:");
    if !missing.is_empty() {
        s.push_str(&format!(
            "\n\tMissing key(s) in state_dict ({}): {}.",
            missing.len(),
            quote(missing)
        ));
    }
    if !unexpected.is_empty() {
        s.push_str(&format!(
            "\n\tUnexpected key(s) in state_dict ({}): {}.",
            unexpected.len(),
            quote(unexpected)
        ));
    }
    for (name, got, want) in mismatched {
        s.push_str(&format!(
            "\n\tsize mismatch for {name}: copying a param with shape {got} from checkpoint, the shape in current model is {want}."
        ));
    }
    if !missing.is_empty() && !unexpected.is_empty() {
        s.push_str("\nIs this file for another architecture? `neuroscope layers --arch A` lists each architecture's names.");
    }
    s
}
