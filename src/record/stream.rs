//! Recordings larger than memory: written to disk in shards as they are made (thingsvision's
//! most asked-for feature), resumable, with memory bounded by one shard.
//!
//! A sharded recording is a folder: `shard-00000.safetensors`, `shard-00001.safetensors`, ...
//! (each an ordinary recording of a consecutive range of samples, readable with
//! [`Recording::load_safetensors`] or `safetensors.numpy.load_file`) and `index.json`, which
//! says what was recorded and which shards are complete. It is rewritten (atomically) after
//! every shard, so a run that is interrupted (Ctrl-C, a crash, a full disk) resumes from the
//! last complete shard when run again with the same settings.

use super::{Recorder, Recording};
use crate::data::{Dataset, Image, Transform};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Consecutive samples `start..start + len` of a dataset, as a dataset.
struct Range<'a, D: ?Sized> {
    inner: &'a D,
    start: usize,
    len: usize,
}

impl<D: Dataset + ?Sized> Dataset for Range<'_, D> {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        self.inner.get(self.start + index)
    }
    fn class_names(&self) -> Vec<String> {
        self.inner.class_names()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

/// What a sharded recording was made with: a folder made with other settings is refused rather
/// than resumed into a mixture.
fn settings(rec: &Recorder, name: String, samples: usize, shard: usize) -> Value {
    let reduce: Vec<Value> = rec
        .layers
        .iter()
        .map(|l| Value::String(format!("{:?}", rec.reduce_for(l))))
        .collect();
    json!({
        "arch": rec.model.arch(),
        "layers": rec.layers,
        "reduce": reduce,
        "dataset": name,
        "samples": samples,
        "shard_samples": shard,
    })
}

/// The file of shard `i`.
fn shard_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("shard-{i:05}.safetensors"))
}

impl Recorder<'_> {
    /// Records over `dataset` into the folder `dir`, `shard` samples per file, keeping at most
    /// one shard in memory; resumes a folder that an interrupted run with the same settings
    /// left. Returns the number of samples now on disk (all of them unless a stop request
    /// ended the run early; then run it again to continue).
    ///
    /// ```
    /// use neuroscope::data::{embedded, transforms::{Compose, Normalize}, Dataset};
    /// use neuroscope::models::{load, Weights};
    /// use neuroscope::record::{Recorder, Recording, Reduce};
    /// let net = load("mnist_cnn", &Weights::Random { seed: 1 }, &neuroscope::device::Device::Cpu)?;
    /// let ds = embedded::mnist().subset(50, 0)?;
    /// let tf = Compose::new().normalize(Normalize::mnist());
    /// let dir = std::env::temp_dir().join("neuroscope-doc-shards");
    /// let _ = std::fs::remove_dir_all(&dir);
    /// let rec = Recorder::new(&net).layers(&["conv1"]).progress(false);
    /// assert_eq!(rec.run_to_disk(&ds, &tf, &dir, 20)?, 50);     // 3 shards: 20, 20, 10
    /// assert_eq!(rec.run_to_disk(&ds, &tf, &dir, 20)?, 50);     // complete: nothing to do
    /// let back = Recording::load_sharded(&dir)?;
    /// assert_eq!(back.layer("conv1")?, rec.run(&ds, &tf)?.layer("conv1")?);
    /// # Ok::<(), neuroscope::Error>(())
    /// ```
    pub fn run_to_disk<D: Dataset + ?Sized>(
        &self,
        dataset: &D,
        transform: &dyn Transform,
        dir: impl AsRef<Path>,
        shard: usize,
    ) -> Result<usize> {
        let dir = dir.as_ref();
        let n = dataset.len();
        if shard == 0 {
            return Err(Error::InvalidArgument(
                "0 samples per shard: give at least 1".into(),
            ));
        }
        if n == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} has no samples",
                dataset.name()
            )));
        }
        crate::io::output::check_output_dir(dir)?;
        let want = settings(self, dataset.name(), n, shard);
        let index_path = dir.join("index.json");
        let mut done: Vec<Value> = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&index_path) {
            let old: Value = serde_json::from_str(&text)
                .map_err(|e| Error::format(&index_path, format!("not a shard index: {e}")))?;
            if old["settings"] != want {
                return Err(Error::InvalidArgument(format!(
                    "{} holds a recording made with other settings ({}); record into a new \
                     folder, or delete this one",
                    dir.display(),
                    old["settings"]
                )));
            }
            done = old["shards"].as_array().cloned().unwrap_or_default();
        }
        // Memory: one shard's buffers, not the whole recording's.
        let first = Range {
            inner: dataset,
            start: 0,
            len: shard.min(n),
        };
        let sample = crate::data::loader::make_batch(&first, transform, [0], self.model.device())?;
        self.plan(&sample.images, shard.min(n))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let shards = n.div_ceil(shard);
        // Samples on disk: the shards the index lists (the last one may be short).
        let on_disk = |done: &[Value]| -> usize {
            done.iter()
                .map(|s| s["samples"].as_u64().unwrap_or(0) as usize)
                .sum()
        };
        for i in done.len()..shards {
            let start = i * shard;
            let part = Range {
                inner: dataset,
                start,
                len: shard.min(n - start),
            };
            let mut rec = self.run(&part, transform)?;
            if rec.interrupted {
                // A partial shard is not kept: the next run records it again.
                break;
            }
            rec.indices.iter_mut().for_each(|k| *k += start);
            let path = shard_path(dir, i);
            rec.save_safetensors(&path)?;
            done.push(
                json!({"file": path.file_name().map(|f| f.to_string_lossy().into_owned()),
                             "start": start, "samples": part.len}),
            );
            let index = json!({
                "format": "neuroscope sharded recording 1",
                "settings": want,
                "complete": done.len() == shards,
                "shards": done,
            });
            crate::io::output::write_atomic(&index_path, format!("{index:#}\n").as_bytes())?;
            if crate::progress::take_stop_request() {
                break;
            }
        }
        Ok(on_disk(&done))
    }
}

