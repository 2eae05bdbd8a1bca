//! Runs neuroscope's CUDA kernels (`kernels.cu`) on the CPU, for tests on machines without
//! a GPU (CI has none). The kernel file compiles as C++ with one thread index the harness loops
//! over; the kernels use no shared memory, barriers or atomics, so that is what the GPU computes,
//! up to fused multiply-adds. The harness is built once per source with the system C++
//! compiler (`c++`, or `$CXX`); without one the tests say SKIPPED, unless
//! `NEUROSCOPE_REQUIRE_CXX=1` makes that a failure (CI sets it).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const HARNESS: &str = r#"
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include "cuda_kernels.cu"

template <class T> static T scalar() { T v; if (fread(&v, sizeof(T), 1, stdin) != 1) throw 1; return v; }
template <class T> static std::vector<T> array() {
    uint64_t len = scalar<uint64_t>();
    std::vector<T> v(len);
    if (len && fread(v.data(), sizeof(T), len, stdin) != len) throw 2;
    return v;
}
template <class T> static void out(const std::vector<T>& v) {
    uint64_t len = v.size();
    fwrite(&len, 8, 1, stdout);
    fwrite(v.data(), sizeof(T), len, stdout);
}
// every launch runs 37 threads more than there are items: the kernels' bounds checks are tested
#define LAUNCH(items, call) for (ns_thread = 0; ns_thread < (long long)(items) + 37; ++ns_thread) { call; }

int main(int argc, char** argv) {
    std::string k = argc > 1 ? argv[1] : "";
    try {
        if (k == "repulsion") {
            std::vector<float> y = array<float>();
            int n = scalar<int>(), d = scalar<int>();
            std::vector<float> rep(n * d);
            std::vector<double> sq(n);
            LAUNCH(n, tsne_repulsion(y.data(), n, d, rep.data(), sq.data()));
            out(rep); out(sq);
        } else if (k == "sum") {
            std::vector<double> x = array<double>();
            int n = (int)x.size(), chunk = scalar<int>();
            int parts = (n + chunk - 1) / chunk;
            std::vector<double> partial(parts > 0 ? parts : 1), total(1);
            LAUNCH(parts, tsne_partial_sums(x.data(), n, chunk, parts, partial.data()));
            LAUNCH(1, tsne_final_sum(partial.data(), parts, total.data()));
            out(total);
        } else if (k == "iteration") {
            // one t-SNE iteration as cuda/tsne.rs launches it: repulsion, Z, step, sums
            std::vector<int> indptr = array<int>(), indices = array<int>();
            std::vector<double> p = array<double>(), y = array<double>();
            int n = scalar<int>(), d = scalar<int>();
            double exag = scalar<double>(), momentum = scalar<double>(), lr = scalar<double>();
            int want_kl = scalar<int>();
            std::vector<double> update = array<double>(), gains = array<double>();
            std::vector<float> yf(n * d), rep(n * d), y_next_f(n * d);
            for (int i = 0; i < n * d; ++i) yf[i] = (float)y[i];
            std::vector<double> sq(n), y_next(n * d), grad_sq(n), kl(n), z(1), g2(1), klsum(1);
            int chunk = 64, parts = (n + chunk - 1) / chunk;
            std::vector<double> partial(parts);
            LAUNCH(n, tsne_repulsion(yf.data(), n, d, rep.data(), sq.data()));
            LAUNCH(parts, tsne_partial_sums(sq.data(), n, chunk, parts, partial.data()));
            LAUNCH(1, tsne_final_sum(partial.data(), parts, z.data()));
            LAUNCH(n, tsne_step(indptr.data(), indices.data(), p.data(), y.data(), n, d, rep.data(),
                                z.data(), exag, momentum, lr, want_kl, update.data(), gains.data(),
                                y_next.data(), y_next_f.data(), grad_sq.data(), kl.data()));
            LAUNCH(parts, tsne_partial_sums(grad_sq.data(), n, chunk, parts, partial.data()));
            LAUNCH(1, tsne_final_sum(partial.data(), parts, g2.data()));
            LAUNCH(parts, tsne_partial_sums(kl.data(), n, chunk, parts, partial.data()));
            LAUNCH(1, tsne_final_sum(partial.data(), parts, klsum.data()));
            for (int i = 0; i < n * d; ++i)
                if (y_next_f[i] != (float)y_next[i]) throw 3;
            out(y_next); out(update); out(gains); out(g2); out(klsum); out(z);
        } else if (k == "knn_select") {
            std::vector<float> m = array<float>(), norms = array<float>();
            int n = scalar<int>(), b = scalar<int>(), first = scalar<int>(), kk = scalar<int>();
            std::vector<float> bd(b * kk);
            std::vector<int> bi(b * kk);
            LAUNCH(b, knn_select(m.data(), norms.data(), n, b, first, kk, bd.data(), bi.data()));
            out(bd); out(bi);
        } else {
            fprintf(stderr, "unknown kernel %s\n", k.c_str());
            return 2;
        }
    } catch (int e) {
        fprintf(stderr, "bad input (%d)\n", e);
        return 3;
    }
    return 0;
}
"#;

