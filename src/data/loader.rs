//! Batching samples into candle tensors (torch's `DataLoader` without workers: the images of a
//! batch are transformed in parallel on rayon's thread pool instead).

use super::{Dataset, Transform};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rayon::prelude::*;

/// One batch: images as an `N x C x H x W` `f32` tensor, their labels and their positions in
/// the dataset.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `N x C x H x W` images on the requested device.
    pub images: Tensor,
    /// Class labels, one per image.
    pub labels: Vec<usize>,
    /// Index of each image in the dataset.
    pub indices: Vec<usize>,
}

/// Iterator over the batches of a dataset, in order (no shuffling: recording activations
/// needs a stable order; shuffle with [`Dataset::subset`] if wanted).
///
/// ```
/// use neuroscope::data::{batches, embedded, transforms::Compose, Dataset};
/// use neuroscope::device::Device;
/// let ds = embedded::mnist().take(10);
/// let tf = Compose::new().resize(32, 32);
/// let shapes: Vec<_> = batches(&ds, &tf, 4, &Device::Cpu)
///     .map(|b| b.unwrap().images.dims().to_vec())
///     .collect();
/// assert_eq!(shapes, vec![vec![4, 1, 32, 32], vec![4, 1, 32, 32], vec![2, 1, 32, 32]]);
/// ```
pub fn batches<'a, D: Dataset + ?Sized>(
    dataset: &'a D,
    transform: &'a dyn Transform,
    batch_size: usize,
    device: &'a Device,
) -> Batches<'a, D> {
    Batches {
        dataset,
        transform,
        batch_size: batch_size.max(1),
        device,
        next: 0,
    }
}

/// The iterator returned by [`batches`].
pub struct Batches<'a, D: ?Sized> {
    dataset: &'a D,
    transform: &'a dyn Transform,
    batch_size: usize,
    device: &'a Device,
    next: usize,
}

impl<D: Dataset + ?Sized> Batches<'_, D> {
    /// Number of batches in all.
    pub fn count_batches(&self) -> usize {
        self.dataset.len().div_ceil(self.batch_size)
    }
}

impl<D: Dataset + ?Sized> Iterator for Batches<'_, D> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next;
        let end = (start + self.batch_size).min(self.dataset.len());
        if start >= end {
            return None;
        }
        self.next = end;
        Some(make_batch(
            self.dataset,
            self.transform,
            start..end,
            self.device,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self
            .dataset
            .len()
            .saturating_sub(self.next)
            .div_ceil(self.batch_size);
        (left, Some(left))
    }
}

/// The samples at `indices` (transformed in parallel) stacked into one batch.
///
/// The first sample fixes the shape; every sample is then transformed straight into its slot
/// of one batch buffer, which becomes the tensor without another copy.
pub fn make_batch<D: Dataset + ?Sized>(
    dataset: &D,
    transform: &dyn Transform,
    indices: impl IntoIterator<Item = usize>,
    device: &Device,
) -> Result<Batch> {
    let indices: Vec<usize> = indices.into_iter().collect();
    let Some(&first) = indices.first() else {
        return Err(Error::InvalidArgument(
            "a batch needs at least one sample".into(),
        ));
    };
    let (img, label0) = dataset.get_transformed(first, transform)?;
    let shape = img.shape();
    let size = img.data().len();
    let mut data = vec![0f32; indices.len() * size];
    data[..size].copy_from_slice(img.data());
    let rest: Vec<usize> = data[size..]
        .par_chunks_mut(size)
        .zip(indices[1..].par_iter())
        .map(|(slot, &i)| {
            let (img, label) = dataset.get(i)?;
            transform.apply_into(img, slot).map_err(|e| match e {
                Error::Shape { expected, got, .. } => Error::Shape {
                    what: format!("sample {i} of {}", dataset.name()),
                    expected,
                    got,
                },
                e => e,
            })?;
            Ok(label)
        })
        .collect::<Result<_>>()?;
    let labels: Vec<usize> = std::iter::once(label0).chain(rest).collect();
    let images = Tensor::from_vec(data, (labels.len(), shape.0, shape.1, shape.2), device)?;
    Ok(Batch {
        images,
        labels,
        indices,
    })
}

/// Every sample of `dataset` as one tensor (fine for thousands of small images; use
/// [`batches`] for large inputs).
///
/// ```
/// use neuroscope::data::{embedded, loader::load_all, transforms::Compose, Dataset};
/// let b = load_all(&embedded::fashion_mnist().take(8), &Compose::new(), &neuroscope::device::Device::Cpu).unwrap();
/// assert_eq!(b.images.dims(), &[8, 1, 28, 28]);
/// ```
pub fn load_all<D: Dataset + ?Sized>(
    dataset: &D,
    transform: &dyn Transform,
    device: &Device,
) -> Result<Batch> {
    make_batch(dataset, transform, 0..dataset.len(), device)
}