impl Recording {
    /// Reads a folder written by [`Recorder::run_to_disk`] back as one recording (it must fit
    /// in memory; read single shards with [`Recording::load_safetensors`] otherwise). Refuses
    /// an incomplete folder, naming how many shards are missing.
    pub fn load_sharded(dir: impl AsRef<Path>) -> Result<Recording> {
        let dir = dir.as_ref();
        let index_path = dir.join("index.json");
        let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
        let index: Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(&index_path, format!("not a shard index: {e}")))?;
        let shards = index["shards"].as_array().cloned().unwrap_or_default();
        if index["complete"] != Value::Bool(true) {
            return Err(Error::format(
                &index_path,
                format!(
                    "the recording is incomplete ({} shards done): run the same record command \
                     again to finish it",
                    shards.len()
                ),
            ));
        }
        let mut parts = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let file = s["file"]
                .as_str()
                .ok_or_else(|| Error::format(&index_path, format!("shard {i} has no file")))?;
            parts.push(Recording::load_safetensors(dir.join(file))?);
        }
        let Some(first) = parts.first() else {
            return Err(Error::format(&index_path, "no shards"));
        };
        let mut out = Recording {
            layers: first.layers.clone(),
            class_names: first.class_names.clone(),
            ..Default::default()
        };
        for l in &out.layers.clone() {
            let views: Vec<_> = parts.iter().map(|p| p.data[l].view()).collect();
            let a = ndarray::concatenate(ndarray::Axis(0), &views)
                .map_err(|e| Error::format(dir, format!("layer {l}: shards do not fit: {e}")))?;
            out.data.insert(l.clone(), a);
        }
        if parts.iter().all(|p| p.labels.is_some()) {
            out.labels = Some(
                parts
                    .iter()
                    .flat_map(|p| p.labels.clone().unwrap_or_default())
                    .collect(),
            );
        }
        out.indices = (0..out.len()).collect();
        Ok(out)
    }
}
