//! Fetching files over HTTP (the `download` feature) and checking them: MD5 as torchvision
//! lists it for datasets, a SHA-256 prefix as torch hub names weight files; the user's cache
//! folders. The dataset registry that uses it is `data::remote`.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// `$override_var`, else `$XDG_CACHE_HOME/<app>`, else `$HOME/.cache/<app>`, else `.<app>-cache`:
/// the cache folder convention neuroscope and torch hub share.
pub fn user_cache_dir(override_var: &str, app: &str) -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(override_var)
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join(app)))
        .or_else(|| env("HOME").map(|p| p.join(".cache").join(app)))
        .unwrap_or_else(|| PathBuf::from(format!(".{app}-cache")))
}

/// Checks a file's size and MD5.
///
/// ```
/// let p = std::env::temp_dir().join("neuroscope-doc-md5.txt");
/// std::fs::write(&p, b"abc").unwrap();
/// neuroscope::io::download::verify(&p, "900150983cd24fb0d6963f7d28e17f72", Some(3)).unwrap();
/// assert!(neuroscope::io::download::verify(&p, "0000", None).is_err());
/// ```
pub fn verify(path: &Path, md5: &str, size: Option<u64>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Some(size) = size {
        if bytes.len() as u64 != size {
            return Err(Error::format(
                path,
                format!("size {} bytes, expected {size}", bytes.len()),
            ));
        }
    }
    let got = md5_hex(&bytes);
    if got != md5 {
        return Err(Error::format(
            path,
            format!("MD5 {got}, expected {md5}: the file is corrupt or not the published one"),
        ));
    }
    Ok(())
}

/// MD5 (RFC 1321) of `data` as lowercase hex. MD5 is used only because it is what torchvision
/// publishes for these files; it guards against truncation and corruption, not tampering.
fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: Vec<u32> = chunk
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a download is checked.
#[derive(Clone, Copy, Debug)]
pub enum Check<'a> {
    /// The whole MD5, as torchvision lists it for datasets.
    Md5(&'a str),
    /// A prefix of the SHA-256, as torch hub checks the `name-<hash>.pth` weight files.
    Sha256Prefix(&'a str),
}

/// Checks a file's SHA-256 against a hex prefix (torch hub's `check_hash`).
#[cfg(feature = "download")]
pub fn verify_sha256_prefix(path: &Path, prefix: &str) -> Result<()> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if hex.starts_with(prefix) {
        Ok(())
    } else {
        Err(Error::format(path, format!("SHA-256 {hex} does not start with {prefix}: the file is corrupt or not the published one")))
    }
}

/// Seconds without progress after which a download gives up: resolving the host, connecting,
/// waiting for the response, and each read of the body (`$NEUROSCOPE_DOWNLOAD_TIMEOUT`,
/// default 30). A machine without a network fails at once; a stalled server is not waited on
/// for ever.
#[cfg(feature = "download")]
fn stall_timeout() -> std::time::Duration {
    let secs = std::env::var("NEUROSCOPE_DOWNLOAD_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(30.0);
    std::time::Duration::from_secs_f64(secs)
}

/// Downloads `url` to `dest` (through `dest.part`, renamed only once checked), then checks
/// it (and its size, if given). Progress goes to stderr as a progress line, silent under
/// `NEUROSCOPE_QUIET` like every other (a notebook run headless treats stderr as a failure).
/// A stall longer than `$NEUROSCOPE_DOWNLOAD_TIMEOUT` seconds (default 30) ends it with an
/// error. `$NEUROSCOPE_MIRROR`, when set, replaces everything before the file name in `url`
/// (for a course's local mirror, and for tests).
#[cfg(feature = "download")]
pub fn fetch(url: &str, dest: &Path, check: Check, size: Option<u64>) -> Result<()> {
    use std::io::{Read, Write};
    let url = match std::env::var("NEUROSCOPE_MIRROR") {
        Ok(m) if !m.is_empty() => format!(
            "{}/{}",
            m.trim_end_matches('/'),
            url.rsplit('/').next().unwrap_or(url)
        ),
        _ => url.to_string(),
    };
    let dl_err = |problem: String| Error::Download {
        url: url.clone(),
        problem,
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let part = dest.with_extension("part");
    let stall = Some(stall_timeout());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(stall)
        .timeout_connect(stall)
        .timeout_send_request(stall)
        .timeout_recv_response(stall)
        .timeout_per_read(stall)
        .build()
        .into();
    let mut resp = agent.get(&url).call().map_err(|e| dl_err(e.to_string()))?;
    let total = resp.body().content_length().or(size);
    let mut reader = resp.body_mut().as_reader();
    let mut file = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut buf = vec![0u8; 1 << 16];
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Kilobytes: the progress line counts units.
    let mut bar = crate::progress::Progress::new(
        format!("downloading {name} (kB)"),
        total.map_or(0, |t| t.div_ceil(1000) as usize),
    );
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            let _ = std::fs::remove_file(&part);
            dl_err(e.to_string())
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        let before = done / 1000;
        done += n as u64;
        bar.inc((done / 1000 - before) as usize);
    }
    bar.finish();
    drop(file);
    let checked = match check {
        Check::Md5(md5) => verify(&part, md5, size),
        Check::Sha256Prefix(p) => verify_sha256_prefix(&part, p),
    };
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&part);
        return Err(dl_err(e.to_string()));
    }
    std::fs::rename(&part, dest).map_err(|e| Error::io(dest, e))
}

#[cfg(feature = "download")]
pub(crate) fn extract_tar_gz(archive: &Path, into: &Path) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(into)
        .map_err(|e| Error::format(archive, format!("cannot extract: {e}")))
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn md5_known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(md5_hex(&[b'a'; 1000]), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }
}
