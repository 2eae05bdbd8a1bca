#!/usr/bin/env bash
# Side-by-side: neuroscope vs rsatoolbox on RDM estimation and comparison (issue 28), in one
# run on this machine, 2 threads each (OpenBLAS and rayon). Usage:
#   PYTHON=~/venvs/sk/bin/python bash bench/run_rsa.sh     # a Python WITHOUT torch
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export REPEATS=${REPEATS:-10} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$PYTHON" bench/rsa_peers.py | tee /tmp/rsa_peers.json
cargo bench --bench rsa 2>/dev/null | tee /tmp/ns_rsa.json
python3 bench/side_by_side.py /tmp/rsa_peers.json /tmp/ns_rsa.json
