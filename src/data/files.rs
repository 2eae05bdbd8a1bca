//! Datasets from files: an IDX image file with its label file (MNIST's and Fashion-MNIST's
//! format), or an `.npy` image array with optional labels. The formats themselves are read
//! by [`crate::io::idx`] and [`crate::io::npy`].

use super::{Dataset, Image, InMemory};
use crate::io::{idx, idx::IdxArray, npy};
use crate::{Error, Result};
use ndarray::ArrayD;
use std::path::Path;

/// A labelled image dataset from an IDX image file (`N x H x W`) and an IDX label file (`N`),
/// as MNIST and Fashion-MNIST ship. Labels must be below `class_names.len()`.
///
/// ```no_run
/// use neuroscope::data::{files, Dataset};
/// let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
/// let ds = files::load_pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "mnist-test", classes).unwrap();
/// assert_eq!(ds.len(), 10_000);
/// ```
pub fn load_pair(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    name: &str,
    class_names: Vec<String>,
) -> Result<InMemory> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    from_arrays(idx::read(ip)?, ip, idx::read(lp)?, lp, name, class_names)
}

/// Like [`load_pair`], from bytes already in memory (`origin`s name them in errors).
pub fn from_bytes(
    images: &[u8],
    images_origin: &str,
    labels: &[u8],
    labels_origin: &str,
    name: &str,
    class_names: Vec<String>,
) -> Result<InMemory> {
    from_arrays(
        idx::parse(images, images_origin)?,
        Path::new(images_origin),
        idx::parse(labels, labels_origin)?,
        Path::new(labels_origin),
        name,
        class_names,
    )
}

fn from_arrays(
    images: IdxArray,
    ip: &Path,
    labels: IdxArray,
    lp: &Path,
    name: &str,
    class_names: Vec<String>,
) -> Result<InMemory> {
    if images.dims.len() != 3 {
        return Err(Error::format(
            ip,
            format!(
                "expected images of shape N x H x W, found {} dimensions {:?}",
                images.dims.len(),
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(Error::format(
            lp,
            format!(
                "expected labels of shape N, found dimensions {:?}",
                labels.dims
            ),
        ));
    }
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(Error::format(
            lp,
            format!(
                "{} labels for {n} images in {}",
                labels.dims[0],
                ip.display()
            ),
        ));
    }
    if let Some(pos) = labels
        .data
        .iter()
        .position(|&l| l as usize >= class_names.len())
    {
        return Err(Error::format(
            lp,
            format!(
                "label {} at position {pos} but the dataset has {} classes",
                labels.data[pos],
                class_names.len()
            ),
        ));
    }
    let labels = labels.data.iter().map(|&l| l as usize).collect();
    InMemory::new(name, images.data, n, (1, h, w), labels, class_names)
}

/// Images from an `.npy` array (`N x C x H x W`, or `N x H x W` for one channel) with
/// optional labels. Values are used as they are, except `uint8` arrays, which are scaled to
/// `[0, 1]` like every other 8-bit source.
///
/// ```
/// use neuroscope::data::{NpyDataset, Dataset};
/// let a = ndarray::ArrayD::<f32>::zeros(vec![4, 3, 8, 8]);
/// let ds = NpyDataset::from_array(a, None).unwrap();
/// assert_eq!(ds.get(3).unwrap().0.shape(), (3, 8, 8));
/// assert!(NpyDataset::from_array(ndarray::ArrayD::<f32>::zeros(vec![4]), None).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct NpyDataset {
    images: ArrayD<f32>,
    labels: Vec<usize>,
    classes: Vec<String>,
}

impl NpyDataset {
    /// Reads images (and labels, if given) from `.npy` files.
    pub fn open(images: impl AsRef<Path>, labels: Option<&Path>) -> Result<Self> {
        let arr = npy::read_images(images)?;
        let labels = labels.map(npy::read_labels).transpose()?;
        Self::from_array(arr, labels)
    }

    /// Wraps an array already in memory.
    pub fn from_array(images: ArrayD<f32>, labels: Option<Vec<usize>>) -> Result<Self> {
        let images = match images.ndim() {
            3 => images.insert_axis(ndarray::Axis(1)),
            4 => images,
            _ => {
                return Err(Error::Shape {
                    what: "image array".into(),
                    expected: "N x C x H x W or N x H x W".into(),
                    got: format!("{:?}", images.shape()),
                })
            }
        };
        let n = images.shape()[0];
        let labels = labels.unwrap_or_else(|| vec![0; n]);
        if labels.len() != n {
            return Err(Error::Shape {
                what: "labels".into(),
                expected: format!("{n} (one per image)"),
                got: labels.len().to_string(),
            });
        }
        let k = labels.iter().max().map_or(1, |m| m + 1);
        let classes = (0..k).map(|c| c.to_string()).collect();
        Ok(NpyDataset {
            images: images.as_standard_layout().into_owned(),
            labels,
            classes,
        })
    }
}

impl Dataset for NpyDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        if index >= self.len() {
            return Err(Error::InvalidArgument(format!(
                "index {index} out of range for {} images",
                self.len()
            )));
        }
        let s = self.images.shape();
        let (c, h, w) = (s[1], s[2], s[3]);
        let view = self.images.index_axis(ndarray::Axis(0), index);
        Image::new(c, h, w, view.iter().copied().collect()).map(|img| (img, self.labels[index]))
    }
    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn name(&self) -> String {
        "npy".into()
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.labels.get(index).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for {} images",
                self.len()
            ))
        })
    }
}
