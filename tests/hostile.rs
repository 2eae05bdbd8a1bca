//! Hostile but realistic input to the command-line program: damaged files of every format it
//! reads, wrong shapes and dtypes, absurd sizes, NaN, outputs that would replace inputs. Each
//! case must end in a clear refusal (non-zero exit, an `error:` line saying what to do), never a
//! panic, and leave every existing file as it was.
#![cfg(feature = "cli")]

mod common;

use common::neuroscope;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A folder of inputs, damaged files and existing outputs, removed at the end.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir =
            std::env::temp_dir().join(format!("neuroscope-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.dir.join(name), bytes).unwrap();
        self.path(name)
    }

    /// Every file below the folder and its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir, &mut out);
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A version-1 `.npy` file with `descr`, `shape` and raw little-endian `data`.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut head =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = 10 + head.len() + 1;
    head.push_str(&" ".repeat((64 - total % 64) % 64));
    head.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(head.len() as u16).to_le_bytes());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Runs `args` and requires a clean refusal whose message contains `says` (case-insensitive),
/// and that no file in the sandbox changed.
fn refused(sb: &Sandbox, args: &[&str], says: &str) {
    let before = sb.snapshot();
    let (ok, text) = neuroscope(args);
    let after = sb.snapshot();
    let shown = format!("neuroscope {}\n{text}", args.join(" "));
    assert!(!ok, "accepted: {shown}");
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "panicked: {shown}"
    );
    assert!(text.contains("error"), "no error line: {shown}");
    assert!(
        !text.contains("invalid argument: invalid argument"),
        "a repeated prefix: {shown}"
    );
    assert!(
        text.to_lowercase().contains(&says.to_lowercase()),
        "the message does not say '{says}': {shown}"
    );
    for (p, bytes) in &before {
        assert!(
            after.get(p) == Some(bytes),
            "{} changed or vanished: {shown}",
            p.display()
        );
    }
    let new: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(new.is_empty(), "left files behind {new:?}: {shown}");
}

