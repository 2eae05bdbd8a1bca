#!/usr/bin/env python3
"""PyTorch reference outputs for neuroscope's model parity tests (tests/parity.rs).

For every architecture: seeded random torchvision weights (batch-norm statistics randomised
too, so that eval-mode batch norm is not the identity), saved as `<arch>.safetensors` and, for
networks up to 30 M values, `<arch>.pth` (torch.save of the state dict); a seeded input batch; and the output of every named
module, cloned at hook time (so a conv followed by an in-place ReLU gives the conv's output),
saved as `<arch>_outputs.safetensors` with the input under `__input__` and the network's output
under `__output__`, the float64 gradient of `mean(output^2)` with respect to the input under
`__input_grad__` (with PyTorch's float32 distance from it under `__input_grad_f32_error__`). A module called several times (ResNet's shared `relu`) keeps its last
output, as a hook that overwrites would.

The files are too large to commit (VGG-19 alone is 0.5 GB per format): `.ci/run` makes them
with CPU PyTorch, or run it yourself:

    python scripts/make_parity_fixtures.py [--out tests/fixtures/generated] [--arch alexnet ...]

Pinned: torch==2.15.0 torchvision==0.29.2 safetensors (see .ci/requirements-parity.txt).
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
try:
    from safetensors.torch import save_file
except ImportError:  # a torch environment without the safetensors package (the GPU machine's)
    import json
    import struct

    def save_file(tensors, path):
        """The safetensors format by hand: u64 header length, JSON header, raw little-endian data."""
        names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.float16: "F16"}
        header, blobs, offset = {}, [], 0
        for k, v in tensors.items():
            b = v.detach().cpu().contiguous().numpy().tobytes()
            header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
            blobs.append(b)
            offset += len(b)
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for b in blobs:
                f.write(b)

IMAGENET = ["alexnet"] + [f"vgg{d}{bn}" for bn in ("", "_bn") for d in (11, 13, 16, 19)] + [
    f"resnet{d}" for d in (18, 34, 50, 101, 152)
] + ["googlenet", "mobilenet_v2", "vit_b_16", "vit_b_32", "convnext_tiny", "efficientnet_b0"]


class MnistCnn(nn.Module):
    """Seed 3's network, with its h1..h6 extraction points."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)

    def extract(self, x):
        h1 = F.relu(self.conv1(x))
        h2 = F.max_pool2d(h1, 2, 2)
        h3 = F.relu(self.conv2(h2))
        h4 = F.max_pool2d(h3, 2, 2)
        h5 = F.relu(self.fc1(h4.view(-1, 4 * 4 * 50)))
        h6 = F.log_softmax(self.fc2(h5), dim=1)
        return dict(h1=h1, h2=h2, h3=h3, h4=h4, h5=h5, h6=h6)

    def forward(self, x):
        return self.extract(x)["h6"]


