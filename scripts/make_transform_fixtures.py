#!/usr/bin/env python3
"""Reference outputs of torchvision transforms, for tests/transforms.rs.

Inputs are made here deterministically (the first embedded MNIST digit and a synthetic RGB
pattern); outputs come from torchvision's tensor transforms and are cross-checked against PIL's
float ('F' mode) resampling before they are saved. Run with a Python that has torch,
torchvision, numpy and pillow:

    ~/venvs/torch/bin/python scripts/make_transform_fixtures.py

Pinned versions used for the committed files: see tests/fixtures/VERSIONS.txt.
"""
import gzip
import os

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms.v2.functional as F
from PIL import Image

root = os.path.join(os.path.dirname(__file__), "..")
out = os.path.join(root, "tests", "fixtures")
os.makedirs(out, exist_ok=True)

with gzip.open(os.path.join(root, "data", "mnist-10k-images-idx3-ubyte.gz")) as f:
    raw = f.read()
digit = np.frombuffer(raw[16 : 16 + 784], dtype=np.uint8).reshape(28, 28).astype(np.float32) / 255.0
yy, xx = np.mgrid[0:37, 0:23]
rgb = np.stack([((xx * 7 + yy * 13 + c * 29) % 256) for c in range(3)]).astype(np.float32) / 255.0


def pil_resize(chw, h, w):
    planes = [np.asarray(Image.fromarray(p, mode="F").resize((w, h), Image.BILINEAR)) for p in chw]
    return np.stack(planes)


def tv_resize(chw, size):
    return F.resize(torch.from_numpy(chw), size, antialias=True).numpy()


def save(name, arr):
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(arr, dtype=np.float32))


save("digit", digit[None])
save("rgb", rgb)
cases = {
    "digit_resize_224": (digit[None], [224, 224]),
    "digit_resize_11x9": (digit[None], [11, 9]),
    "rgb_resize_shorter_20": (rgb, 20),
    "rgb_resize_50x40": (rgb, [50, 40]),
}
for name, (x, size) in cases.items():
    y = tv_resize(x, size)
    p = pil_resize(x, *y.shape[1:])
    diff = np.abs(y - p).max()
    assert diff < 2e-5, (name, diff)
    print(f"{name}: shape {y.shape}, max |torchvision - PIL| = {diff:.2e}")
    save(name, y)
save("rgb_center_crop_16", F.center_crop(torch.from_numpy(rgb), [16, 16]).numpy())
save("rgb_center_crop_40x30", F.center_crop(torch.from_numpy(rgb), [40, 30]).numpy())
# Seed 1's pipeline: Grayscale(3) -> ToTensor -> Resize((224, 224)) -> Normalize(0.5, 0.5)
t = F.resize(torch.from_numpy(digit[None]).repeat(3, 1, 1), [224, 224], antialias=True)
seed1 = F.normalize(t, [0.5], [0.5]).numpy()
assert (seed1[0] == seed1[1]).all() and (seed1[0] == seed1[2]).all()
save("digit_seed1_pipeline_channel0", seed1[:1])  # the three channels are identical
with open(os.path.join(out, "VERSIONS.txt"), "w") as f:
    f.write(f"torch {torch.__version__}\ntorchvision {torchvision.__version__}\nnumpy {np.__version__}\npillow {PIL.__version__}\n")
print("wrote", out)
