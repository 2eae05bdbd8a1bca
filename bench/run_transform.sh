#!/usr/bin/env bash
# Side-by-side: placing new samples into a fitted embedding. The 10,000 embedded MNIST digits
# (784-d) split into 9,000 reference digits and 1,000 new ones (every 10th); neuroscope's
# `embed --transform` (UMAP and t-SNE) against umap-learn's `UMAP.transform` and openTSNE's
# `TSNEEmbedding.transform`, 2 threads each; only the transform is timed. PEERS=umap-learn,openTSNE
# picks some, METHODS="umap" our methods. Usage (a Python WITHOUT torch, with openTSNE and
# umap-learn, .ci/requirements-embed.txt):
#   PYTHON=~/.cache/neuroscope-ci/sk-venv/bin/python bash bench/run_transform.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 NEUROSCOPE_QUIET=1
D=target/bench-data
mkdir -p "$D"
"$PYTHON" - <<'PY'
import gzip, numpy as np
with gzip.open("data/mnist-10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float64) / 255
with gzip.open("data/mnist-10k-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
new = np.arange(len(x)) % 10 == 0
for name, m in [("ref", ~new), ("new", new)]:
    np.save(f"target/bench-data/mnist9k1k_{name}.npy", x[m]); np.save(f"target/bench-data/mnist9k1k_{name}_labels.npy", y[m])
PY
cargo build --release --features cli -q
for m in ${METHODS:-umap tsne}; do
  out=$(target/release/neuroscope embed --method $m --input $D/mnist9k1k_ref.npy --out /tmp/ns_tr.npy \
        --transform $D/mnist9k1k_new.npy --transform-out /tmp/ns_tr_new.npy)
  secs=$(echo "$out" | sed -n 's/^placed .* in \([0-9.]*\) s;.*/\1/p')
  acc=$("$PYTHON" - <<PY
import numpy as np, sys
sys.path.insert(0, "bench")
from transform_peers import vote
print(round(vote(np.load("/tmp/ns_tr.npy"), np.load("$D/mnist9k1k_ref_labels.npy"), np.load("/tmp/ns_tr_new.npy"), np.load("$D/mnist9k1k_new_labels.npy")), 4))
PY
)
  echo "{\"impl\": \"neuroscope $m transform\", \"seconds\": $secs, \"placed_knn5\": $acc}"
done
"$PYTHON" bench/transform_peers.py $D/mnist9k1k_ref.npy $D/mnist9k1k_ref_labels.npy $D/mnist9k1k_new.npy $D/mnist9k1k_new_labels.npy