class CifarCnn(nn.Module):
    """Seed 4's network (its LightningModule without the training plumbing)."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 64, 5), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.block2 = nn.Sequential(nn.Conv2d(64, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.fc_layers = nn.Sequential(
            nn.Linear(800, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10)
        )

    def forward(self, x):
        x = self.block2(self.block1(x))
        return self.fc_layers(torch.flatten(x, 1))


class FashionCnn(nn.Module):
    """neuroscope's fashion_cnn (src/models/fashion_cnn.rs): four conv/BN/ReLU stages, global
    average pool, dropout and a 10-way linear layer."""

    def __init__(self):
        super().__init__()

        def stage(cin, cout, pool):
            layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return layers + ([nn.MaxPool2d(2)] if pool else [])

        self.features = nn.Sequential(*stage(1, 32, True), *stage(32, 64, True), *stage(64, 128, True), *stage(128, 256, False))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build(arch):
    if arch == "mnist_cnn":
        return MnistCnn(), (2, 1, 28, 28)
    if arch == "fashion_cnn":
        return FashionCnn(), (2, 1, 28, 28)
    if arch == "cifar_cnn":
        return CifarCnn(), (2, 3, 32, 32)
    if arch == "googlenet":
        # Eval-mode GoogLeNet without auxiliary heads, inputs as given (no transform_input).
        net = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=True)
        return net, (2, 3, 64, 64)
    if arch.startswith("vit_"):
        # Vision transformers take exactly the size their position embeddings were made for.
        return getattr(torchvision.models, arch)(weights=None), (2, 3, 224, 224)
    # 64 x 64 keeps the files small and exercises the non-divisible adaptive pools.
    return getattr(torchvision.models, arch)(weights=None), (2, 3, 64, 64)


# `.pth` copies only for the smaller networks: the pickle reader is the same code for every
# architecture (and tests/models.rs saves AlexNet as .pth itself), while a .pth of every VGG
# doubled the fixtures to 11 GB and filled CI's disk. tests/parity.rs mirrors this limit
# (a .safetensors under 150 MB must have its .pth beside it).
PTH_MAX_NUMEL = 30_000_000


def randomise_batch_norm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def randomise_zero_parameters(model, gen):
    """torchvision starts some parameters at zero (ViT's classification head and class token):
    random values instead, so that they are tested and the output's gradient is not zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.numel() > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def make(arch, out):
    torch.manual_seed(0)
    model, shape = build(arch)
    randomise_batch_norm(model, torch.Generator().manual_seed(1))
    if arch.startswith("vit_"):
        randomise_zero_parameters(model, torch.Generator().manual_seed(3))
    if arch.startswith("convnext_"):
        # layer_scale starts at 1e-6, which makes every block nearly the identity: random
        # scales instead, so that the blocks' computations are tested
        with torch.no_grad():
            g = torch.Generator().manual_seed(4)
            for name, p in model.named_parameters():
                if name.endswith("layer_scale"):
                    p.copy_(torch.rand(p.shape, generator=g) * 0.9 + 0.1)
    model.eval()
    outputs = {}

    def hook(name):
        def f(_module, _inp, output):
            # a module that returns a tuple (nn.MultiheadAttention): its first element
            outputs[name] = (output[0] if isinstance(output, tuple) else output).detach().clone()

        return f

    busy = set()

    def attention_weights(name):
        # torchvision calls self-attention with need_weights=False; the probabilities per head
        # (N x heads x tokens x tokens), which neuroscope records as `<name>.attn_weights`,
        # come from a second call (guarded: it runs this pre-hook again)
        def f(module, inp):
            if name in busy:
                return
            busy.add(name)
            try:
                with torch.no_grad():
                    q = inp[0]
                    w = module(q, q, q, need_weights=True, average_attn_weights=False)[1]
                outputs[f"{name}.attn_weights"] = w.detach().clone()
            finally:
                busy.discard(name)

        return f

    for name, module in model.named_modules():
        if name:
            module.register_forward_hook(hook(name))
        if isinstance(module, nn.MultiheadAttention):
            module.register_forward_pre_hook(attention_weights(name))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x)
        if arch == "mnist_cnn":
            outputs.update({k: v.clone() for k, v in model.extract(x).items()})
    outputs["__input__"] = x
    outputs["__output__"] = y
    # The gradient of mean(output^2) with respect to the input: every layer's backward,
    # max pools with kernel 3 / stride 2 included (feature visualisation's path). The
    # reference is computed in float64: with random weights a ReLU input within float32
    # rounding of zero passes its gradient in one float32 implementation and not in another,
    # and PyTorch's own float32 gradient is 1e-7 (AlexNet) to 3e-2 (GoogLeNet) away from the
    # float64 one in relative L2. That distance is saved too, as the test's noise floor.
    grads = {}
    for dtype in (torch.float32, torch.float64):
        m = copy.deepcopy(model).to(dtype)
        for mod in m.modules():
            mod._forward_hooks.clear()
            mod._forward_pre_hooks.clear()
        xg = x.to(dtype).clone().requires_grad_(True)
        m(xg).pow(2).mean().backward()
        grads[dtype] = xg.grad.detach().double()
    g32, g64 = grads[torch.float32], grads[torch.float64]
    diff = g32 - g64
    outputs["__input_grad__"] = g64.float()
    outputs["__input_grad_f32_error__"] = torch.tensor([
        (diff.norm() / g64.norm()).item(),
        (diff.abs() > 1e-3 * g64.abs().max()).double().mean().item(),
    ], dtype=torch.float32)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    # vision transformers always get one: their attention weights are the one parameter layout
    # (in_proj_weight) no other network has, and .pth is how torch hub ships them
    if sum(v.numel() for v in sd.values()) <= PTH_MAX_NUMEL or arch.startswith("vit_"):
        torch.save(sd, os.path.join(out, f"{arch}.pth"))
    save_file(sd, os.path.join(out, f"{arch}.safetensors"))
    if arch == "mnist_cnn":
        # A training checkpoint with the weights under "state_dict", as many scripts save them.
        torch.save({"state_dict": sd, "epoch": 1}, os.path.join(out, f"{arch}_checkpoint.pth"))
        # Other ways users save weights: under "model" (many training scripts), PyTorch's legacy
        # (pre-1.6) format, and a whole pickled module; each must load or be refused clearly.
        torch.save({"model": sd, "epoch": 1}, os.path.join(out, f"{arch}_model_key.pth"))
        torch.save(sd, os.path.join(out, f"{arch}_legacy.pth"), _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in outputs.items()}, os.path.join(out, f"{arch}_outputs.safetensors"))
    names = [n for n, _ in model.named_modules() if n]
    with open(os.path.join(out, f"{arch}_modules.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{arch}: {len(sd)} tensors, {len(outputs) - 4} module outputs, float32 input-gradient error {outputs['__input_grad_f32_error__'][0].item():.1e}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "generated"))
    ap.add_argument("--arch", nargs="*", default=["mnist_cnn", "cifar_cnn", "fashion_cnn"] + IMAGENET)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for arch in args.arch:
        make(arch, args.out)
    with open(os.path.join(args.out, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntorchvision {torchvision.__version__}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
