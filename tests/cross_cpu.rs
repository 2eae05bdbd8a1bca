//! The same bits from the same seed on other x86-64 CPUs: a probe (training steps, input
//! gradients, feature visualisation, PCA, RSA, t-SNE, UMAP) run here and as other processors
//! would run it, compared bit for bit.
//!
//! The other processors are emulated in the two ways that reach what differs between real
//! machines:
//! - the cache description in `/sys/devices/system/cpu/cpu*/cache`, which matrix-product
//!   libraries read to size their blocks (gemm's depth block was 512 on a 32 KB 8-way L1 and 1024
//!   on a 48 KB 12-way one: the cause of issue 23), replaced in a private mount namespace
//!   (`unshare -m` and bind mounts, as root);
//! - the processor itself: `qemu-x86_64 -cpu Haswell` (Debian's `qemu-user`) runs this same
//!   binary as an Intel CPU with AVX2 and FMA but no AVX-512, so every run-time dispatch on the
//!   vendor or the instruction set (faer's AVX-512 matrix kernels, candle's AVX2 paths, rustfft)
//!   takes the other branch. qemu's user mode passes file reads through, so the two combine.
//!
//! Where `unshare`/`mount` (root) or qemu are missing the test says SKIPPED, unless
//! `NEUROSCOPE_REQUIRE_CROSS_CPU=1` (set by `.ci/run`, which installs qemu-user) makes that a
//! failure.

use candle_core::{Device, Tensor, Var};
use ndarray::Array2;
use neuroscope::analysis::{
    embed::{Tsne, TsneMethod, Umap},
    pca::{Pca, Solver},
    rsa,
};
use neuroscope::data::{embedded, Dataset};
use neuroscope::featvis::{FeatVis, Objective};
use neuroscope::models::{self, Weights};
use neuroscope::rng::Rng;
use neuroscope::train::{Optimizer, Train};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child processes: where the probe writes its lines.
const OUT_VAR: &str = "NEUROSCOPE_CROSS_CPU_OUT";

/// FNV-1a over the bit patterns: equal hashes, equal bits (for this purpose).
fn hash_bits<I: IntoIterator<Item = u64>>(bits: I) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bits {
        for byte in b.to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn f32s(v: &[f32]) -> u64 {
    hash_bits(v.iter().map(|x| x.to_bits() as u64))
}

fn f64s<'a>(v: impl IntoIterator<Item = &'a f64>) -> u64 {
    hash_bits(v.into_iter().map(|x| x.to_bits()))
}

fn tensor(t: &Tensor) -> u64 {
    f32s(&t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
}

fn seeded(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform() as f32).collect()
}

/// The input gradient of the sum of squares of `layer`'s output, for seeded images.
fn input_gradient(arch: &str, layer: &str, px: usize) -> u64 {
    let net = models::load(arch, &Weights::Random { seed: 0 }, &Device::Cpu).unwrap();
    let x = Tensor::from_vec(seeded(2 * 3 * px * px, 7), (2, 3, px, px), &Device::Cpu).unwrap();
    let xv = Var::from_tensor(&x).unwrap();
    let acts = net.record(xv.as_tensor(), &[layer]).unwrap();
    let loss = acts[layer].sqr().unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    hash_bits([
        tensor(&loss),
        tensor(g.get(xv.as_tensor()).expect("a gradient reaches the input")),
    ])
}

