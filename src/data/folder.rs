//! A folder of images with one sub-folder per class (torchvision's `ImageFolder`).
//!
//! ```text
//! root/cat/001.png
//! root/cat/002.jpg
//! root/dog/abc.jpeg
//! ```
//!
//! Classes are the sub-folder names in sorted order and files are sorted within each class, so
//! labels and indices match torchvision's. Images are decoded when asked for, and, as
//! torchvision's default loader does, always as RGB.

use super::{Dataset, Image};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// File extensions recognised as images (PNG and JPEG decoders are compiled in).
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A lazily decoded `ImageFolder`.
///
/// ```
/// use neuroscope::data::{folder::ImageFolder, Dataset};
/// let root = std::env::temp_dir().join("neuroscope-doc-folder");
/// for (class, v) in [("a", 0u8), ("b", 255u8)] {
///     std::fs::create_dir_all(root.join(class)).unwrap();
///     image::GrayImage::from_pixel(4, 3, image::Luma([v])).save(root.join(class).join("x.png")).unwrap();
/// }
/// let ds = ImageFolder::open(&root).unwrap();
/// assert_eq!(ds.class_names(), vec!["a", "b"]);
/// let (img, label) = ds.get(1).unwrap();
/// assert_eq!((img.shape(), label), ((3, 3, 4), 1));
/// ```
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    /// Scans `root`. An empty folder, or one with no class sub-folders holding images, is an
    /// error that says so.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let mut classes: Vec<String> = read_dir_sorted(&root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| !n.starts_with('.'))
            .collect();
        classes.sort();
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            for file in read_dir_sorted(&root.join(class))? {
                let ext = file
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                if file.is_file() && EXTENSIONS.contains(&ext.as_str()) {
                    samples.push((file, label));
                }
            }
        }
        if samples.is_empty() {
            return Err(Error::format(
                &root,
                format!(
                    "no images found: expected one sub-folder per class holding {} files",
                    EXTENSIONS.join("/")
                ),
            ));
        }
        Ok(ImageFolder {
            root,
            classes,
            samples,
        })
    }

    /// The folder this dataset reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.samples.get(index).map(|(p, _)| p.as_path())
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// Decodes an image file to an RGB [`Image`] with values in `[0, 1]`.
///
/// ```no_run
/// let img = neuroscope::data::folder::load_image("cat.jpg").unwrap();
/// assert_eq!(img.channels(), 3);
/// ```
pub fn load_image(path: impl AsRef<Path>) -> Result<Image> {
    let path = path.as_ref();
    let decoded = ::image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::format(path, format!("cannot decode image: {e}")))?
        .to_rgb8();
    let (w, h) = decoded.dimensions();
    Image::from_u8_hwc(h as usize, w as usize, 3, decoded.as_raw())
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        let (path, label) = self.samples.get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for {} images",
                self.samples.len()
            ))
        })?;
        Ok((load_image(path)?, *label))
    }
    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image-folder".into())
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.samples.get(index).map(|s| s.1).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for {} images",
                self.samples.len()
            ))
        })
    }
}
