//! Writing output files so that an existing file is never destroyed: every writer in the crate
//! goes through [`write_atomic`], which writes a temporary file beside the target and renames
//! it into place, and [`check_output`], which refuses an output path before any work starts.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place
/// only once it is complete and flushed to disk.
///
/// Why: a failed write (a full disk, an interrupted process) must leave the previous result
/// where it was, not a truncated file; the rename replaces the target in one step. The folder
/// is created when missing.
///
/// ```
/// let p = std::env::temp_dir().join("neuroscope-doc-atomic.txt");
/// neuroscope::io::output::write_atomic(&p, b"first")?;
/// neuroscope::io::output::write_atomic(&p, b"second")?;
/// assert_eq!(std::fs::read(&p)?, b"second");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            d.to_path_buf()
        }
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: an output needs a file name, not a folder",
                path.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks, before any work, that `path` can take an output: it names a file (not an existing
/// folder), its extension is one of `extensions` (case-insensitive; empty accepts any), and it
/// is none of `inputs` (the same file reached by another path counts).
///
/// ```
/// use neuroscope::io::output::check_output;
/// let dir = std::env::temp_dir();
/// assert!(check_output(&dir.join("a.npy"), &["npy"], &[]).is_ok());
/// let err = check_output(&dir.join("a.safetensors"), &["npy"], &[]).unwrap_err();
/// assert!(err.to_string().contains(".npy"));
/// assert!(check_output(&dir, &[], &[]).is_err()); // a folder
/// ```
pub fn check_output(path: &Path, extensions: &[&str], inputs: &[&Path]) -> Result<()> {
    if path.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is a folder; give a file name for the output",
            path.display()
        )));
    }
    if path.file_name().is_none() {
        return Err(Error::InvalidArgument(format!(
            "{}: an output needs a file name",
            path.display()
        )));
    }
    if !extensions.is_empty() {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !extensions.iter().any(|e| e.eq_ignore_ascii_case(&ext)) {
            let list: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
            return Err(Error::InvalidArgument(format!(
                "{}: this output is written as {}; name the file with that extension",
                path.display(),
                list.join(" or ")
            )));
        }
    }
    for input in inputs {
        if same_file(path, input) {
            return Err(Error::InvalidArgument(format!(
                "{} is also an input: writing there would replace it; choose another output",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Whether two paths name one existing file (or are spelled the same).
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Checks that `dir` can take output files: it is a folder or does not exist yet (it is
/// created then), and is not an existing file.
///
/// ```
/// let f = std::env::temp_dir().join("neuroscope-doc-not-a-dir.txt");
/// std::fs::write(&f, b"x")?;
/// assert!(neuroscope::io::output::check_output_dir(&f).is_err());
/// assert!(neuroscope::io::output::check_output_dir(&std::env::temp_dir()).is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn check_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is a file; the output needs a folder there",
            dir.display()
        )));
    }
    Ok(())
}
