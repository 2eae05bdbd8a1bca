"""Seed 5's activation maximisation in PyTorch on CPU (or CUDA): the peer for `neuroscope featvis`.

For each case (ResNet-50 `layer2.0.conv3` channel 0 at 128 px; AlexNet `features.10` channel 0
at 224 px), random torchvision weights (the time does not depend on them), eval mode, grey 0.5
plus uniform noise of width 0.005, Adam lr 10, a forward hook on the layer and the seed's
`VisLoss` (minus the channel's mean). Two ways are timed:
  * `seed`: the seed's loop, the whole network runs every step (the hook only reads the layer);
  * `stop`: the hook raises once it has the activation, so the forward stops at the layer
    (what neuroscope does), the fairest PyTorch can do without rewriting the model.
Prints one JSON line per case and way with the median milliseconds per iteration over STEPS
iterations after WARMUP (default 20 and 3). THREADS (default 2) sets torch's threads; DEVICE
(cpu|cuda) the device.
"""
import json, os, statistics, time
import torch, torchvision

threads = int(os.environ.get("THREADS", "2"))
steps = int(os.environ.get("STEPS", "20"))
warmup = int(os.environ.get("WARMUP", "3"))
device = os.environ.get("DEVICE", "cpu")
torch.set_num_threads(threads)
torch.manual_seed(0)


class Stop(Exception):
    pass


def run(arch, layer, channel, px, way):
    model = getattr(torchvision.models, arch)(weights=None).to(device).eval()
    target = dict(model.named_modules())[layer]
    got = {}

    def hook(_m, _i, out):
        got["act"] = out
        if way == "stop":
            raise Stop

    h = target.register_forward_hook(hook)
    image = (torch.ones(1, 3, px, px) * 0.5 + (torch.rand(1, 3, px, px) - 0.5) * 0.005).to(device)
    image.requires_grad_(True)
    opt = torch.optim.Adam([image], lr=10.0)
    times = []
    best = float("inf")
    for it in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad()
        try:
            model(image)
        except Stop:
            pass
        loss = -got["act"][0, channel].mean()
        loss.backward()
        opt.step()
        value = loss.item()  # the seed prints it every step: a sync point on CUDA too
        if value < best:
            best = value
            kept = image.detach().clone()
        if device == "cuda":
            torch.cuda.synchronize()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    h.remove()
    return statistics.median(times) * 1e3, best


for arch, layer, px in [("resnet50", "layer2.0.conv3", 128), ("alexnet", "features.10", 224)]:
    for way in ["seed", "stop"]:
        ms, best = run(arch, layer, 0, px, way)
        print(json.dumps({"peer": "pytorch", "way": way, "torch": torch.__version__, "device": device,
                          "threads": threads, "arch": arch, "layer": layer, "px": px,
                          "ms_per_iter": round(ms, 2), "final_loss": round(best, 4)}), flush=True)
