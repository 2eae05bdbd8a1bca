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
python3 - <<'PY'
import json
sk = {j["task"]: j for j in map(json.loads, open("/tmp/sk_analysis.json")) }
for line in open("/tmp/ns_analysis.json"):
    if not line.startswith("{"):
        continue
    a = json.loads(line)
    b = sk[a["task"]]
    extra = {k: (a[k], b[k]) for k in a if k in b and k not in ("task", "impl", "best_s")}
    print(f"{a['task']}: neuroscope {a['best_s']:.3f} s, {b['impl']} {b['best_s']:.3f} s, ratio {a['best_s'] / b['best_s']:.2f}  {extra}")
PY
