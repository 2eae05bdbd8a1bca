#!/usr/bin/env python3
"""PyTorch's side of benches/record.rs: record AlexNet `features` and ResNet-50 `layer4` with a
forward hook (spatial mean), 256 random 3x224x224 images, batch 64, eval mode, no_grad.
Prints one JSON line per network with the best of REPEATS runs."""
import json
import os
import sys
import time

import torch
import torchvision

torch.set_num_threads(int(os.environ.get("THREADS", 2)))
N = int(os.environ.get("N", 256))
REPEATS = int(os.environ.get("REPEATS", 2))
x = torch.randn(N, 3, 224, 224, generator=torch.Generator().manual_seed(0))

for arch, layer in [("alexnet", "features"), ("resnet50", "layer4")]:
    model = getattr(torchvision.models, arch)(weights=None).eval()
    store = []
    getattr(model, layer).register_forward_hook(lambda m, i, o: store.append(o.mean(dim=(2, 3)).clone()))
    best = float("inf")
    for _ in range(REPEATS):
        store.clear()
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, N, 64):
                model(x[s : s + 64])
        acts = torch.cat(store).numpy()
        dt = time.perf_counter() - t0
        assert acts.shape[0] == N
        print(f"torch {arch} {layer}: {N} images in {dt:.2f} s", file=sys.stderr)
        best = min(best, dt)
    print(json.dumps({"impl": "torch", "arch": arch, "layer": layer, "images": N, "best_s": round(best, 3), "threads": torch.get_num_threads()}))