/// The files every case may use: a good image array, a good matrix, labels, damaged files and
/// existing outputs (which must survive every refusal).
fn sandbox(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    let px: Vec<f32> = (0..2 * 3 * 64 * 64)
        .map(|i| (i % 17) as f32 / 17.0)
        .collect();
    sb.write("images.npy", &npy("<f4", &[2, 3, 64, 64], &f32_bytes(&px)));
    let m: Vec<f64> = (0..40 * 5).map(|i| ((i * 7) % 11) as f64).collect();
    sb.write("m.npy", &npy("<f8", &[40, 5], &f64_bytes(&m)));
    let mut nan = m.clone();
    nan[17] = f64::NAN;
    sb.write("nan.npy", &npy("<f8", &[40, 5], &f64_bytes(&nan)));
    let labels: Vec<u8> = (0..40i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
    sb.write("labels.npy", &npy("<i8", &[40], &labels));
    let short: Vec<u8> = (0..30i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
    sb.write("labels30.npy", &npy("<i8", &[30], &short));
    let half: Vec<u8> = (0..40)
        .flat_map(|i| (i as f64 + 0.5).to_le_bytes())
        .collect();
    sb.write("halves.npy", &npy("<f8", &[40], &half));
    let good = npy("<f8", &[40, 5], &f64_bytes(&m));
    sb.write("truncated.npy", &good[..good.len() - 100]);
    sb.write("header-only.npy", &good[..40]);
    sb.write("bad-magic.npy", b"NOTNUMPY\x01\x00 this is not an array");
    sb.write("complex.npy", &npy("<c8", &[4], &[0u8; 32]));
    sb.write("flat.npy", &npy("<f4", &[12], &f32_bytes(&[0.0; 12])));
    sb.write("empty.npy", b"");
    sb.write(
        "corrupt.safetensors",
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    );
    sb.write("short.safetensors", &[8, 0, 0, 0, 0, 0, 0, 0, b'{']);
    sb.write("empty.pth", b"");
    sb.write("not-a-zip.pth", b"PK but not really a zip archive at all");
    sb.write("text.txt", b"hello");
    // A recording whose two layers cover different samples (3 and 4).
    let header = r#"{"__metadata__":{"layers":"[\"a\",\"b\"]"},"a":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[4,2],"data_offsets":[24,56]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header.as_bytes());
    st.extend_from_slice(&f32_bytes(&[
        1.0, 2.0, 3.0, 5.0, 4.0, 1.0, 1.0, 3.0, 2.0, 2.0, 5.0, 1.0, 0.0, 4.0,
    ]));
    sb.write("ragged.safetensors", &st);
    // Existing outputs: every refusal must leave them as they are.
    sb.write("existing.npy", b"SENTINEL npy");
    sb.write("existing.safetensors", b"SENTINEL safetensors");
    sb.write("existing.png", b"SENTINEL png");
    std::fs::create_dir_all(sb.dir.join("a-folder")).unwrap();
    sb.write("a-folder/keep.txt", b"SENTINEL");
    sb
}

#[test]
fn record_refuses_bad_input_before_work() {
    let sb = sandbox("record");
    let (img, out) = (sb.path("images.npy"), sb.path("existing.safetensors"));
    let rec = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["record", "--arch", "alexnet"].map(String::from).to_vec();
        if !extra.contains(&"--layers") {
            v.extend(["--layers".to_string(), "features.0".to_string()]);
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        // Output format and place.
        (
            rec(&["--input", &img, "--out", &sb.path("x.npy")]),
            ".safetensors",
        ),
        (
            rec(&["--input", &img, "--out", &sb.path("a-folder")]),
            "folder",
        ),
        (
            rec(&["--input", &img, "--weights", &out, "--out", &out]),
            "also an input",
        ),
        // Settings wrong whatever the data.
        (
            rec(&["--input", &img, "--batch-size", "0", "--out", &out]),
            "batch",
        ),
        (
            rec(&["--input", &img, "--subsample", "0", "--out", &out]),
            "subsample 0",
        ),
        (
            rec(&["--input", &img, "--reduce", "median", "--out", &out]),
            "flatten",
        ),
        (
            rec(&["--input", &img, "--dataset", "mnist", "--out", &out]),
            "cannot be used with",
        ),
        // Damaged or unfit arrays.
        (
            rec(&["--input", &sb.path("truncated.npy"), "--out", &out]),
            "truncated.npy",
        ),
        (
            rec(&["--input", &sb.path("header-only.npy"), "--out", &out]),
            "header-only.npy",
        ),
        (
            rec(&["--input", &sb.path("bad-magic.npy"), "--out", &out]),
            "bad-magic.npy",
        ),
        (
            rec(&["--input", &sb.path("complex.npy"), "--out", &out]),
            "c8",
        ),
        (
            rec(&["--input", &sb.path("flat.npy"), "--out", &out]),
            "flat.npy",
        ),
        (
            rec(&["--input", &sb.path("empty.npy"), "--out", &out]),
            "empty.npy",
        ),
        (
            rec(&["--input", &sb.path("missing.npy"), "--out", &out]),
            "missing.npy",
        ),
        // Damaged weights.
        (
            rec(&[
                "--input",
                &img,
                "--weights",
                &sb.path("corrupt.safetensors"),
                "--out",
                &out,
            ]),
            "corrupt.safetensors",
        ),
        (
            rec(&[
                "--input",
                &img,
                "--weights",
                &sb.path("short.safetensors"),
                "--out",
                &out,
            ]),
            "short.safetensors",
        ),
        (
            rec(&[
                "--input",
                &img,
                "--weights",
                &sb.path("empty.pth"),
                "--out",
                &out,
            ]),
            "empty.pth: the file is empty",
        ),
        (
            rec(&[
                "--input",
                &img,
                "--weights",
                &sb.path("not-a-zip.pth"),
                "--out",
                &out,
            ]),
            "before 1.6",
        ),
        // Unknown names and bad subsets.
        (
            rec(&["--input", &img, "--layers", "features.99", "--out", &out]),
            "features.0",
        ),
        (rec(&["--dataset", "imagenet", "--out", &out]), "mnist"),
        (
            rec(&["--dataset", "mnist:abc", "--out", &out]),
            "must be a number",
        ),
        (
            rec(&["--dataset", "mnist:0", "--out", &out]),
            "has no samples",
        ),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sb, &args, says);
    }
    refused(
        &sb,
        &[
            "record", "--arch", "alexnet2", "--input", &img, "--layers", "all", "--out", &out,
        ],
        "resnet50",
    );
}

#[test]
fn record_estimates_memory_before_it_runs() {
    // ResNet-50's every module, unreduced, for 2,000 images: hundreds of GB. Refused at once,
    // with the estimate and what to do instead.
    let sb = sandbox("memory");
    refused(
        &sb,
        &[
            "record",
            "--arch",
            "resnet50",
            "--dataset",
            "mnist:2000",
            "--layers",
            "all",
            "--reduce",
            "none",
            "--out",
            &sb.path("big.safetensors"),
        ],
        "--reduce mean",
    );
}

#[test]
fn record_refuses_a_batch_that_cannot_fit() {
    // 2,000 images of 224 px through ResNet-50 in one forward pass: tens of GB of activations.
    let sb = sandbox("batch");
    refused(
        &sb,
        &[
            "record",
            "--arch",
            "resnet50",
            "--dataset",
            "mnist:2000",
            "--layers",
            "fc",
            "--batch-size",
            "1000000000",
            "--out",
            &sb.path("r.safetensors"),
        ],
        "--batch-size",
    );
}

#[test]
fn featvis_refuses_bad_settings_before_work() {
    let sb = sandbox("featvis");
    let out = sb.path("existing.png");
    let fv = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["featvis", "--arch", "mnist_cnn"]
            .map(String::from)
            .to_vec();
        if !extra.contains(&"--layer") {
            v.extend(["--layer".to_string(), "conv2".to_string()]);
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (fv(&["--lr", "NaN", "--out", &out]), "learning rate"),
        (fv(&["--lr", "inf", "--out", &out]), "learning rate"),
        (fv(&["--lr=-10", "--out", &out]), "learning rate"),
        (fv(&["--lr", "0", "--out", &out]), "learning rate"),
        (fv(&["--size", "100000", "--out", &out]), "4096"),
        (fv(&["--size", "0", "--out", &out]), "image size"),
        (fv(&["--steps", "0", "--out", &out]), "steps"),
        (fv(&["--out", &sb.path("x.jpg")]), ".png"),
        (
            fv(&["--out", &sb.path("v.png"), "--history", &sb.path("h.txt")]),
            ".json",
        ),
        (
            fv(&["--objective", "channel:5-2", "--out", &out]),
            "B must be larger",
        ),
        (fv(&["--objective", "colour:3", "--out", &out]), "channel"),
        (fv(&["--layer", "conv9", "--out", &out]), "conv2"),
        (fv(&["--preset", "fancy", "--out", &out]), "lucent"),
        (fv(&["--device", "tpu", "--out", &out]), "cuda"),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sb, &args, says);
    }
}

