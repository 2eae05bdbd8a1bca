#!/usr/bin/env python3
"""torchvision's side of benches/load_transform.rs: the same 10,000 MNIST digits (the embedded
IDX file) to 64 x 3 x 224 x 224 float tensors, resize bilinear (antialias=True) -> 3 channels ->
Normalize(0.5, 0.5), two ways:

* per_sample: seed 1's way, a Dataset whose transform runs per image, through a DataLoader
  (batch_size=64, num_workers=0);
* batched: the fastest torchvision offers, v2 functional transforms on whole uint8 batches.

Prints one JSON line per way with the best of REPEATS runs.
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from torch.utils.data import DataLoader, Dataset

root = os.path.join(os.path.dirname(__file__), "..")
REPEATS = int(os.environ.get("REPEATS", 3))
N = int(os.environ.get("N", 10000))
torch.set_num_threads(int(os.environ.get("THREADS", 2)))


def load():
    with gzip.open(os.path.join(root, "data", "mnist-10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    with gzip.open(os.path.join(root, "data", "mnist-10k-labels-idx1-ubyte.gz")) as f:
        labels = torch.from_numpy(np.frombuffer(f.read()[8:], dtype=np.uint8).astype(np.int64))
    images = torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 1, 28, 28).copy())
    return images[:N], labels[:N]


class Digits(Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def per_sample():
    images, labels = load()
    tf = T.Compose([
        T.ToDtype(torch.float32, scale=True),
        T.Resize((224, 224), antialias=True),
        T.Lambda(lambda x: x.expand(3, -1, -1)),
        T.Normalize((0.5,), (0.5,)),
    ])
    checksum = 0.0
    for x, y in DataLoader(Digits(images, labels, tf), batch_size=64, num_workers=0):
        checksum += float(x[0, 0, 100, 100])
    return checksum


def batched():
    images, labels = load()
    checksum = 0.0
    for s in range(0, len(images), 64):
        x = F.to_dtype(images[s : s + 64], torch.float32, scale=True)
        x = F.resize(x, [224, 224], antialias=True).expand(-1, 3, -1, -1)
        x = F.normalize(x, [0.5], [0.5])
        checksum += float(x[0, 0, 100, 100])
    return checksum


for name, fn in [("torchvision per_sample", per_sample), ("torchvision batched", batched)]:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        c = fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        print(f"{name}: {N} images in {dt:.3f} s (checksum {c:.4f})", file=sys.stderr)
    print(json.dumps({"impl": name, "images": N, "best_s": round(best, 4), "threads": torch.get_num_threads()}))