/// The probe: one line per computation, `name hash`.
fn probe() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    // Training: workflow 3's network, 3 SGD steps with momentum (fc1 is an 800-deep product).
    let net = models::load("mnist_cnn", &Weights::Random { seed: 1 }, &Device::Cpu).unwrap();
    let digits = embedded::mnist().subset(192, 0).unwrap();
    let trained = Train::new()
        .optimizer(Optimizer::sgd(0.9))
        .lr(0.01)
        .epochs(1)
        .batch_size(64)
        .seed(1)
        .progress(false)
        .fit(&net, &digits, None::<&neuroscope::data::InMemory>)
        .unwrap();
    let mut w: Vec<u64> = trained
        .model
        .state_dict()
        .into_iter()
        .map(|(_, t)| tensor(&t))
        .collect();
    w.extend(
        trained
            .history()
            .steps
            .iter()
            .map(|(_, loss)| loss.to_bits()),
    );
    out.push(("train mnist_cnn (3 SGD steps)".into(), hash_bits(w)));
    // Input gradients: 3 x 3 convolutions 576 to 1,152 deep; depthwise ones (candle's path).
    out.push((
        "input gradient resnet18 layer3".into(),
        input_gradient("resnet18", "layer3", 40),
    ));
    out.push((
        "input gradient mobilenet_v2 features.6".into(),
        input_gradient("mobilenet_v2", "features.6", 40),
    ));
    // Feature visualisation, Lucent's recipe (FFT image, decorrelation, random transforms, Adam).
    let net = models::load("resnet18", &Weights::Random { seed: 0 }, &Device::Cpu).unwrap();
    let vis = FeatVis::lucent(Objective::channel("layer2.0.conv2", 3))
        .steps(3)
        .size(48)
        .seed(2)
        .progress(false)
        .run(&net)
        .unwrap();
    let losses: Vec<u64> = vis.history[0]
        .loss
        .iter()
        .map(|v| v.to_bits() as u64)
        .collect();
    out.push((
        "featvis lucent resnet18 layer2.0.conv2".into(),
        hash_bits([tensor(&vis.images), hash_bits(losses)]),
    ));
    // Analysis on seeded data: products deeper than 512 and larger than faer's small-matrix
    // kernels, an eigendecomposition, a randomized SVD, the embeddings.
    let x = Array2::from_shape_vec((300, 700), seeded(300 * 700, 11))
        .unwrap()
        .mapv(|v| v as f64);
    for (name, solver) in [("full", Solver::Full), ("randomized", Solver::Randomized)] {
        let pca = Pca::new()
            .n_components(10)
            .solver(solver)
            .seed(0)
            .fit(&x)
            .unwrap();
        out.push((
            format!("pca {name}"),
            hash_bits([
                f64s(pca.explained_variance()),
                f64s(pca.components().iter()),
            ]),
        ));
    }
    // float32 data: the randomized solver's float32 products, LU and QR
    let pca = Pca::new()
        .n_components(10)
        .solver(Solver::Randomized)
        .seed(0)
        .fit(&x.mapv(|v| v as f32))
        .unwrap();
    out.push((
        "pca randomized float32".into(),
        hash_bits([
            f64s(pca.explained_variance()),
            f64s(pca.components().iter()),
        ]),
    ));
    let s = rsa::similarity(&x, rsa::Metric::Pearson).unwrap();
    out.push(("rsa pearson 300 x 700".into(), f64s(s.iter())));
    let small = x.slice(ndarray::s![..200, ..50]).to_owned();
    // Few iterations: the test profile compiles our crate at opt-level 1, and qemu runs it ~30x
    // slower still; the FFT grid costs the same for few points as for many.
    for (name, method, n, iters) in [
        ("barnes-hut", TsneMethod::BarnesHut, 60, 250),
        ("fft", TsneMethod::Fft, 200, 30),
    ] {
        let t = Tsne::new()
            .method(method)
            .perplexity(15.0)
            .max_iter(iters)
            .seed(0)
            .progress(false)
            .fit(&small.slice(ndarray::s![..n, ..]))
            .unwrap();
        out.push((format!("tsne {name}"), f64s(t.embedding().iter())));
    }
    let u = Umap::new()
        .n_epochs(60)
        .seed(0)
        .progress(false)
        .fit(&small)
        .unwrap();
    out.push(("umap".into(), f64s(u.embedding().iter())));
    eprintln!("probe: {:.2} s", t0.elapsed().as_secs_f64());
    out
}

fn format(lines: &[(String, u64)]) -> String {
    lines
        .iter()
        .map(|(k, v)| format!("{v:016x} {k}\n"))
        .collect()
}

/// A `/sys/devices/system/cpu/cpuN/cache` tree describing `l1d` (size in KB, ways) and `l2`.
fn fake_caches(dir: &Path, l1d: (usize, usize), l2: (usize, usize)) -> PathBuf {
    let root = dir.join("cache");
    for (i, (level, kind, kb, ways, shared)) in [
        (1, "Data", l1d.0, l1d.1, "0"),
        (1, "Instruction", 32, 8, "0"),
        (2, "Unified", l2.0, l2.1, "0"),
        (3, "Unified", 32768, 16, "0-1"),
    ]
    .into_iter()
    .enumerate()
    {
        let d = root.join(format!("index{i}"));
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("level", level.to_string()),
            ("type", kind.to_string()),
            ("size", format!("{kb}K")),
            ("ways_of_associativity", ways.to_string()),
            ("coherency_line_size", "64".into()),
            ("shared_cpu_list", shared.into()),
        ] {
            std::fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
    }
    root
}

