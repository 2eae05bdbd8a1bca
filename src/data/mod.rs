//! Data: images, labelled datasets, readers for the file formats vision courses use, the
//! datasets compiled into the crate, transforms and batching into candle tensors.
//!
//! The pieces mirror torchvision so that a workflow (`../shared/seeds/`) translates line by line:
//!
//! | torchvision | neuroscope |
//! |---|---|
//! | `datasets.MNIST(...)` / `FashionMNIST` | [`embedded::mnist`], [`embedded::fashion_mnist`], [`remote::mnist`] |
//! | `datasets.CIFAR10` | [`cifar::load`], [`remote::cifar10`] |
//! | `datasets.ImageFolder` | [`folder::ImageFolder`] |
//! | `np.load` | [`crate::io::npy::read`], [`NpyDataset`] |
//! | `transforms.Compose([...])` | [`transforms::Compose`] |
//! | `Subset(ds, np.random.choice(...))` | [`Dataset::subset`] |
//! | `DataLoader(ds, batch_size=64)` | [`loader::batches`] |
//!
//! ```
//! use neuroscope::data::{embedded, transforms::Compose, Dataset};
//! let ds = embedded::fashion_mnist().subset(100, 0).unwrap();
//! let tf = Compose::new().resize(64, 64).gray_to_rgb().normalize_mean_std(&[0.5], &[0.5]);
//! let (img, label) = ds.get_transformed(0, &tf).unwrap();
//! assert_eq!(img.shape(), (3, 64, 64));
//! assert!(label < 10);
//! ```

pub mod cifar;
pub mod embedded;
pub mod files;
pub mod folder;
pub mod image;
pub mod loader;
pub mod remote;
pub mod transforms;

pub use self::image::Image;
pub use files::NpyDataset;
pub use loader::{batches, Batch};
pub use transforms::{Compose, Normalize, Transform};

use crate::rng::Rng;
use crate::{Error, Result};
use std::sync::Arc;

/// A labelled collection of images, indexed from 0.
///
/// Implement [`len`](Dataset::len), [`get`](Dataset::get) and
/// [`class_names`](Dataset::class_names); everything else (subsets, transforms, batching,
/// label histograms) comes for free.
///
/// ```
/// use neuroscope::data::{Dataset, Image};
/// struct Two;
/// impl Dataset for Two {
///     fn len(&self) -> usize { 2 }
///     fn get(&self, i: usize) -> neuroscope::Result<(Image, usize)> {
///         Ok((Image::new(1, 2, 2, vec![i as f32; 4])?, i))
///     }
///     fn class_names(&self) -> Vec<String> { vec!["zero".into(), "one".into()] }
/// }
/// assert_eq!(Two.label_counts().unwrap(), vec![1, 1]);
/// ```
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Sample `index` as a float image (values in `[0, 1]` for 8-bit sources) and its class.
    fn get(&self, index: usize) -> Result<(Image, usize)>;

    /// Names of the classes, in label order.
    fn class_names(&self) -> Vec<String>;

    /// A short name for listings and figure titles.
    fn name(&self) -> String {
        "dataset".into()
    }

    /// True when the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class of sample `index`. Readers that keep labels apart from pixels override this so
    /// that label-only work does not decode images.
    fn label(&self, index: usize) -> Result<usize> {
        Ok(self.get(index)?.1)
    }

    /// All labels in order.
    fn labels(&self) -> Result<Vec<usize>> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }

    /// How many samples each class has (a histogram of [`labels`](Dataset::labels)).
    fn label_counts(&self) -> Result<Vec<usize>> {
        let mut counts = vec![0; self.class_names().len()];
        for l in self.labels()? {
            if l >= counts.len() {
                counts.resize(l + 1, 0);
            }
            counts[l] += 1;
        }
        Ok(counts)
    }

    /// The first `k` indices of every class (fewer where a class has fewer), class by class:
    /// the usual choice of examples for a labelled grid.
    ///
    /// ```
    /// use neuroscope::data::{embedded, Dataset};
    /// let per_class = embedded::mnist().first_per_class(2).unwrap();
    /// assert_eq!(per_class.len(), 10);
    /// assert!(per_class.iter().all(|v| v.len() == 2));
    /// ```
    fn first_per_class(&self, k: usize) -> Result<Vec<Vec<usize>>> {
        let mut out = vec![Vec::new(); self.class_names().len()];
        for (i, l) in self.labels()?.into_iter().enumerate() {
            if l < out.len() && out[l].len() < k {
                out[l].push(i);
            }
        }
        Ok(out)
    }

    /// Sample `index` passed through `transform`.
    fn get_transformed(&self, index: usize, transform: &dyn Transform) -> Result<(Image, usize)> {
        let (img, label) = self.get(index)?;
        Ok((transform.apply(img)?, label))
    }

    /// `n` distinct samples drawn at random with `seed` (numpy's
    /// `np.random.choice(len, n, replace=False)` followed by `Subset`). The same seed gives the
    /// same indices on every machine and every run.
    fn subset(self, n: usize, seed: u64) -> Result<Subset<Self>>
    where
        Self: Sized,
    {
        let len = self.len();
        let indices = Rng::new(seed).sample_indices(len, n).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "subset of {n} requested from {} with only {len} samples",
                self.name()
            ))
        })?;
        Ok(Subset {
            inner: self,
            indices,
        })
    }

    /// The samples at `indices`, in that order.
    fn select(self, indices: Vec<usize>) -> Result<Subset<Self>>
    where
        Self: Sized,
    {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidArgument(format!(
                "index {bad} out of range for {} with {} samples",
                self.name(),
                self.len()
            )));
        }
        Ok(Subset {
            inner: self,
            indices,
        })
    }

    /// The first `n` samples (all of them if there are fewer).
    fn take(self, n: usize) -> Subset<Self>
    where
        Self: Sized,
    {
        let indices = (0..n.min(self.len())).collect();
        Subset {
            inner: self,
            indices,
        }
    }
}

