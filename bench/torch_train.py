"""One epoch of seed 3's MNIST CNN in PyTorch on CPU: the peer for `neuroscope train`.

Same network (conv 1->20 5x5, conv 20->50 5x5, fc 800->500, fc 500->10, log-softmax), SGD
lr 0.01 momentum 0, batch 64, 9,999 samples of 1x28x28 (seeded random values: the time does
not depend on them), NLL loss, torch.set_num_threads(THREADS). Prints JSON with seconds.
"""
import json, os, sys, time
import torch, torch.nn.functional as F

threads = int(os.environ.get("THREADS", "2"))
torch.set_num_threads(threads)
torch.manual_seed(1)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from make_parity_fixtures import MnistCnn  # the same network the parity tests use

n = int(os.environ.get("N", "9999"))
x = (torch.rand(n, 1, 28, 28) - 0.1307) / 0.3081
y = torch.randint(0, 10, (n,))
model = MnistCnn()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=float(os.environ.get("MOMENTUM", "0")))
perm = torch.randperm(n)
model.train()
t0 = time.perf_counter()
for i in range(0, n, 64):
    idx = perm[i:i + 64]
    opt.zero_grad()
    loss = F.nll_loss(model(x[idx]), y[idx])
    loss.backward()
    opt.step()
dt = time.perf_counter() - t0
print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": threads, "samples": n, "seconds": round(dt, 3)}))