#[test]
fn train_refuses_bad_settings_before_work() {
    let sb = sandbox("train");
    let out = sb.path("existing.safetensors");
    let tr = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["train", "--dataset", "mnist:300", "--test", "100"]
            .map(String::from)
            .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (tr(&["--epochs", "0", "--out", &out]), "--epochs 0"),
        (tr(&["--batch-size", "0", "--out", &out]), "batch-size 0"),
        (tr(&["--resume", "--out", &out]), "--checkpoints"),
        (tr(&["--out", &out, "--history", &sb.path("h.pdf")]), ".svg"),
        (tr(&["--out", &sb.path("w.npy")]), ".safetensors"),
        (
            tr(&["--out", &out, "--checkpoints", &sb.path("text.txt")]),
            "is a file",
        ),
        (tr(&["--optimizer", "lbfgs", "--out", &out]), "adam"),
        (tr(&["--lr", "NaN", "--out", &out]), "learning rate"),
        (tr(&["--weights", &out, "--out", &out]), "also an input"),
        (tr(&["--arch", "resnet", "--out", &out]), "resnet18"),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sb, &args, says);
    }
}

#[test]
fn analysis_commands_refuse_bad_input() {
    let sb = sandbox("analysis");
    let (m, out) = (sb.path("m.npy"), sb.path("existing.npy"));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (s(&["pca", "--input", &m, "--out", &m]), "also an input"),
        (
            s(&["pca", "--input", &m, "--out", &sb.path("evr.txt")]),
            ".npy",
        ),
        (
            s(&["pca", "--input", &sb.path("truncated.npy"), "--out", &out]),
            "truncated.npy",
        ),
        (
            s(&["pca", "--input", &m, "--solver", "magic", "--out", &out]),
            "randomized",
        ),
        (
            s(&["pca", "--input", &m, "--n-components", "0", "--out", &out]),
            "component",
        ),
        (
            s(&["pca", "--input", &sb.path("nan.npy"), "--out", &out]),
            "nan",
        ),
        (
            s(&[
                "cluster", "--method", "spectral", "--input", &m, "--out", &out,
            ]),
            "dbscan",
        ),
        (
            s(&[
                "cluster", "--method", "dbscan", "--eps=-1", "--input", &m, "--out", &out,
            ]),
            "eps",
        ),
        (
            s(&["cluster", "--method", "kmeans", "--input", &m, "--out", &m]),
            "also an input",
        ),
        (
            s(&[
                "cluster",
                "--method",
                "hdbscan",
                "--min-cluster-size",
                "100",
                "--input",
                &m,
                "--out",
                &out,
            ]),
            "min_cluster_size",
        ),
        (
            s(&[
                "embed",
                "--method",
                "tsne",
                "--perplexity",
                "0",
                "--input",
                &m,
                "--out",
                &out,
            ]),
            "perplexity",
        ),
        (
            s(&[
                "embed", "--method", "umap", "--dims", "0", "--input", &m, "--out", &out,
            ]),
            "dim",
        ),
        (
            s(&[
                "embed",
                "--method",
                "pca",
                "--input",
                &m,
                "--out",
                &out,
                "--transform",
                &m,
                "--transform-out",
                &out,
            ]),
            "own file",
        ),
        (
            s(&[
                "embed",
                "--method",
                "tsne",
                "--input",
                &sb.path("nan.npy"),
                "--out",
                &out,
            ]),
            "nan",
        ),
        (
            s(&[
                "score",
                "--metric",
                "ari",
                "--true",
                &sb.path("labels.npy"),
                "--pred",
                &sb.path("labels30.npy"),
            ]),
            "30",
        ),
        (
            s(&[
                "score",
                "--metric",
                "ari",
                "--true",
                &sb.path("halves.npy"),
                "--pred",
                &sb.path("labels.npy"),
            ]),
            "integer",
        ),
        (
            s(&[
                "rsa",
                "--acts",
                &sb.path("corrupt.safetensors"),
                "--out",
                &sb.path("r.safetensors"),
            ]),
            "corrupt.safetensors",
        ),
        (
            s(&[
                "rsa",
                "--acts",
                &sb.path("m.npy"),
                "--out",
                &sb.path("m.npy"),
            ]),
            ".safetensors",
        ),
        (
            s(&[
                "rsa",
                "--acts",
                &sb.path("existing.safetensors"),
                "--out",
                &sb.path("existing.safetensors"),
            ]),
            "also an input",
        ),
        (
            s(&[
                "rsa",
                "--acts",
                &sb.path("ragged.safetensors"),
                "--out",
                &sb.path("r.safetensors"),
            ]),
            "as layer a has",
        ),
        (s(&["tour", "--out", &sb.path("text.txt")]), "is a file"),
        (s(&["device", "--device", "tpu"]), "cuda"),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sb, &args, says);
    }
}

