#!/usr/bin/env python3
"""captum 0.9.0 reference attributions for neuroscope's attribution parity tests
(tests/attribution.rs).

For AlexNet and ResNet-18 with the seeded random weights of scripts/make_parity_fixtures.py
(`tests/fixtures/generated/<arch>.safetensors`, made first), a seeded 2 x 3 x 64 x 64 input and
the targets [3, 7], in float64 (so that the reference carries no float32 rounding of its own):

- Saliency(abs=True)
- IntegratedGradients, zero baseline, n_steps=50 (captum's default Gauss-Legendre rule), with
  the convergence delta
- LayerGradCam(relu_attributions=True) at ResNet-18's `layer4` and `layer3`, AlexNet's
  `features.11` (the ReLU after its last convolution)
- GuidedBackprop, and GuidedGradCam at the first of those layers
- Occlusion, sliding window (3, 16, 16), strides (3, 8, 8), baseline 0

Every ReLU is made out-of-place first (torchvision's are in-place, which breaks layer hooks;
the values are the same). Written to `tests/fixtures/generated/attribution_<arch>.safetensors`:

    python scripts/make_attribution_fixtures.py [--out tests/fixtures/generated]

Pinned: torch==2.15.0 torchvision==0.29.2 captum==0.9.0 (.ci/requirements-parity.txt).
"""
import argparse
import json
import os

import captum
import torch
import torch.nn as nn
import torchvision
from captum.attr import GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerGradCam, Occlusion, Saliency
from safetensors.torch import load_file, save_file

LAYERS = {"alexnet": ["features.11"], "resnet18": ["layer4", "layer3"]}
TARGETS = [3, 7]


def module(model, name):
    m = model
    for part in name.split("."):
        m = getattr(m, part)
    return m


def make(arch, out):
    model = getattr(torchvision.models, arch)(weights=None)
    model.load_state_dict(load_file(os.path.join(out, f"{arch}.safetensors")))
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    model = model.double().eval()
    x = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    target = torch.tensor(TARGETS)
    res = {"input": x.float(), "targets": target.to(torch.int64)}
    res["saliency"] = Saliency(model).attribute(x, target=target, abs=True)
    ig, delta = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=target, n_steps=50, return_convergence_delta=True
    )
    res["integrated_gradients"] = ig
    res["integrated_gradients_delta"] = delta
    for layer in LAYERS[arch]:
        res[f"gradcam/{layer}"] = LayerGradCam(model, module(model, layer)).attribute(
            x, target=target, relu_attributions=True
        )
    res["guided_backprop"] = GuidedBackprop(model).attribute(x, target=target)
    layer = LAYERS[arch][0]
    res[f"guided_gradcam/{layer}"] = GuidedGradCam(model, module(model, layer)).attribute(x, target=target)
    res["occlusion"] = Occlusion(model).attribute(
        x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=0, target=target
    )
    res = {k: v.detach().contiguous() for k, v in res.items()}
    meta = {"captum": captum.__version__, "torch": torch.__version__, "layers": json.dumps(LAYERS[arch])}
    path = os.path.join(out, f"attribution_{arch}.safetensors")
    save_file(res, path, metadata=meta)
    print(f"{arch}: {', '.join(sorted(res))} -> {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/generated")
    ap.add_argument("--arch", nargs="*", default=sorted(LAYERS))
    a = ap.parse_args()
    for arch in a.arch:
        make(arch, a.out)


if __name__ == "__main__":
    main()
