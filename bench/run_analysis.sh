#!/usr/bin/env bash
# Side-by-side: neuroscope vs scikit-learn / NumPy on the analysis steps of the seeds, in one
# run on this machine, 2 threads each (OpenBLAS and rayon). Usage:
#   PYTHON=~/venvs/sk/bin/python bash bench/run_analysis.sh     # a Python WITHOUT torch
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export REPEATS=${REPEATS:-3} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$PYTHON" bench/sklearn_analysis.py | tee /tmp/sk_analysis.json
cargo bench --bench analysis 2>/dev/null | tee /tmp/ns_analysis.json
python3 bench/side_by_side.py /tmp/sk_analysis.json /tmp/ns_analysis.json
