//! The front door: `use neuroscope::prelude::*;` brings the names a notebook needs, from data
//! to figures, so that a cell starts with one line instead of five or eight.
//!
//! ```
//! use neuroscope::prelude::*;
//! let ds = embedded::mnist().subset(32, 0)?;
//! let net = load("mnist_cnn", &Weights::Trained, &Device::Cpu)?;
//! let rec = Recorder::new(&net).layers(&["h5"]).reduce(Reduce::Flatten).progress(false)
//!     .run(&ds, &models::default_transform("mnist_cnn"))?;
//! let coords = Pca::new().n_components(2).fit(&rec.matrix("h5")?)?.transform(&rec.matrix("h5")?)?;
//! let labels = KMeans::new(10).seed(0).fit(&coords)?.labels().to_vec();
//! assert_eq!(labels.len(), 32);
//! let fig: Figure = Scatter::new(&coords)?.into();
//! # let _ = fig;
//! # Ok::<(), neuroscope::Error>(())
//! ```

pub use crate::analysis::cluster::{Dbscan, KMeans, Method};
pub use crate::analysis::embed::{Tsne, Umap};
pub use crate::analysis::pca::Pca;
pub use crate::analysis::{metrics, rsa, Analysis, Reducer};
pub use crate::data::{embedded, Compose, Dataset, Normalize};
pub use crate::device::{self, Device};
pub use crate::featvis::{FeatVis, Objective, Preset};
pub use crate::models::{self, load, Model, Weights};
pub use crate::plot::{Figure, Heatmap, Images, InteractiveScatter, Lines, Scatter};
pub use crate::record::{Recorder, Recording, Reduce};
pub use crate::train::{Optimizer, Train};
pub use crate::Result;
