"""captum 0.9.0's side of benches/attribution.rs: integrated gradients (50 steps, internal batch
25) and occlusion (window 3 x 56 x 56, strides 3 x 28 x 28, OCC_BATCH perturbations per pass, 16 unless set) of one
224 x 224 image through torchvision's ResNet-50 (random weights), target 0, best of REPEATS."""
import json
import os
import time

import torch
import torchvision
from captum.attr import IntegratedGradients, Occlusion

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
repeats = int(os.environ.get("REPEATS", "2"))
torch.manual_seed(0)
net = torchvision.models.resnet50(weights=None).eval()
x = torch.randn(1, 3, 224, 224)


def best(f):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


ig = best(lambda: IntegratedGradients(net).attribute(x, target=0, n_steps=50, internal_batch_size=25))
print(json.dumps({"arch": "resnet50", "method": "integrated_gradients", "seconds": round(ig, 3)}))
occ_batch = int(os.environ.get("OCC_BATCH", "16"))
occ = best(lambda: Occlusion(net).attribute(x, sliding_window_shapes=(3, 56, 56), strides=(3, 28, 28), target=0, perturbations_per_eval=occ_batch))
print(json.dumps({"arch": "resnet50", "method": "occlusion", "batch": occ_batch, "seconds": round(occ, 3)}))