/// References and smart pointers to a dataset are datasets too (so `&ds`, `Arc<ds>` and
/// `Box<dyn Dataset>` can be subset, batched and recorded).
macro_rules! forward_dataset {
    ($($ptr:ty),*) => {$(
        impl<D: Dataset + ?Sized> Dataset for $ptr {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn get(&self, index: usize) -> Result<(Image, usize)> {
                (**self).get(index)
            }
            fn class_names(&self) -> Vec<String> {
                (**self).class_names()
            }
            fn name(&self) -> String {
                (**self).name()
            }
            fn label(&self, index: usize) -> Result<usize> {
                (**self).label(index)
            }
        }
    )*};
}

forward_dataset!(&D, Arc<D>, Box<D>);

/// Some samples of another dataset, by index (torch's `Subset`).
///
/// ```
/// use neuroscope::data::{embedded, Dataset};
/// let a = embedded::mnist().subset(10, 42).unwrap();
/// let b = embedded::mnist().subset(10, 42).unwrap();
/// assert_eq!(a.indices(), b.indices());
/// ```
#[derive(Clone, Debug)]
pub struct Subset<D> {
    inner: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// Indices into the parent dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
    /// The parent dataset.
    pub fn parent(&self) -> &D {
        &self.inner
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        self.inner.get(self.parent_index(index)?)
    }
    fn class_names(&self) -> Vec<String> {
        self.inner.class_names()
    }
    fn name(&self) -> String {
        format!("{} (subset of {})", self.inner.name(), self.indices.len())
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.inner.label(self.parent_index(index)?)
    }
}

impl<D: Dataset> Subset<D> {
    fn parent_index(&self, index: usize) -> Result<usize> {
        self.indices.get(index).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for a subset of {}",
                self.indices.len()
            ))
        })
    }
}

/// Images held in memory as bytes, `N x C x H x W` (what IDX, CIFAR and the embedded data
/// decode into). Bytes, not floats, so that 70,000 Fashion-MNIST images take 55 MB, not 220 MB.
///
/// ```
/// use neuroscope::data::{Dataset, InMemory};
/// let ds = InMemory::new("tiny", vec![0, 255, 7, 9], 2, (1, 1, 2), vec![0, 1], vec!["a".into(), "b".into()]).unwrap();
/// assert_eq!(ds.get(0).unwrap().0.data(), &[0.0, 1.0]);
/// ```
#[derive(Clone, Debug)]
pub struct InMemory {
    name: String,
    pixels: Vec<u8>,
    n: usize,
    shape: (usize, usize, usize),
    labels: Vec<usize>,
    classes: Vec<String>,
}

impl InMemory {
    /// A dataset of `n` images of `shape = (channels, height, width)` stored channel-first in
    /// `pixels`, with one label per image.
    pub fn new(
        name: impl Into<String>,
        pixels: Vec<u8>,
        n: usize,
        shape: (usize, usize, usize),
        labels: Vec<usize>,
        classes: Vec<String>,
    ) -> Result<Self> {
        let name = name.into();
        let (c, h, w) = shape;
        if pixels.len() != n * c * h * w {
            return Err(Error::Shape {
                what: format!("pixels of {name}"),
                expected: format!("{n} x {c} x {h} x {w} = {} bytes", n * c * h * w),
                got: format!("{} bytes", pixels.len()),
            });
        }
        if labels.len() != n {
            return Err(Error::Shape {
                what: format!("labels of {name}"),
                expected: format!("{n} labels"),
                got: format!("{}", labels.len()),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes.len()) {
            return Err(Error::InvalidArgument(format!(
                "{name}: label {bad} but only {} class names",
                classes.len()
            )));
        }
        Ok(InMemory {
            name,
            pixels,
            n,
            shape,
            labels,
            classes,
        })
    }

    /// `(channels, height, width)` of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// The raw bytes of image `index`, channel-first.
    pub fn bytes(&self, index: usize) -> Option<&[u8]> {
        let (c, h, w) = self.shape;
        let sz = c * h * w;
        (index < self.n).then(|| &self.pixels[index * sz..(index + 1) * sz])
    }

    /// All pixels, `N x C x H x W` bytes.
    pub fn all_bytes(&self) -> &[u8] {
        &self.pixels
    }
}

impl Dataset for InMemory {
    fn len(&self) -> usize {
        self.n
    }
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        let bytes = self.bytes(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for {} with {} samples",
                self.name, self.n
            ))
        })?;
        let (c, h, w) = self.shape;
        Ok((Image::from_u8(c, h, w, bytes)?, self.labels[index]))
    }
    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.labels.get(index).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "index {index} out of range for {} with {} samples",
                self.name, self.n
            ))
        })
    }
    fn labels(&self) -> Result<Vec<usize>> {
        Ok(self.labels.clone())
    }
}