#[test]
fn resuming_refuses_a_damaged_state_or_other_settings() {
    let sb = sandbox("resume");
    let ck = sb.path("ck");
    let out = sb.path("w.safetensors");
    let base = [
        "train",
        "--dataset",
        "mnist:300",
        "--test",
        "100",
        "--momentum",
        "0.9",
        "--checkpoints",
        &ck,
        "--out",
        &out,
    ];
    let (ok, text) = neuroscope(&base);
    assert!(ok, "{text}");
    // Other settings than the checkpoint's.
    let mut other = base.to_vec();
    other.extend(["--resume", "--epochs", "2", "--lr", "0.05"]);
    refused(&sb, &other, "learning rate 0.01");
    let mut adam = base.to_vec();
    adam.extend(["--resume", "--epochs", "2", "--optimizer", "adam"]);
    refused(&sb, &adam, "optimiser sgd");
    // A damaged optimiser state is an error, not a silent restart of the momentum.
    let optim = sb.dir.join("ck/epoch-1.optim.safetensors");
    assert!(optim.exists());
    std::fs::write(&optim, b"damaged").unwrap();
    let mut resume = base.to_vec();
    resume.extend(["--resume", "--epochs", "2"]);
    refused(&sb, &resume, "epoch-1.optim.safetensors");
    std::fs::remove_file(&optim).unwrap();
    refused(&sb, &resume, "is missing");
}

