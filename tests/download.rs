//! The `download` feature against a server on loopback that this test starts (no network).
#![cfg(feature = "download")]

use neuroscope::data::remote::{Remote, Resource};
use neuroscope::io::download;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// Serves `files` for at most `requests` requests, then stops.
fn serve(files: Vec<(&'static str, Vec<u8>)>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match files.iter().find(|(n, _)| *n == path) {
                Some((_, body)) => {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    stream.write_all(body).unwrap();
                }
                None => write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap(),
            }
        }
    });
    format!("http://{addr}")
}

fn md5_of(bytes: &[u8]) -> String {
    let p = std::env::temp_dir().join(format!("ns-md5-{}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    // verify() tells us the actual MD5 in its error message.
    let e = download::verify(&p, "x", None).unwrap_err().to_string();
    e.split("MD5 ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn fetch_checks_md5_and_ensure_loads_a_dataset() {
    let root = std::env::temp_dir().join(format!("neuroscope-dl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::env::set_var("NEUROSCOPE_CACHE", &root);
    let images = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/fashion-mnist-2k-images-idx3-ubyte.gz"
    ))
    .unwrap();
    let labels = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/fashion-mnist-2k-labels-idx1-ubyte.gz"
    ))
    .unwrap();
    let (mi, ml) = (md5_of(&images), md5_of(&labels));
    let base = serve(
        vec![
            ("t10k-images-idx3-ubyte.gz", images.clone()),
            ("t10k-labels-idx1-ubyte.gz", labels.clone()),
        ],
        6,
    );
    std::env::set_var("NEUROSCOPE_MIRROR", &base);

    // A wrong checksum is refused and leaves no file that looks finished.
    let dest = root.join("bad").join("t10k-labels-idx1-ubyte.gz");
    let e = download::fetch(
        "https://example.invalid/t10k-labels-idx1-ubyte.gz",
        &dest,
        download::Check::Md5("0123"),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("MD5"), "{e}");
    assert!(!dest.exists() && !dest.with_extension("part").exists());
    // A missing file is a download error naming the address.
    let e = download::fetch(
        "https://example.invalid/nothing.gz",
        &root.join("n.gz"),
        download::Check::Md5("0"),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nothing.gz"), "{e}");

    // Weight files are checked like torch hub does: the SHA-256 must start with the hash in
    // the file name.
    let sha = {
        use std::process::Command;
        let p = root.join("labels-for-sha");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(&p, &labels).unwrap();
        let out = Command::new("sha256sum").arg(&p).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..8].to_string()
    };
    let dest = root.join("hub").join("t10k-labels-idx1-ubyte.gz");
    download::fetch(
        "https://example.invalid/t10k-labels-idx1-ubyte.gz",
        &dest,
        download::Check::Sha256Prefix(&sha),
        None,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), labels);
    let e = download::fetch(
        "https://example.invalid/t10k-labels-idx1-ubyte.gz",
        &root.join("x.gz"),
        download::Check::Sha256Prefix("00000000"),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("SHA-256"), "{e}");

    // A whole dataset fetched through Remote::ensure, then read.
    let res: &'static [Resource] = Box::leak(Box::new([
        Resource {
            file: "t10k-images-idx3-ubyte.gz",
            url: "https://example.invalid/t10k-images-idx3-ubyte.gz",
            md5: Box::leak(mi.into_boxed_str()),
            size: images.len() as u64,
        },
        Resource {
            file: "t10k-labels-idx1-ubyte.gz",
            url: "https://example.invalid/t10k-labels-idx1-ubyte.gz",
            md5: Box::leak(ml.into_boxed_str()),
            size: labels.len() as u64,
        },
    ]));
    let r = Remote {
        name: "toy",
        resources: res,
        torchvision_dirs: &[],
    };
    assert!(!r.is_cached());
    r.ensure().unwrap();
    assert!(r.is_cached());
    let ds = neuroscope::data::files::load_pair(
        r.find(res[0].file).unwrap(),
        r.find(res[1].file).unwrap(),
        "toy",
        (0..10).map(|c| c.to_string()).collect(),
    )
    .unwrap();
    use neuroscope::data::Dataset;
    assert_eq!(ds.len(), 2000);

    // A server that accepts the connection and never answers: the download gives up after
    // $NEUROSCOPE_DOWNLOAD_TIMEOUT seconds with an error, removing its partial file (without
    // a timeout it waited for ever: a notebook on a captive network hung).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let hold = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(stream);
    });
    std::env::set_var("NEUROSCOPE_MIRROR", &silent);
    std::env::set_var("NEUROSCOPE_DOWNLOAD_TIMEOUT", "1");
    let started = std::time::Instant::now();
    let dest = root.join("stall").join("w.pth");
    let e = download::fetch(
        "https://example.invalid/w.pth",
        &dest,
        download::Check::Sha256Prefix("00"),
        None,
    )
    .unwrap_err();
    let took = started.elapsed().as_secs_f64();
    std::env::remove_var("NEUROSCOPE_DOWNLOAD_TIMEOUT");
    assert!(took < 3.5, "gave up after {took:.1} s, not about 1 s");
    assert!(e.to_string().contains("w.pth"), "{e}");
    assert!(!dest.exists() && !dest.with_extension("part").exists());
    hold.join().unwrap();
}