/// A child process of this test binary that runs the probe, under `prefix` (qemu), with the
/// CPU cache description replaced by `caches` (in a private mount namespace).
fn run_probe(
    name: &str,
    caches: Option<&Path>,
    qemu: Option<&str>,
    dir: &Path,
) -> Result<String, String> {
    let out = dir.join(format!("{}.txt", name.replace(' ', "_")));
    let exe = std::env::current_exe().unwrap();
    let mut argv: Vec<String> = Vec::new();
    if let Some(cpu) = qemu {
        argv.extend(["qemu-x86_64".into(), "-cpu".into(), cpu.into()]);
    }
    argv.push(exe.display().to_string());
    argv.extend(
        [
            "--exact",
            "same_bits_on_other_cpus",
            "--nocapture",
            "--test-threads",
            "1",
        ]
        .map(String::from),
    );
    let mut cmd = match caches {
        Some(c) => {
            // Bind the fake tree over every CPU's cache folder, then run the probe.
            let script = format!(
                "for c in /sys/devices/system/cpu/cpu[0-9]*; do mount --bind '{}' \"$c/cache\" || exit 97; done; exec \"$@\"",
                c.display()
            );
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "sh", "-c", &script, "sh"]).args(&argv);
            cmd
        }
        None => {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    };
    let o = cmd
        .env(OUT_VAR, &out)
        .env("NEUROSCOPE_QUIET", "1")
        .output()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{name}: the probe failed ({}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    std::fs::read_to_string(&out).map_err(|e| format!("{name}: no output: {e}"))
}

fn tool_works(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn same_bits_on_other_cpus() {
    if let Some(path) = std::env::var_os(OUT_VAR) {
        // A child: run the probe, say where, and write its lines.
        let host = neuroscope::device::host();
        let text = format!("# {host}\n{}", format(&probe()));
        std::fs::write(path, text).unwrap();
        return;
    }
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        eprintln!("SKIPPED: the emulation needs x86-64 Linux");
        return;
    }
    let require = std::env::var_os("NEUROSCOPE_REQUIRE_CROSS_CPU").is_some();
    let can_unshare = tool_works(&["unshare", "-m", "true"]);
    let has_qemu = tool_works(&["qemu-x86_64", "-cpu", "Haswell", "/bin/true"]);
    if !(can_unshare && has_qemu) {
        let why = format!(
            "unshare -m (root) {}, qemu-x86_64 (Debian's qemu-user) {}",
            if can_unshare { "works" } else { "missing" },
            if has_qemu { "works" } else { "missing" }
        );
        assert!(!require, "NEUROSCOPE_REQUIRE_CROSS_CPU is set but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("neuroscope-cross-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Sapphire Rapids' caches (the machine of issue 23), and an older 8-way L1 with a small L2.
    let big_l1 = fake_caches(&dir.join("spr"), (48, 12), (2048, 16));
    let native = run_probe("native", None, None, &dir).unwrap();
    let others = [
        ("48 KB 12-way L1d", Some(big_l1.as_path()), None),
        (
            "Intel Haswell (no AVX-512), 48 KB 12-way L1d",
            Some(big_l1.as_path()),
            Some("Haswell"),
        ),
    ];
    let body = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let mut failures = Vec::new();
    eprintln!("native: {}", native.lines().next().unwrap_or(""));
    for (name, caches, qemu) in others {
        let got = run_probe(name, caches, qemu, &dir).unwrap();
        eprintln!("{name}: {}", got.lines().next().unwrap_or(""));
        if qemu.is_some() {
            assert!(
                !got.lines().next().unwrap_or("").contains("AVX-512"),
                "the emulated CPU still reports AVX-512: the emulation tests nothing"
            );
        }
        for (a, b) in body(&native).iter().zip(body(&got)) {
            if *a != b {
                failures.push(format!("{name}: {b} (native {a})"));
            }
        }
        assert_eq!(body(&native).len(), body(&got).len(), "{name}: probe lines");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "different bits on another CPU:\n{}",
        failures.join("\n")
    );
    // Not vacuous: the probe saw real numbers.
    assert!(body(&native).len() >= 9);
}

/// The probe repeats itself in one process (the premise of comparing it across processes).
#[test]
fn probe_repeats_in_process() {
    if std::env::var_os(OUT_VAR).is_some() {
        return;
    }
    let (a, b) = (probe(), probe());
    assert_eq!(format(&a), format(&b));
}
