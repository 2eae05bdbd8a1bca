#!/usr/bin/env bash
# Side-by-side: neuroscope t-SNE / UMAP vs openTSNE, scikit-learn TSNE and umap-learn on
# 10,000 x 50 seeded blobs and the 10,000 embedded MNIST digits (784-d, and PCA to 50), 2 threads
# each. DATASETS=blobs,mnist784,mnist_pca50 picks some data sets, METHODS="tsne" our methods and
# PEERS=openTSNE,sklearn_tsne,umap-learn the peers. Usage (a Python WITHOUT torch, with
# openTSNE and umap-learn, .ci/requirements-embed.txt):
#   PYTHON=~/venvs/sk/bin/python bash bench/run_embed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 NEUROSCOPE_QUIET=1
D=target/bench-data
"$PYTHON" bench/sklearn_analysis.py >/dev/null   # writes the blobs
"$PYTHON" - <<'PY'
import gzip, numpy as np
from sklearn.decomposition import PCA
with gzip.open("data/mnist-10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float64) / 255
with gzip.open("data/mnist-10k-labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
np.save("target/bench-data/mnist10k.npy", x); np.save("target/bench-data/mnist10k_labels.npy", y)
np.save("target/bench-data/mnist10k_pca50.npy", PCA(50, svd_solver="full").fit_transform(x))
PY
cargo build --release --features cli -q
for data in "blobs:$D/blobs_10000x50.npy:$D/blobs_labels.npy" "mnist784:$D/mnist10k.npy:$D/mnist10k_labels.npy" "mnist_pca50:$D/mnist10k_pca50.npy:$D/mnist10k_labels.npy"; do
  IFS=: read -r name x y <<<"$data"
  if [ -n "${DATASETS:-}" ] && [[ ",$DATASETS," != *",$name,"* ]]; then continue; fi
  for m in ${METHODS:-tsne umap}; do
    t0=$(date +%s.%N)
    out=$(target/release/neuroscope embed --method $m --input "$x" --out /tmp/ns_embed.npy --labels "$y")
    t1=$(date +%s.%N)
    tr=$(echo "$out" | sed -n 's/trustworthiness (k=10): //p'); kn=$(echo "$out" | sed -n 's/5-NN accuracy: //p')
    secs=$(echo "$out" | sed -n 's/.* in \([0-9.]*\) s;.*/\1/p')
    echo "{\"data\": \"$name\", \"impl\": \"neuroscope $m\", \"seconds\": $secs, \"trust10\": $tr, \"knn5\": $kn}"
  done
  "$PYTHON" bench/embed_peers.py "$name" "$x" "$y"
done
