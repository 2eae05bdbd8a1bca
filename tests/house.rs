//! The house rules of the source tree (issue 26), checked on every test run so that they keep
//! holding: every `unsafe` lives in `src/kernels/` with a `SAFETY` comment, no two files of
//! the library import each other (directly or through others), every command-line file stays
//! under 400 lines, and the crate's top-level module map names every top-level module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a file with comments, string and char literals blanked (kept: line breaks),
/// and `#[cfg(test)]` modules at the end of a file cut off.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && !b[i.saturating_sub(1)].is_ascii_alphanumeric()
        {
            // raw string r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if b.get(i) == Some(&b'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else if c == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // 'x'
        } else if c == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

#[test]
fn every_unsafe_is_in_kernels_with_a_safety_comment() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_of(&text);
        let raw: Vec<&str> = text.lines().collect();
        for (n, line) in code.lines().enumerate() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect();
            if !words.contains(&"unsafe")
                || line.contains("unsafe_code")
                || line.contains("unsafe_op_in_unsafe_fn")
            {
                continue;
            }
            found += 1;
            let rel = f.strip_prefix(src()).unwrap();
            assert!(
                rel.starts_with("kernels"),
                "src/{}:{}: `unsafe` outside src/kernels/: {}",
                rel.display(),
                n + 1,
                raw[n].trim()
            );
            // A SAFETY comment (blocks) or a `# Safety` section (functions) in the 12 lines
            // above, or on the line itself.
            let from = n.saturating_sub(12);
            let justified = raw[from..=n]
                .iter()
                .any(|l| l.contains("SAFETY:") || l.contains("# Safety"));
            assert!(
                justified,
                "src/{}:{}: `unsafe` without a SAFETY comment above it: {}",
                rel.display(),
                n + 1,
                raw[n].trim()
            );
        }
    }
    assert!(found > 0, "no unsafe found at all: is the scanner broken?");
}

/// The module path a file defines (`src/analysis/neighbors/mod.rs` -> analysis::neighbors).
fn module_of(f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The files a file imports: every `crate::a::b`, `super::x` or `self::y` path (and the
/// names of a `{...}` group after it), resolved to the deepest module that is a file.
fn imports(f: &Path, module: &[String], files: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let code = code_of(&std::fs::read_to_string(f).unwrap());
    let is_dir_module = f.ends_with("mod.rs") || f.ends_with("lib.rs");
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let word_at = |i: usize, w: &str| {
        code[i..].starts_with(w)
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
            && code[i + w.len()..].starts_with("::")
    };
    let mut i = 0;
    while i < code.len() {
        let base = ["crate", "super", "self"]
            .into_iter()
            .find(|w| word_at(i, w));
        let Some(base) = base else {
            i += 1;
            continue;
        };
        let mut j = i + base.len();
        let mut segs: Vec<String> = Vec::new();
        let mut group: Vec<Vec<String>> = Vec::new();
        while code[j..].starts_with("::") {
            j += 2;
            if code[j..].starts_with('{') {
                let end = code[j..].find('}').map_or(code.len(), |e| j + e);
                for item in code[j + 1..end].split(',') {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    let path: Vec<String> = item
                        .split("::")
                        .map(|s| s.trim().to_string())
                        .filter(|s| {
                            !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                        })
                        .collect();
                    group.push(path);
                }
                j = end;
                break;
            }
            let start = j;
            while j < code.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            segs.push(code[start..j].to_string());
        }
        let mut cur: Vec<String> = match base {
            "crate" => vec![],
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            _ if is_dir_module => module.to_vec(),
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        };
        let mut segs = segs.as_slice();
        while segs.first().is_some_and(|s| s == "super") {
            cur.pop();
            segs = &segs[1..];
        }
        let mut targets: Vec<Vec<String>> = group
            .into_iter()
            .map(|g| cur.iter().chain(segs).chain(&g).cloned().collect())
            .collect();
        targets.push(cur.iter().chain(segs).cloned().collect());
        for t in targets {
            if let Some(k) = (0..=t.len())
                .rev()
                .find(|&k| files.contains(&t[..k].to_vec()))
            {
                if t[..k] != *module {
                    out.insert(t[..k].to_vec());
                }
            }
        }
        i = j.max(i + 1);
    }
    out
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    paths.retain(|p| !p.strip_prefix(src()).unwrap().starts_with("bin"));
    let files: BTreeSet<Vec<String>> = paths.iter().map(|p| module_of(p)).collect();
    let edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = paths
        .iter()
        .map(|p| {
            let m = module_of(p);
            let e = imports(p, &m, &files);
            (m, e)
        })
        .collect();
    assert!(
        edges.values().map(BTreeSet::len).sum::<usize>() > 50,
        "too few imports found: is the scanner broken?"
    );
    // Depth-first search for a cycle, reported as the chain of files.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for n in edges.get(m).into_iter().flatten() {
            match state.get(n).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == n).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(n, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if state.get(m).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(m, &edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = c
                    .iter()
                    .map(|m| {
                        if m.is_empty() {
                            "lib".into()
                        } else {
                            m.join("/")
                        }
                    })
                    .collect();
                panic!("an import circle between files: {}", names.join(" -> "));
            }
        }
    }
}

#[test]
fn command_line_files_stay_small() {
    let mut files = Vec::new();
    rust_files(&src().join("bin"), &mut files);
    assert!(
        files.len() >= 5,
        "the CLI should be a folder of command files"
    );
    for f in files {
        let n = std::fs::read_to_string(&f).unwrap().lines().count();
        assert!(
            n <= 400,
            "{}: {n} lines (at most 400: split the command family)",
            f.display()
        );
    }
}

#[test]
fn the_module_map_names_every_top_level_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let map: String = lib
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    for line in lib.lines() {
        let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|r| r.strip_suffix(';'))
        else {
            continue;
        };
        if name == "error" {
            continue; // re-exported as neuroscope::{Error, Result}
        }
        assert!(
            map.contains(&format!("`{name}`")) || map.contains(&format!("[`{name}`]")),
            "src/lib.rs's module map does not name `{name}`"
        );
    }
}