#[test]
fn outputs_are_replaced_whole_through_a_temporary_file() {
    let sb = sandbox("atomic");
    let m = sb.path("m.npy");
    let out = sb.path("evr.npy");
    let (ok, text) = neuroscope(&["pca", "--input", &m, "--out", &out]);
    assert!(ok, "{text}");
    let first = std::fs::read(&out).unwrap();
    // A second run into the same file replaces it whole (same bytes: same input).
    let (ok, text) = neuroscope(&["pca", "--input", &m, "--out", &out]);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), first);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn a_recording_larger_than_memory_streams_to_disk() {
    // Under an address-space limit of 850 MB (`ulimit -v`), workflow 3's conv1 over the 10,000
    // embedded digits (440 MB kept, twice that to save) is refused in memory before any work,
    // and streams to disk in shards of 1,000 (about 45 MB each); the shards equal the
    // in-memory recording made without the limit.
    let sb = sandbox("stream");
    let exe = env!("CARGO_BIN_EXE_neuroscope");
    let limited = |args: &str| {
        let o = std::process::Command::new("sh")
            .args(["-c", &format!("ulimit -v 850000 && exec {exe} {args}")])
            .env("NEUROSCOPE_QUIET", "1")
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        (o.status.success(), text)
    };
    let common = "record --arch mnist_cnn --dataset mnist --layers conv1";
    let whole = sb.path("whole.safetensors");
    let (ok, text) = limited(&format!("{common} --out {whole}"));
    assert!(!ok && text.contains("--shard-samples"), "{text}");
    assert!(
        !text.contains("panicked") && !Path::new(&whole).exists(),
        "{text}"
    );
    let dir = sb.path("shards");
    let (ok, text) = limited(&format!("{common} --shard-samples 1000 --out {dir}"));
    assert!(ok, "{text}");
    assert!(text.contains("10000 samples in shards of 1000"), "{text}");
    // Resuming a complete folder records nothing again and leaves the shards as they were.
    let shard0 = std::fs::read(sb.dir.join("shards/shard-00000.safetensors")).unwrap();
    let (ok, text) = limited(&format!("{common} --shard-samples 1000 --out {dir}"));
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(sb.dir.join("shards/shard-00000.safetensors")).unwrap(),
        shard0
    );
    // Other settings into the same folder are refused, not mixed in.
    let (ok, text) = limited(&format!("{common} --shard-samples 500 --out {dir}"));
    assert!(!ok && text.contains("other settings"), "{text}");
    // Without the limit, the in-memory recording; the shards hold the same numbers.
    let (ok, text) = neuroscope(&[
        "record",
        "--arch",
        "mnist_cnn",
        "--dataset",
        "mnist",
        "--layers",
        "conv1",
        "--out",
        &whole,
    ]);
    assert!(ok, "{text}");
    let mem = neuroscope::record::Recording::load_safetensors(&whole).unwrap();
    let first = neuroscope::record::Recording::load_safetensors(
        sb.dir.join("shards/shard-00000.safetensors"),
    )
    .unwrap();
    let rows = (*mem.layer("conv1").unwrap())
        .slice(ndarray::s![..1000, .., .., ..])
        .to_owned()
        .into_dyn();
    assert_eq!((*first.layer("conv1").unwrap()), rows);
    let all = neuroscope::record::Recording::load_sharded(&dir).unwrap();
    assert_eq!(
        (*all.layer("conv1").unwrap()),
        (*mem.layer("conv1").unwrap())
    );
    assert_eq!(all.labels(), mem.labels());
}

#[test]
fn large_integer_labels_are_integers() {
    // int64 labels past 2^53 were read through f64 and called non-integers.
    let sb = sandbox("labels");
    let big: Vec<u8> = (0..40i64)
        .flat_map(|i| ((1i64 << 60) + (i % 3)).to_le_bytes())
        .collect();
    let a = sb.write("big.npy", &npy("<i8", &[40], &big));
    let (ok, text) = neuroscope(&[
        "score",
        "--metric",
        "ari",
        "--true",
        &a,
        "--pred",
        &sb.path("labels.npy"),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.trim().ends_with('1') || text.contains("1.0"),
        "ARI of a relabelling: {text}"
    );
}
