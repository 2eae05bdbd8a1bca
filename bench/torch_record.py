#!/usr/bin/env python3
"""PyTorch's side of benches/record.rs: record a layer with a forward hook (spatial mean) for N
random 3x224x224 images in batches, eval mode, no_grad. The images start on the CPU (as a data
loader's would) and each batch is moved to the device. Prints one JSON line per network with the
best of REPEATS runs. Environment as the Rust side: DEVICE (cpu, cuda), N, BATCH, REPEATS,
NETS (arch:layer,...), THREADS."""
import json
import os
import sys
import time

import torch
import torchvision

torch.set_num_threads(int(os.environ.get("THREADS", 2)))
N = int(os.environ.get("N", 256))
BATCH = int(os.environ.get("BATCH", 64))
REPEATS = int(os.environ.get("REPEATS", 2))
DEVICE = torch.device(os.environ.get("DEVICE", "cpu"))
NETS = [s.split(":") for s in os.environ.get("NETS", "alexnet:features,resnet50:layer4").split(",")]
x = torch.randn(N, 3, 224, 224, generator=torch.Generator().manual_seed(0))
if os.environ.get("INPUT_ON_DEVICE") == "1":  # the images already on the device
    x = x.to(DEVICE)


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


for arch, layer in NETS:
    model = getattr(torchvision.models, arch)(weights=None).eval().to(DEVICE)
    store = []
    # conv maps: spatial mean; transformer tokens (N x tokens x dim): mean over the tokens
    model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: store.append((o.mean(dim=(2, 3)) if o.dim() == 4 else o.mean(dim=1)).cpu()))

    def run(images):
        store.clear()
        with torch.no_grad():
            for s in range(0, images.shape[0], BATCH):
                model(images[s : s + BATCH].to(DEVICE))
        sync()
        return torch.cat(store).numpy()

    if DEVICE.type == "cuda":
        t0 = time.perf_counter()
        run(x[:BATCH])
        print(f"torch {arch}: warm-up {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        acts = run(x)
        dt = time.perf_counter() - t0
        assert acts.shape[0] == N
        print(f"torch {arch} {layer}: {N} images in {dt:.2f} s", file=sys.stderr)
        best = min(best, dt)
    print(json.dumps({"impl": "torch", "arch": arch, "layer": layer, "device": str(DEVICE), "images": N, "batch": BATCH,
                      "best_s": round(best, 3), "images_per_s": round(N / best, 1), "threads": torch.get_num_threads()}))