/// The harness binary, built once; `None` (after saying SKIPPED) without a C++ compiler.
pub(crate) fn harness() -> Option<&'static PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        // one binary per source and compiler, shared by test processes (built in a private
        // folder, then renamed into place, which is atomic)
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (HARNESS, include_str!("kernels.cu"), &cxx).hash(&mut h);
        let dir = std::env::temp_dir().join(format!("neuroscope-cuda-emu-{:016x}", h.finish()));
        let bin = dir.join("harness");
        if bin.is_file() {
            return Some(bin);
        }
        let build = dir.join(format!("build-{}", std::process::id()));
        std::fs::create_dir_all(&build).expect("temp dir");
        std::fs::write(build.join("cuda_kernels.cu"), include_str!("kernels.cu")).expect("write");
        std::fs::write(build.join("harness.cpp"), HARNESS).expect("write");
        let built = Command::new(&cxx)
            .args([
                "-O2",
                "-std=c++11",
                "-Wall",
                "-Werror",
                "-x",
                "c++",
                "harness.cpp",
                "-o",
                "harness",
            ])
            .current_dir(&build)
            .output();
        let built = built.inspect(|o| {
            if o.status.success() {
                std::fs::rename(build.join("harness"), &bin).expect("move the harness into place");
                let _ = std::fs::remove_dir_all(&build);
            }
        });
        match built {
            Ok(o) if o.status.success() => Some(bin),
            Ok(o) => panic!(
                "the CUDA kernels do not compile as C++:\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&build);
                let _ = std::fs::remove_dir(&dir); // only if empty
                if std::env::var("NEUROSCOPE_REQUIRE_CXX").is_ok_and(|v| v == "1") {
                    panic!("NEUROSCOPE_REQUIRE_CXX=1 but no C++ compiler ({cxx}): {e}");
                }
                eprintln!("SKIPPED: no C++ compiler ({cxx}) to emulate the CUDA kernels: {e}");
                None
            }
        }
    })
    .as_ref()
}

/// Input bytes for the harness, in the order the kernel's branch reads them.
#[derive(Default)]
pub(crate) struct Args(Vec<u8>);

impl Args {
    pub(crate) fn i32(mut self, v: i32) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    pub(crate) fn f64(mut self, v: f64) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn len(mut self, n: usize) -> Self {
        self.0.extend((n as u64).to_le_bytes());
        self
    }
    pub(crate) fn f32s(self, v: &[f32]) -> Self {
        let mut s = self.len(v.len());
        v.iter().for_each(|x| s.0.extend(x.to_le_bytes()));
        s
    }
    pub(crate) fn f64s(self, v: &[f64]) -> Self {
        let mut s = self.len(v.len());
        v.iter().for_each(|x| s.0.extend(x.to_le_bytes()));
        s
    }
    pub(crate) fn i32s(self, v: &[i32]) -> Self {
        let mut s = self.len(v.len());
        v.iter().for_each(|x| s.0.extend(x.to_le_bytes()));
        s
    }
}

/// The harness's outputs: arrays of 4- or 8-byte elements, read in order.
pub(crate) struct Outputs {
    bytes: Vec<u8>,
    at: usize,
}

impl Outputs {
    fn take(&mut self, size: usize) -> &[u8] {
        let len = u64::from_le_bytes(self.bytes[self.at..self.at + 8].try_into().unwrap()) as usize;
        let start = self.at + 8;
        self.at = start + len * size;
        &self.bytes[start..self.at]
    }
    pub(crate) fn f32s(&mut self) -> Vec<f32> {
        self.take(4)
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub(crate) fn f64s(&mut self) -> Vec<f64> {
        self.take(8)
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub(crate) fn i32s(&mut self) -> Vec<i32> {
        self.take(4)
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

/// Runs one harness branch; `None` when there is no C++ compiler.
pub(crate) fn run(kernel: &str, args: Args) -> Option<Outputs> {
    let bin = harness()?;
    let mut child = Command::new(bin)
        .arg(kernel)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the harness");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&args.0)
        .expect("write");
    let out = child.wait_with_output().expect("harness output");
    assert!(
        out.status.success(),
        "harness {kernel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Outputs {
        bytes: out.stdout,
        at: 0,
    })
}

#[test]
fn partial_sums_add_in_a_fixed_order() {
    let x: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
    let Some(mut o) = run("sum", Args::default().f64s(&x).i32(64)) else {
        return;
    };
    let expected: f64 = x.chunks(64).map(|c| c.iter().sum::<f64>()).sum();
    assert_eq!(o.f64s(), vec![expected]);
}
